import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openOidcStorage, type OidcStorage } from '@hearth/oidc/storage';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext } from 'playwright-core';
import { addNotesApp, launchChromium, notesClient, PASSWORD, signIn, startAppSignIn, startConsoleStack, type ConsoleStack } from './stack.ts';

/**
 * The sessions page ends sign-ins for real: an OIDC app's session, ended in the console, takes
 * the app's refresh token with it (openid-client's refresh is refused) and the next authorization
 * asks for a password again; an admin's "sign out everywhere" does the same to every session of
 * the user, the console's included. Once with the provider's state in the store, once in Redis.
 */

const REDIS_URL = process.env.HEARTH_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';

for (const mode of ['store', 'redis'] as const) {
  describe(`sessions (provider state in the ${mode})`, () => {
    let stack: ConsoleStack;
    let browser: Browser;
    let rp: oidc.Configuration;
    let storage: OidcStorage;

    before(async () => {
      stack = await startConsoleStack(
        async (d) => {
          await d.addUser({ username: 'root', email: 'root@example.test', password: PASSWORD, role: 'admin' });
          await d.addUser({ username: 'pat', email: 'pat@example.test', password: PASSWORD, displayName: 'Pat Smith' });
          await addNotesApp(d);
        },
        mode === 'redis' ? { env: { HEARTH_REDIS_URL: REDIS_URL } } : {},
      );
      rp = await notesClient(stack);
      storage = await openOidcStorage(stack.env.config, stack.directory.store);
      browser = await launchChromium();
    });

    after(async () => {
      await browser?.close();
      await storage?.close();
      await stack?.close();
    });

    function authorize(context: BrowserContext): ReturnType<typeof startAppSignIn> {
      return startAppSignIn(context, rp, 'openid profile offline_access');
    }

    /** Signs in to the notes app with a password and returns its refresh token. */
    async function appSignIn(context: BrowserContext): Promise<string> {
      const { page, verifier, state, landed } = await authorize(context);
      await page.getByLabel('Username or email').fill('pat');
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      const tokens = await oidc.authorizationCodeGrant(rp, await landed, { pkceCodeVerifier: verifier, expectedState: state });
      assert.ok(tokens.refresh_token, 'the app holds a refresh token');
      await page.close();
      return tokens.refresh_token;
    }

    async function refused(refreshToken: string): Promise<string> {
      try {
        await oidc.refreshTokenGrant(rp, refreshToken);
      } catch (err) {
        return String((err as { error?: string }).error ?? (err as Error).message);
      }
      return 'accepted';
    }

    /** A new authorization in `context` stops at the provider's password form instead of going back to the app. */
    async function asksForLogin(context: BrowserContext): Promise<boolean> {
      const { page, landed } = await authorize(context);
      const outcome = await Promise.race([landed.then(() => 'app'), page.getByLabel('Password').waitFor().then(() => 'login')]);
      await page.close();
      return outcome === 'login';
    }

    test('a single sign-on session ended on the sessions page takes the app refresh token with it', async () => {
      const appBrowser = await browser.newContext({ userAgent: 'NotesPhone/1.0' });
      const refreshToken = await appSignIn(appBrowser);
      // Still good before: refresh rotates it.
      const rotated = await oidc.refreshTokenGrant(rp, refreshToken);
      assert.ok(rotated.refresh_token);

      const consoleBrowser = await browser.newContext({ javaScriptEnabled: false });
      const page = await signIn(consoleBrowser, stack, 'pat');
      await page.getByRole('link', { name: 'Sessions' }).click();
      const sso = page.getByRole('region', { name: /Where you are signed in to Hearth/ });
      const rows = sso.getByRole('row');
      assert.equal(await rows.count(), 3, 'a header and two sign-ins: this browser and the app browser');
      const appRow = rows.filter({ hasText: 'NotesPhone/1.0' });
      assert.match(await appRow.innerText(), /127\.0\.0\.1/);
      assert.match(await appRow.innerText(), /Notes/);
      assert.match(await rows.filter({ hasText: 'this browser' }).innerText(), /this console/);

      await appRow.getByRole('button', { name: /^Sign out the sign-in/ }).click();
      await page.getByText('The session was signed out.').waitFor();
      assert.equal(await sso.getByRole('row').count(), 2);

      assert.equal(await refused(rotated.refresh_token!), 'invalid_grant');
      assert.equal(await asksForLogin(appBrowser), true, 'the app browser must sign in again');
      // The console's own sign-in is untouched.
      assert.equal((await page.reload())?.status(), 200);
      assert.equal(new URL(page.url()).pathname, '/sessions');
      await consoleBrowser.close();
      await appBrowser.close();
    });

    test('an admin signs a user out everywhere: console, single sign-on and app tokens', async () => {
      const pat = stack.directory.userByUsername('pat')!;
      const appBrowser = await browser.newContext();
      const refreshToken = await appSignIn(appBrowser);
      const patConsole = await browser.newContext({ javaScriptEnabled: false });
      const patPage = await signIn(patConsole, stack, 'pat');
      assert.ok((await storage.findAll('Session', 'accountId', pat.id)).length >= 2);

      const adminBrowser = await browser.newContext({ javaScriptEnabled: false });
      const admin = await signIn(adminBrowser, stack, 'root');
      await admin.goto(`${stack.url}/admin/users/pat`);
      const counts = /console (\d+)×.*single sign-on (\d+)×/.exec(await admin.getByText(/^Signed in to the console/).innerText());
      assert.ok(Number(counts?.[1]) >= 1 && Number(counts?.[2]) >= 2, String(counts));
      await admin.getByRole('button', { name: 'Sign out everywhere' }).click();
      await admin.getByText('The user is signed out everywhere').waitFor();
      assert.match(await admin.getByText(/^Signed in to the console/).innerText(), /console 0×.*single sign-on 0×/);

      assert.equal(await refused(refreshToken), 'invalid_grant');
      assert.deepEqual(await storage.findAll('Session', 'accountId', pat.id), []);
      assert.deepEqual(await storage.findAll('Grant', 'accountId', pat.id), []);
      assert.equal(await asksForLogin(appBrowser), true);
      // pat's console is signed out and, the provider session being gone too, lands on the password form.
      await patPage.goto(`${stack.url}/sessions`);
      await patPage.waitForURL((u) => u.origin === stack.issuer);
      await patPage.getByLabel('Password').waitFor();
      // The admin's own sessions are untouched.
      assert.equal((await admin.goto(`${stack.url}/sessions`))?.status(), 200);
      await Promise.all([appBrowser.close(), patConsole.close(), adminBrowser.close()]);
    });

    test("a user cannot end another user's single sign-on session by naming it", async () => {
      const root = stack.directory.userByUsername('root')!;
      const [rootSession] = await storage.findAll('Session', 'accountId', root.id);
      assert.ok(rootSession?.uid);
      const context = await browser.newContext();
      const page = await signIn(context, stack, 'pat');
      const csrf = (await page.locator('input[name=csrf]').first().getAttribute('value'))!;
      const res = await context.request.post(`${stack.url}/sessions/end`, { form: { csrf, kind: 'oidc', handle: rootSession.uid } });
      assert.equal(res.status(), 200);
      assert.equal((await storage.findAll('Session', 'uid', rootSession.uid)).length, 1);
      await context.close();
    });
  });
}
