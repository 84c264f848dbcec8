import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { totpCode } from '@hearth/directory';
import * as oidc from 'openid-client';
import { chromium, type Browser as Chromium } from 'playwright-core';
import { addOidcApp, addUser, idOf, authorizationRequest, PASSWORD, rpConfig, startStack, type SeededApp, type Stack } from './helpers.ts';

/** Debian's chromium signs in through the real pages, with JavaScript turned off, by label and keyboard only. */
describe('headless Chromium', () => {
  let stack: Stack;
  let app: SeededApp;
  let rp: oidc.Configuration;
  let secret: string;
  let browser: Chromium;

  before(async () => {
    stack = await startStack();
    app = await addOidcApp(stack.directory, 'notes', { loginRedirectUri: '/auth/callback', logoutRedirectUri: '/signed-out' });
    await addUser(stack.directory, 'tina', { displayName: 'Tina Turner' });
    secret = (await stack.directory.enableTotp('tina')).secret;
    rp = await rpConfig(stack.issuer, app.clientId, app.clientSecret);
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
  });

  it('signs in with password and TOTP, then signs out', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    const cspViolations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    // The app itself is not running: catch the redirect to it instead of following it.
    const landed: URL[] = [];
    await context.route('https://notes.example.test/**', async (route) => {
      landed.push(new URL(route.request().url()));
      await route.fulfill({ status: 200, contentType: 'text/html', body: '<!DOCTYPE html><title>Notes</title><p>back at the app</p>' });
    });

    const req = await authorizationRequest(rp, app.redirectUri);
    await page.goto(req.url.href);
    assert.equal(await page.title(), 'Sign in to Notes');
    await page.getByLabel('Username or email').fill('tina');
    await page.getByLabel('Password').fill('wrong password');
    await page.keyboard.press('Enter');
    await page.waitForLoadState();
    assert.match(await page.getByRole('alert').innerText(), /Incorrect username, email or password/);

    await page.getByLabel('Password').fill(PASSWORD);
    await page.keyboard.press('Enter');
    await page.getByLabel('Authentication code').waitFor();
    assert.equal(await page.title(), 'Two-factor authentication');
    await page.getByLabel('Authentication code').fill(totpCode(secret));
    await page.keyboard.press('Enter');
    await page.getByText('back at the app').waitFor();

    const callback = landed.at(-1)!;
    assert.equal(callback.origin + callback.pathname, app.redirectUri);
    const tokens = await oidc.authorizationCodeGrant(rp, callback, { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce });
    const claims = tokens.claims()!;
    assert.equal(claims.sub, idOf(stack.directory, 'tina'));
    assert.equal(claims.name, 'Tina Turner');
    assert.deepEqual(claims.amr, ['pwd', 'otp']);

    // RP-initiated logout: a confirmation page, then back to the registered post-logout URI.
    await page.goto(oidc.buildEndSessionUrl(rp, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'https://notes.example.test/signed-out' }).href);
    await page.getByRole('button', { name: 'Sign out' }).focus();
    await page.keyboard.press('Enter');
    await page.getByText('back at the app').waitFor();
    assert.equal(landed.at(-1)!.pathname, '/signed-out');

    // Signed out for real: a new sign-in asks for the password again.
    const again = await authorizationRequest(rp, app.redirectUri);
    await page.goto(again.url.href);
    await page.getByLabel('Password').waitFor();
    assert.deepEqual(cspViolations, []);
    await context.close();
  });

  it('cannot be framed', async () => {
    const req = await authorizationRequest(rp, app.redirectUri);
    // Another origin on loopback (a page of its own, so Chromium's local-network checks do not interfere).
    const attacker = http.createServer((_q, s) => s.end(`<!DOCTYPE html><title>attacker</title><iframe id="f" src="${req.url.href}"></iframe>`));
    await new Promise<void>((r) => attacker.listen(0, '127.0.0.1', r));
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      // Cross-site, the interaction cookie is withheld, so the frame would get our error page; no page of ours may render.
      const served = page.waitForResponse((r) => r.url().includes('/interaction/'));
      await page.goto(`http://127.0.0.1:${(attacker.address() as AddressInfo).port}/`, { waitUntil: 'load' });
      await served;
      await page.waitForLoadState('load');
      const frame = page.frames().find((f) => f !== page.mainFrame());
      assert.ok(frame, 'the iframe exists');
      // Chromium replaces a refused frame with its own error document.
      assert.ok(!frame.url().startsWith(stack.issuer), `frame shows ${frame.url()}`);
      assert.equal(await frame.getByText(/Sign(-| )in/).count(), 0, 'no page of ours renders inside a frame');
    } finally {
      await context.close();
      attacker.close();
    }
  });
});
