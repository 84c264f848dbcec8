import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Directory } from '@hearth/directory';
import { freePort, startDaemon, testEnv, type Daemon, type TestEnv } from '@hearth/testkit';
import { HttpBrowser, formOf, startUpstream, type Upstream } from './helpers.ts';

/**
 * The provider's public issuer (what browsers use) is a name the gateway cannot reach,
 * as between containers; HEARTH_PROXYAUTH_OIDC_INTERNAL_URL carries the gateway's own
 * calls to it, and sign-in still works end to end.
 */

const PASSWORD = 'correct horse battery staple';

let env: TestEnv;
let oidc: Daemon;
let gw: Daemon;
let upstream: Upstream;
let directory: Directory;
let gwPort: number;
let issuer: string;

before(async () => {
  upstream = await startUpstream();
  gwPort = await freePort();
  const oidcPort = await freePort();
  issuer = `http://sso.example.test:${oidcPort}`;
  env = await testEnv({
    env: {
      HEARTH_PROXYAUTH_PORT: String(gwPort),
      HEARTH_OIDC_PORT: String(oidcPort),
      HEARTH_OIDC_ISSUER: issuer,
      HEARTH_PROXYAUTH_OIDC_INTERNAL_URL: `http://127.0.0.1:${oidcPort}`,
      HEARTH_LOG_LEVEL: 'info',
    },
  });
  directory = await Directory.open(env.config);
  await directory.addUser({ username: 'alice', email: 'alice@example.test', password: PASSWORD });
  await directory.putApp(
    {
      id: 'wall',
      domain: 'wall.example.test',
      manifest: { title: 'Wall', addons: { proxyAuth: {} } },
      access: null,
      upstream: upstream.url,
      credentials: { proxyAuth: { clientId: 'proxyauth-wall', clientSecret: 'secret-wall-0123456789abcdef' } },
      createdAt: new Date().toISOString(),
    },
    [],
  );
  [oidc, gw] = await Promise.all([
    startDaemon('services/oidc/src/main.ts', env.env, (out) => out.includes('"ready"'), 60000),
    startDaemon('services/proxyauth/src/main.ts', env.env, (out) => out.includes('"ready"'), 60000),
  ]);
});

after(async () => {
  await gw?.stop();
  await oidc?.stop();
  await upstream?.close();
  await directory?.close();
  await env?.cleanup();
});

test('sign-in works when only browsers can reach the public issuer URL', async () => {
  await assert.rejects(fetch(`${issuer}/.well-known/openid-configuration`), 'the public issuer name must not resolve here');
  const browser = new HttpBrowser();
  const first = await browser.go(`http://wall.example.test:${gwPort}/inbox`);
  assert.equal(first.final.url.origin, issuer, 'browsers are sent to the public issuer');
  const form = formOf(first.final, '/login');
  const back = await browser.go(form.action, { form: { ...form.fields, login: 'alice', password: PASSWORD } });
  assert.equal(back.final.url.href, `http://wall.example.test:${gwPort}/inbox`);
  assert.equal(JSON.parse(back.final.body).headers['x-remote-user'], 'alice');
  const out = await browser.request(`http://wall.example.test:${gwPort}/logout`);
  assert.equal(new URL(out.headers.location!).origin, issuer);
});
