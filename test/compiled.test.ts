import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_PORTS, portEnvName, type PortName } from '@hearth/config';
import { dockerEnv, freePort, metricValue, REPO_ROOT, scrapeMetrics, testEnv, waitFor, type TestEnv } from '@hearth/testkit';

/**
 * `npm run build`, then the compiled entry points with plain node (no TypeScript loader):
 * the supervisor running every daemon as a thread of one process, the container healthcheck
 * and the `hearth` bin; each daemon answers its own protocol, and a daemon that dies does not
 * take the others with it.
 */

const HOST = '127.0.0.1';

/** The first thing a TCP server says. */
function greeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: HOST, port, timeout: 10_000 });
    s.once('data', (d) => {
      s.destroy();
      resolve(d.toString('latin1'));
    });
    s.once('timeout', () => {
      s.destroy();
      reject(new Error(`no greeting on ${port}`));
    });
    s.once('error', reject);
  });
}

/** Sends lines and collects the reply until `done` matches it. */
function converse(port: number, lines: string[], done: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: HOST, port, timeout: 15_000 });
    let got = '';
    s.on('data', (d) => {
      got += d.toString('latin1');
      if (done.test(got)) {
        s.destroy();
        resolve(got);
      }
    });
    s.once('connect', () => s.write(lines.join('')));
    s.once('timeout', () => {
      s.destroy();
      reject(new Error(`incomplete reply on ${port}: ${got}`));
    });
    s.once('error', reject);
  });
}

/** A STUN Binding request over UDP (RFC 5389 §6): the success response echoes the transaction id. */
function stunBinding(port: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    const txid = randomBytes(12);
    const req = Buffer.concat([Buffer.from([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]), txid]);
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error('no STUN answer'));
    }, 10_000);
    sock.on('message', (msg) => {
      clearTimeout(timer);
      sock.close();
      if (msg.subarray(8, 20).equals(txid)) resolve(msg);
      else reject(new Error('a STUN answer with another transaction id'));
    });
    sock.send(req, port, HOST);
  });
}

function node(args: string[], env: Record<string, string>, input?: string): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, args, { cwd: REPO_ROOT, env: { ...process.env, ...env }, encoding: 'utf8', input, timeout: 60_000 });
}

