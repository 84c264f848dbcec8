import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { Directory } from '@hearth/directory';
import { createLogger } from '@hearth/log';
import { appDockerCertsDir, installApp } from '@hearth/provisioning';
import { testEnv, TEST_DOCKER_HOST, type TestEnv } from '@hearth/testkit';
import { loadCa } from '@hearth/tls';
import { connectEngine } from '@hearth/runtime';
import { startDockerProxy, type DockerProxy } from '../src/server.ts';
import { engineDocker, engineWithBusybox } from './fixture.ts';

let BUSYBOX = '';

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

const METHODS = ['GET', 'POST', 'DELETE', 'PUT', 'HEAD', 'PATCH', 'OPTIONS'];
const PATHS = [
  '/_ping', '/version', '/info', '/containers/json', '/containers/create', '/containers/{c}/json', '/containers/{c}/start', '/containers/{c}/stop',
  '/containers/{c}/logs', '/containers/{c}/wait', '/containers/{c}', '/containers/{c}/exec', '/containers/{c}/archive', '/images/create',
  '/images/{c}/json', '/images/json', '/volumes', '/volumes/create', '/networks', '/build', '/swarm/init', '/plugins', '/system/df', '/events',
  '/containers/../volumes', '/containers/%2e%2e/json', '//containers/json', '/', '', '/v1.41', '/v9.99/_ping', '/v1.12/containers/json',
];
const SEGMENTS = ['x', 'hearth-app-x', '..', '.', '%00', 'a/b', '\u00e9', '*', '-', "'", 'ffffffffffff', 'busybox:latest', ''.padEnd(300, 'a')];
const QUERIES = ['', '?all=1', '?filters={"label":["hearth.app=other"]}', '?filters=%7B', '?filters=[1]', '?link=1', '?fromSrc=-', '?fromImage=', '?name=hearth-x', '?follow=1&tail=1', '?a=b&a=c', '?%zz'];
const HOST_FIELDS: [string, unknown][] = [
  ['Privileged', true], ['CapAdd', ['ALL']], ['Binds', ['/:/h']], ['Binds', ['/app/data/../..:/h']], ['Binds', ['/app/data/fz:/fz']], ['Binds', [null]],
  ['Mounts', [{ Type: 'volume', Target: '/v' }]], ['Mounts', [{ Type: 'bind', Source: '/etc', Target: '/e' }]], ['Mounts', [{ Type: 'tmpfs', Target: '/t' }]],
  ['NetworkMode', 'bridge'], ['NetworkMode', 'host'], ['PidMode', 'host'], ['Devices', [{ PathOnHost: '/dev/mem' }]], ['SecurityOpt', ['seccomp=unconfined']],
  ['VolumesFrom', ['x']], ['MaskedPaths', []], ['Memory', 1 << 26], ['ReadonlyRootfs', true], ['UsernsMode', 'host'], ['Binds', 'string'], ['__proto__', { Privileged: true }],
];

function randomCreateBody(): string {
  const r = Math.random();
  if (r < 0.1) return randomBytes(Math.floor(Math.random() * 200)).toString('latin1');
  if (r < 0.15) return '{"Image":';
  if (r < 0.2) return JSON.stringify([1, 2]);
  const host: Record<string, unknown> = {};
  for (let i = Math.floor(Math.random() * 3); i > 0; i--) {
    const [k, v] = pick(HOST_FIELDS);
    host[k] = v;
  }
  const body: Record<string, unknown> = { Image: BUSYBOX, Cmd: ['true'], HostConfig: Math.random() < 0.05 ? 'nope' : host };
  if (Math.random() < 0.2) body.Labels = { 'hearth.app': 'someone-else', 'hearth.role': 'app' };
  if (Math.random() < 0.1) body.Volumes = { '/v': {} };
  return JSON.stringify(body);
}

