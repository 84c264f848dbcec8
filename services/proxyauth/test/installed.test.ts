import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, hearth, MANIFESTS, startDaemon, testEnv, waitFor, type Daemon, type TestEnv } from '@hearth/testkit';
import { SESSION_COOKIE } from '../src/session.ts';
import { HttpBrowser, curl, echoOf, formOf, startUpstream, type Upstream } from './helpers.ts';

/**
 * Apps installed with the CLI while the gateway and the provider run, over PostgreSQL:
 * the provisioned proxyAuth client signs in, the dashboard manifest's rules and Basic
 * apply, and logout ends the sessions in the shared store.
 */

const PASSWORD = 'correct horse battery staple';

let env: TestEnv;
let oidc: Daemon;
let gw: Daemon;
let upstream: Upstream;
let gwPort: number;
let issuer: string;

async function cli(args: string[], input?: string): Promise<string> {
  const r = await hearth(args, { env: env.env, input });
  assert.equal(r.code, 0, `hearth ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const at = (id: string, path: string): string => `http://${id}.example.test:${gwPort}${path}`;

before(async () => {
  upstream = await startUpstream();
  gwPort = await freePort();
  const oidcPort = await freePort();
  issuer = `http://127.0.0.1:${oidcPort}`;
  env = await testEnv({ backend: 'postgres', env: { HEARTH_PROXYAUTH_PORT: String(gwPort), HEARTH_OIDC_PORT: String(oidcPort), HEARTH_OIDC_ISSUER: issuer, HEARTH_LOG_LEVEL: 'info' } });
  [oidc, gw] = await Promise.all([
    startDaemon('services/oidc/src/main.ts', env.env, (out) => out.includes('"ready"'), 60000),
    startDaemon('services/proxyauth/src/main.ts', env.env, (out) => out.includes('"ready"'), 60000),
  ]);
  await cli(['user', 'add', 'alice', '--email', 'alice@example.test', '--password-stdin'], `${PASSWORD}\n`);
  await cli(['app', 'install', `${MANIFESTS}/dashboard.json`, '--id', 'dash', '--domain', 'dash.example.test', '--upstream', upstream.url]);
});

after(async () => {
  await gw?.stop();
  await oidc?.stop();
  await upstream?.close();
  await env?.cleanup();
});

test('an app installed with `hearth app install` is guarded as its manifest says, and its client signs in', async () => {
  // The running gateway picks up the new app (directory change notifications).
  const first = await waitFor(async () => {
    const r = await curl(gwPort, 'dash.example.test', '/');
    return r.status !== 404 ? r : null;
  }, 15000);
  assert.equal(first!.status, 302);
  assert.equal(echoOf(await curl(gwPort, 'dash.example.test', '/webhooks/push', { method: 'POST', data: '{}' })).url, '/webhooks/push');
  assert.equal(echoOf(await curl(gwPort, 'dash.example.test', '/', { user: `alice:${PASSWORD}` })).headers['x-remote-user'], 'alice');
  assert.equal(echoOf(await curl(gwPort, 'dash.example.test', '/api', { headers: ['Authorization: Bearer t0ken'] })).headers.authorization, 'Bearer t0ken');

  const browser = new HttpBrowser();
  const login = await browser.go(at('dash', '/reports'));
  assert.equal(login.final.url.origin, issuer);
  const form = formOf(login.final, '/login');
  const back = await browser.go(form.action, { form: { ...form.fields, login: 'alice', password: PASSWORD } });
  assert.equal(back.final.url.href, at('dash', '/reports'));
  assert.equal(JSON.parse(back.final.body).headers['x-remote-user'], 'alice');
  assert.ok(browser.cookie('dash.example.test', SESSION_COOKIE));

  // Logout ends the session in PostgreSQL; the old cookie no longer opens the wall.
  const cookie = `${SESSION_COOKIE}=${browser.cookie('dash.example.test', SESSION_COOKIE)!.value}`;
  const out = await browser.request(at('dash', '/logout'));
  assert.equal(new URL(out.headers.location!).origin, issuer);
  assert.equal((await curl(gwPort, 'dash.example.test', '/reports', { cookie })).status, 302);

  // Uninstalling takes the app off the gateway.
  await cli(['app', 'uninstall', 'dash']);
  await waitFor(async () => (await curl(gwPort, 'dash.example.test', '/webhooks/x')).status === 404, 15000);
});