describe('the compiled build, run with plain node', () => {
  let t: TestEnv;
  let env: Record<string, string>;
  before(async () => {
    const built = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
    assert.equal(built.status, 0, built.stderr);
    t = await testEnv();
    env = { ...t.env, ...dockerEnv(), HEARTH_LISTEN: HOST, HEARTH_HOSTNAME: HOST, HEARTH_LOG_LEVEL: 'info', HEARTH_SUPERVISOR_MODE: 'threads' };
    for (const name of Object.keys(DEFAULT_PORTS) as PortName[]) env[portEnvName(name)] = String(await freePort());
    env.HEARTH_OIDC_ISSUER = `http://${HOST}:${env.HEARTH_OIDC_PORT}`;
  });
  after(() => t.cleanup());

  it('bundles no TypeScript loader and maps stack traces to the sources', () => {
    for (const service of ['supervisor', 'ldap', 'cli']) {
      const dist = path.join(REPO_ROOT, 'services', service, 'dist');
      for (const f of fs.readdirSync(dist).filter((n) => n.endsWith('.js'))) {
        const text = fs.readFileSync(path.join(dist, f), 'utf8');
        assert.doesNotMatch(text, /from "tsx|tsx\/esm/, `${service}/${f} imports tsx`);
        assert.match(text, /\/\/# sourceMappingURL=.*\.js\.map\n?$/, `${service}/${f} has a source map`);
      }
    }
    const map = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'services/ldap/dist/main.js.map'), 'utf8')) as { sources: string[] };
    assert.ok(map.sources.includes('../src/server.ts'), map.sources.join(' '));
  });

  it('every daemon answers as a thread of one supervisor; one that dies is restarted while the others serve', async () => {
    // POP3's port is taken before the start: that daemon fails, again and again, until it is free.
    const squatter = net.createServer().listen(Number(env.HEARTH_POP3_PORT), HOST);
    await new Promise((r) => squatter.once('listening', r));
    const proc = spawn(process.execPath, ['services/supervisor/dist/main.js'], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    try {
      assert.doesNotMatch(fs.readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8'), /tsx/);
      const ready = (name: string): boolean => new RegExp(`"name":"${name}".*"msg":"ready"`).test(out);
      await waitFor(() => out.includes('Manage users and apps'), 60_000, 200);
      // runtime and dockerproxy need the Docker engine (CI starts one); without it they are not started
      const docker = out.includes('App containers are off') ? [] : ['runtime', 'dockerproxy'];
      const daemons = ['ldap', 'smtp', 'imap', 'managesieve', 'oidc', 'proxyauth', 'turn', 'sftp', 'console', ...docker];
      await waitFor(() => daemons.every(ready), 90_000, 200).catch(() => {});
      assert.deepEqual(daemons.filter((d) => !ready(d)), [], `not ready:\n${out.slice(-3000)}`);
      await waitFor(() => /"service":"pop3".*"msg":"service exited; restarting"/.test(out), 30_000, 200);
      // one process: no daemon runs as a child
      assert.equal(spawnSync('pgrep', ['-P', String(proc.pid)], { encoding: 'utf8' }).stdout.trim(), '', 'no child processes');

      const port = (n: PortName): number => Number(env[portEnvName(n)]);
      const anon = spawnSync('ldapwhoami', ['-x', '-H', `ldap://${HOST}:${port('ldap')}`], { encoding: 'utf8' });
      assert.equal(anon.status, 0, anon.stderr);
      assert.equal(anon.stdout.trim(), 'anonymous');
      assert.match(await greeting(port('smtp')), /^220 /);
      assert.match(await greeting(port('smtpInbound')), /^220 /);
      assert.match(await greeting(port('imap')), /^\* OK /);
      assert.match(await converse(port('sieve'), [], /^OK/m), /^"IMPLEMENTATION" /m);
      assert.match(await greeting(port('sftp')), /^SSH-2\.0-/);
      const discovery = (await (await fetch(`${env.HEARTH_OIDC_ISSUER}/.well-known/openid-configuration`)).json()) as { issuer: string };
      assert.equal(discovery.issuer, env.HEARTH_OIDC_ISSUER);
      assert.match(await converse(port('proxyauth'), [`GET / HTTP/1.1\r\nHost: nothing.example.test\r\nConnection: close\r\n\r\n`], /\r\n\r\n/), /^HTTP\/1\.1 \d{3} /);
      assert.match(await converse(port('console'), [`GET / HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`], /\r\n\r\n/), /^HTTP\/1\.1 \d{3} /);
      assert.equal((await stunBinding(port('turn'))).readUInt16BE(0), 0x0101, 'Binding success response');

      // The compiled bin writes the directory; the IMAP thread sees the new user and checks her password.
      const add = node(['services/cli/bin/hearth.mjs', 'user', 'add', 'alice', '--email', 'alice@example.test', '--password-stdin'], env, 'correct horse battery\n');
      assert.equal(add.status, 0, add.stderr);
      assert.equal(node(['services/cli/bin/hearth.mjs', 'mailbox', 'add', 'alice@example.test', '--owner', 'alice'], env).status, 0);
      const list = node(['services/cli/bin/hearth.mjs', 'user', 'list', '--json'], env);
      assert.deepEqual((JSON.parse(list.stdout) as { username: string }[]).map((u) => u.username), ['alice']);
      await waitFor(async () => /^a OK/m.test(await converse(port('imap'), ['a LOGIN alice "correct horse battery"\r\n'], /^a (OK|NO|BAD)/m)), 15_000, 250);

      // Metrics from threads: each daemon's own port and registry, though they share one process.
      for (const d of daemons) {
        const m = await scrapeMetrics(`http://${HOST}:${port(`${d}Metrics` as PortName)}/metrics`);
        assert.equal(metricValue(m, 'hearth_build_info', { service: d }), 1, `${d} serves its own metrics`);
        assert.equal(m.samples.filter((x) => x.name === 'hearth_build_info').length, 1, `${d}'s registry holds no other thread's metrics`);
      }
      assert.ok(metricValue(await scrapeMetrics(`http://${HOST}:${port('imapMetrics')}/metrics`), 'hearth_logins_total', { protocol: 'imap', outcome: 'ok' }) >= 1, 'the IMAP thread counted the login');

      // the container healthcheck, compiled, for every port but POP3's (still taken)
      const ports = (Object.keys(DEFAULT_PORTS) as PortName[]).filter((n) => !n.startsWith('pop3') && (docker.length > 0 || n !== 'dockerProxy'));
      assert.equal(node(['services/supervisor/dist/healthcheck.js', ...ports], env).status, 0);

      // The port is free again: POP3 comes back, and nothing else restarted meanwhile.
      await new Promise((r) => squatter.close(r));
      await waitFor(() => ready('pop3'), 60_000, 200);
      assert.match(await greeting(port('pop3')), /^\+OK/);
      assert.deepEqual([...out.matchAll(/"service":"(\w+)".*"msg":"service exited; restarting"/g)].map((m) => m[1]).filter((s) => s !== 'pop3'), []);
    } finally {
      squatter.close();
      proc.kill('SIGTERM');
      const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
      assert.equal(code, 0, out.slice(-3000));
    }
  });
});