describe('docker proxy under random requests', () => {
  let t: TestEnv;
  let directory: Directory;
  let proxy: DockerProxy;
  let agent: https.Agent;
  let certs: { ca: Buffer; cert: Buffer; key: Buffer };
  const appId = `fuzz-${randomBytes(4).toString('hex')}`;

  before(async () => {
    BUSYBOX = engineWithBusybox();
    t = await testEnv({ env: { HEARTH_DOCKER_HOST: TEST_DOCKER_HOST } });
    const logger = createLogger('dockerproxy-fuzz', 'silent');
    directory = await Directory.open(t.config, { logger });
    await installApp(t.config, directory, { manifestText: JSON.stringify({ addons: { docker: {} } }), id: appId, domain: `${appId}.example.test` });
    proxy = await startDockerProxy({
      config: t.config,
      directory,
      logger,
      settings: { networkMode: 'host', maxBodyBytes: 64 * 1024 },
      ca: await loadCa(t.config),
      engine: connectEngine(TEST_DOCKER_HOST),
      host: '127.0.0.1',
      port: 0,
    });
    const dir = appDockerCertsDir(t.dataDir, appId);
    certs = { ca: fs.readFileSync(path.join(dir, 'ca.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')), key: fs.readFileSync(path.join(dir, 'key.pem')) };
    agent = new https.Agent({ keepAlive: true, maxSockets: 4, ...certs });
  });

  after(async () => {
    agent?.destroy();
    await proxy?.close();
    const ids = engineDocker(['ps', '-aq', '--filter', `label=hearth.app=${appId}`]).split('\n').filter(Boolean);
    if (ids.length) engineDocker(['rm', '-f', ...ids]);
    await directory?.close();
    await t?.cleanup();
  });

  const request = (method: string, urlPath: string, body?: string | Buffer): Promise<{ status: number; text: string }> =>
    new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: proxy.port, method, path: urlPath, agent, headers: body !== undefined ? { 'content-type': 'application/json' } : {} }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      });
      req.setTimeout(30_000, () => req.destroy(new Error(`no answer to ${method} ${urlPath}`)));
      req.on('error', reject);
      req.end(body);
    });

  it('answers every random request with a status and, for errors, a Docker-style JSON message', async () => {
    const recent: string[] = [];
    for (let i = 0; i < 300; i++) {
      const method = pick(METHODS);
      const base = pick(PATHS).replace('{c}', pick(SEGMENTS));
      // valid HTTP request-targets only (non-ASCII escaped, a leading slash): malformed HTTP is the wire-garbage test's part
      const urlPath = encodeURI(`${Math.random() < 0.5 ? '/v1.41' : ''}${base}`).replace(/^(?!\/)/, '/') + pick(QUERIES);
      // node's client writes a HEAD or GET body without framing it (a malformed request of its own), so bodies go with the others only
      const framed = ['POST', 'PUT', 'PATCH'].includes(method);
      const body = method === 'POST' && base === '/containers/create' ? randomCreateBody() : framed && Math.random() < 0.2 ? randomBytes(100).toString('latin1') : undefined;
      let r: { status: number; text: string };
      recent.push(`${method} ${urlPath} ${body === undefined ? '' : `(${Buffer.byteLength(body)} bytes)`}`);
      try {
        r = await request(method, urlPath, body);
      } catch (err) {
        // node's client refuses some of our invalid paths itself; that is not the proxy's doing
        if ((err as NodeJS.ErrnoException).code === 'ERR_UNESCAPED_CHARACTERS') continue;
        throw new Error(`${(err as Error).message} after ${recent.slice(-4).join(' | ')}`);
      }
      assert.ok(r.status >= 200 && r.status < 600, `${method} ${urlPath} → ${r.status}`);
      if (r.status >= 400 && method !== 'HEAD') {
        const parsed = JSON.parse(r.text) as { message?: unknown };
        assert.equal(typeof parsed.message, 'string', `${method} ${urlPath} → ${r.text}`);
      }
    }
    assert.equal((await request('GET', '/_ping')).text, 'OK');
  });

  it('refuses a huge body and malformed JSON naming the problem, and stays up', async () => {
    const huge = await request('POST', '/v1.41/containers/create', JSON.stringify({ Image: BUSYBOX, Env: ['X='.padEnd(200 * 1024, 'x')] }));
    assert.equal(huge.status, 413);
    assert.match(JSON.parse(huge.text).message, /request body is larger than 65536 bytes/);
    const bad = await request('POST', '/v1.41/containers/create', '{"Image": ');
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.text).message, /request body is not valid JSON/);
    assert.equal((await request('GET', '/_ping')).text, 'OK');
  });

  /** Sends bytes on a fresh connection and ends it; how long until the proxy closed it (never more than 10 s here). */
  const sendAndEnd = (bytes: Buffer | string, secure: boolean): Promise<number> =>
    new Promise((resolve, reject) => {
      const started = Date.now();
      const s = secure ? tls.connect({ port: proxy.port, host: '127.0.0.1', ...certs, servername: 'localhost' }, () => s.end(bytes)) : net.connect(proxy.port, '127.0.0.1', () => s.end(bytes));
      const limit = setTimeout(() => {
        s.destroy();
        reject(new Error(`the proxy kept a ${secure ? 'TLS' : 'plain'} connection open 10 s after the client's last byte (${JSON.stringify(bytes.toString('latin1').slice(0, 40))})`));
      }, 10_000);
      s.on('error', () => {});
      s.on('close', () => {
        clearTimeout(limit);
        resolve(Date.now() - started);
      });
      s.resume();
    });

  it('survives garbage on the wire, with and without TLS, and closes each connection when the client is done', async () => {
    // a TLS record header and nothing more, then FIN: no waiting for the handshake timeout
    await sendAndEnd(Buffer.from([0x16, 0x03, 0x01]), false);
    await sendAndEnd(Buffer.alloc(0), false);
    for (let i = 0; i < 20; i++) {
      await sendAndEnd(randomBytes(Math.floor(Math.random() * 2000)), false);
      await sendAndEnd(i % 2 ? randomBytes(500) : 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n', true);
    }
    assert.equal((await request('GET', '/_ping')).text, 'OK');
  });

  it('left only containers that obey the rules', () => {
    const ids = engineDocker(['ps', '-aq', '--no-trunc', '--filter', `label=hearth.app=${appId}`]).split('\n').filter(Boolean);
    const data = path.join(t.dataDir, 'apps', appId, 'data');
    const hostData = fs.existsSync(data) ? fs.realpathSync(data) : data;
    for (const id of ids) {
      const info = JSON.parse(engineDocker(['inspect', id]))[0];
      assert.equal(info.Config.Labels['hearth.role'], 'child');
      assert.equal(info.HostConfig.Privileged, false);
      assert.equal(info.HostConfig.CapAdd, null);
      assert.equal(info.HostConfig.NetworkMode, 'host');
      assert.equal(info.HostConfig.PidMode, '');
      assert.ok(!info.HostConfig.Devices?.length);
      for (const m of info.Mounts as { Type: string; Source: string }[]) {
        assert.equal(m.Type, 'bind', JSON.stringify(m));
        assert.ok(m.Source.startsWith(hostData), m.Source);
      }
    }
  });
});
