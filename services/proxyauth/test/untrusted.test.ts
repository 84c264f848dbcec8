import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Directory } from '@hearth/directory';
import { createLogger } from '@hearth/log';
import { testEnv, type TestEnv } from '@hearth/testkit';
import { loadSettings } from '../src/settings.ts';
import { startProxyAuth, type RunningProxyAuth } from '../src/server.ts';
import { curl, echoOf, startUpstream, type Upstream } from './helpers.ts';

/** The gateway in-process with the default HEARTH_TRUSTED_PROXIES (nobody): whatever X-Forwarded-* a client sends is replaced. */

let env: TestEnv;
let directory: Directory;
let upstream: Upstream;
let gw: RunningProxyAuth;

before(async () => {
  upstream = await startUpstream();
  env = await testEnv();
  directory = await Directory.open(env.config, { watch: true });
  await directory.putApp(
    { id: 'open', domain: 'open.example.test', manifest: { addons: { proxyAuth: { path: '/admin' } } }, access: null, upstream: upstream.url, credentials: {}, createdAt: new Date().toISOString() },
    [],
  );
  await directory.putApp(
    { id: 'basic', domain: 'basic.example.test', manifest: { addons: { proxyAuth: { basicAuth: true } } }, access: null, upstream: upstream.url, credentials: {}, createdAt: new Date().toISOString() },
    [],
  );
  await directory.addUser({ username: 'alice', email: 'alice@example.test', password: 'alice-password-1' });
  gw = await startProxyAuth({ config: env.config, directory, logger: createLogger('proxyauth-test', 'silent'), settings: loadSettings({}), port: 0 });
});

after(async () => {
  await gw?.close();
  await upstream?.close();
  await directory?.close();
  await env?.cleanup();
});

test('X-Forwarded-* from an untrusted client are replaced, not extended', async () => {
  const echo = echoOf(await curl(gw.port, 'open.example.test', '/public', { headers: ['X-Forwarded-For: 203.0.113.7', 'X-Forwarded-Proto: https', 'X-Forwarded-Host: evil.example', 'Forwarded: for=203.0.113.7;proto=https'] }));
  assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(echo.headers['x-forwarded-proto'], 'http');
  assert.equal(echo.headers['x-forwarded-host'], `open.example.test:${gw.port}`);
  assert.equal(echo.headers.forwarded, undefined);
});

test('a spoofed X-Forwarded-Proto does not make the gateway think it is behind TLS', async () => {
  const r = await curl(gw.port, 'open.example.test', '/logout', { headers: ['X-Forwarded-Proto: https'] });
  assert.equal(r.status, 302);
  assert.doesNotMatch(r.headers['set-cookie']!.join('\n'), /Secure|__Host-/);
});

test('throttling and audit see the socket address, not a client-sent X-Forwarded-For', async () => {
  const wrong = `Authorization: Basic ${Buffer.from('alice:wrong').toString('base64')}`;
  const r = await curl(gw.port, 'basic.example.test', '/', { headers: [wrong, 'X-Forwarded-For: 127.0.0.77'] });
  assert.equal(r.status, 401);
  const events = await directory.store.listAudit({ protocol: 'proxyauth', limit: 10 });
  assert.deepEqual(
    events.map((e) => [e.ok, e.remote]),
    [[false, '127.0.0.1']],
  );
});

test('headers an app may route or authenticate on do not pass from an untrusted client', async () => {
  const sent = ['X-Original-URL: /admin', 'X-Rewrite-URL: /admin', 'X_Original_URL: /admin', 'X-Original-Host: evil.example', 'X-Real-IP: 10.0.0.1', 'X-Client-IP: 10.0.0.1', 'True-Client-IP: 10.0.0.1', 'X-Auth-Request-User: admin', 'X-Auth-Request-Email: admin@example.test', 'X-Auth-Request-Groups: admins', 'X-WEBAUTH-USER: admin', 'X-Authenticated-User: admin', 'Remote-User: admin', 'X-Remote-User: admin'];
  const echo = echoOf(await curl(gw.port, 'open.example.test', '/public', { headers: [...sent, 'X-Custom: kept'] }));
  for (const line of sent) {
    const name = line.split(':')[0]!.toLowerCase();
    assert.equal(echo.headers[name], undefined, name);
  }
  assert.equal(echo.headers['x-custom'], 'kept');
});
