import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpBrowser } from './helpers.ts';
import { PASSWORD, proxyAuthApp, startSignInStack, submitLogin, type SignInStack } from './stack.ts';

/**
 * The provider's public issuer (what browsers use) is a name the gateway cannot reach,
 * as between containers; HEARTH_PROXYAUTH_OIDC_INTERNAL_URL carries the gateway's own
 * calls to it, and sign-in still works end to end.
 */

let stack: SignInStack;

before(async () => {
  stack = await startSignInStack(
    async (directory, upstream) => {
      await directory.addUser({ username: 'alice', email: 'alice@example.test', password: PASSWORD });
      await directory.putApp(proxyAuthApp(upstream.url, 'wall', {}), []);
    },
    { issuerHost: 'sso.example.test' },
  );
});

after(async () => {
  await stack?.close();
});

test('sign-in works when only browsers can reach the public issuer URL', async () => {
  const { issuer, at } = stack;
  await assert.rejects(fetch(`${issuer}/.well-known/openid-configuration`), 'the public issuer name must not resolve here');
  const browser = new HttpBrowser();
  const first = await browser.go(at('wall', '/inbox'));
  assert.equal(first.final.url.origin, issuer, 'browsers are sent to the public issuer');
  const back = await submitLogin(browser, first.final, 'alice');
  assert.equal(back.final.url.href, at('wall', '/inbox'));
  assert.equal(JSON.parse(back.final.body).headers['x-remote-user'], 'alice');
  const out = await browser.request(at('wall', '/logout'));
  assert.equal(new URL(out.headers.location!).origin, issuer);
});
