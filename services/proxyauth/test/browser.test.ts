import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium, type Browser } from 'playwright-core';
import { totpCode } from '@hearth/directory';
import { PASSWORD, proxyAuthApp, startSignInStack, type SignInStack } from './stack.ts';

/**
 * A real browser (Debian's Chromium, headless) meets the wall: the provider's login
 * form with a TOTP step, back on the app with its identity, a WebSocket through the
 * gateway, then a second app reached without signing in again.
 */

let stack: SignInStack;
let browser: Browser;
let totpSecret: string;

before(async () => {
  stack = await startSignInStack(async (directory, upstream) => {
    await directory.addUser({ username: 'alice', email: 'alice@example.test', password: PASSWORD, displayName: 'Alice' });
    totpSecret = (await directory.enableTotp('alice')).secret;
    await directory.putApp(proxyAuthApp(upstream.url, 'wiki', {}), []);
    await directory.putApp(proxyAuthApp(upstream.url, 'dash', { path: '!/webhooks' }), []);
  });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--host-resolver-rules=MAP *.example.test 127.0.0.1'],
  });
});

after(async () => {
  await browser?.close();
  await stack?.close();
});

test('Chromium signs in through the wall with TOTP, lands on the app, then reaches a second app without signing in again', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(15000);

  await page.goto(`http://wiki.example.test:${stack.gwPort}/pages/home?rev=2`);
  assert.equal(new URL(page.url()).origin, stack.issuer, `expected the provider's login page, got ${page.url()}`);
  await page.fill('input[name=login]', 'alice');
  await page.fill('input[name=password]', PASSWORD);
  await Promise.all([page.waitForURL(/\/interaction\//), page.click('button[type=submit]:not(.secondary)')]);
  await page.waitForSelector('input[name=code]');
  await page.fill('input[name=code]', totpCode(totpSecret));
  await Promise.all([page.waitForURL(`http://wiki.example.test:${stack.gwPort}/pages/home?rev=2`), page.click('button[type=submit]:not(.secondary)')]);

  const echo = JSON.parse((await page.textContent('body')) ?? '{}');
  assert.equal(echo.url, '/pages/home?rev=2');
  assert.equal(echo.headers['x-remote-user'], 'alice');
  assert.equal(echo.headers['x-remote-email'], 'alice@example.test');
  const cookies = await context.cookies(`http://wiki.example.test:${stack.gwPort}`);
  const session = cookies.find((c) => c.name === 'hearth_proxyauth');
  assert.ok(session);
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Lax');
  // Page scripts cannot read the session cookie.
  assert.doesNotMatch(String(await page.evaluate('document.cookie')), /hearth_proxyauth=/);

  // A WebSocket from the page rides the same session through the gateway.
  const greeting = await page.evaluate(
    (url) =>
      new Promise<string>((resolve, reject) => {
        const ws = new WebSocket(url);
        const got: string[] = [];
        ws.onmessage = (e) => {
          got.push(String(e.data));
          if (got.length === 1) ws.send('ping');
          else {
            ws.close();
            resolve(got.join(' | '));
          }
        };
        ws.onerror = () => reject(new Error('websocket error'));
      }),
    `ws://wiki.example.test:${stack.gwPort}/ws`,
  );
  assert.equal(greeting, 'hello alice | ping');

  // Second app: the provider session carries over; no form is shown.
  const visited: string[] = [];
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) visited.push(f.url());
  });
  await page.goto(`http://dash.example.test:${stack.gwPort}/reports`);
  await page.waitForURL(`http://dash.example.test:${stack.gwPort}/reports`);
  assert.ok(!visited.some((u) => u.includes('/interaction/')), `asked to sign in again: ${visited.join(' → ')}`);
  assert.equal(JSON.parse((await page.textContent('body')) ?? '{}').headers['x-remote-user'], 'alice');
  await context.close();
});
