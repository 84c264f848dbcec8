import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { addNotesApp, launchChromium, notesClient, PASSWORD, signIn, startAppSignIn as startNotesSignIn, startConsoleStack, type ConsoleStack } from './stack.ts';

/**
 * Passkeys end to end with Chromium's virtual authenticator (CDP WebAuthn): registered in the
 * console, then the only thing used to sign in to an OIDC app; as the second factor after a
 * password; and refused when replayed, answered to another challenge, or from another origin.
 * An admin's "reset two-factor" then takes TOTP and every passkey away: a password alone signs in.
 */

let stack: ConsoleStack;
let browser: Browser;
let rp: oidc.Configuration;
let credential: Record<string, unknown>;

before(async () => {
  stack = await startConsoleStack(
    async (d) => {
      await d.addUser({ username: 'pat', email: 'pat@example.test', password: PASSWORD, displayName: 'Pat Smith' });
      await d.addUser({ username: 'root', email: 'root@example.test', password: PASSWORD, role: 'admin' });
      await addNotesApp(d);
    },
    // Host names, not loopback addresses: the RP ID comes from the setting, and both hosts are under it.
    { hosts: { issuer: 'auth.hearth.test', console: 'console.hearth.test' }, env: { HEARTH_WEBAUTHN_RP_ID: 'hearth.test' } },
  );
  rp = await notesClient(stack);
  browser = await launchChromium([stack.issuer, stack.url]);
});

after(async () => {
  await browser?.close();
  await stack?.close();
});

async function authenticator(page: Page): Promise<{ cdp: CDPSession; id: string }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  return { cdp, id: authenticatorId };
}

/** The authenticator's copy of the credential after a use (its signature counter moved on; a stale copy would look cloned). */
async function keepCredential(auth: { cdp: CDPSession; id: string }): Promise<void> {
  const { credentials } = (await auth.cdp.send('WebAuthn.getCredentials', { authenticatorId: auth.id })) as unknown as { credentials: Record<string, unknown>[] };
  credential = credentials[0]!;
}

function within<T>(p: Promise<T>, ms = 20000): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms))]);
}

function startAppSignIn(context: BrowserContext): ReturnType<typeof startNotesSignIn> {
  return startNotesSignIn(context, rp);
}

/** An app sign-in in `context` with pat's password, the browser's authenticator holding the registered passkey. */
async function passwordSignInHoldingPasskey(context: BrowserContext): Promise<Awaited<ReturnType<typeof startAppSignIn>> & { auth: { cdp: CDPSession; id: string } }> {
  const started = await startAppSignIn(context);
  const auth = await authenticator(started.page);
  await auth.cdp.send('WebAuthn.addCredential', { authenticatorId: auth.id, credential: credential as never });
  await started.page.getByLabel('Username or email').fill('pat');
  await started.page.getByLabel('Password').fill(PASSWORD);
  await started.page.getByRole('button', { name: 'Sign in', exact: true }).click();
  return { ...started, auth };
}

async function redeem(callback: URL, verifier: string, state: string): Promise<oidc.IDToken> {
  const tokens = await oidc.authorizationCodeGrant(rp, callback, { pkceCodeVerifier: verifier, expectedState: state });
  return tokens.claims()!;
}

test('a passkey registered in the console signs in to an OIDC app on its own', async () => {
  const context = await browser.newContext();
  const consolePage = await signIn(context, stack, 'pat');
  const { cdp, id } = await authenticator(consolePage);
  await consolePage.getByRole('link', { name: 'Passkeys' }).click();
  await consolePage.getByLabel('Name').fill('Laptop');
  await consolePage.getByRole('button', { name: 'Add a passkey' }).click();
  await consolePage.getByText('Passkey added.').waitFor();
  const pat = stack.directory.userByUsername('pat')!;
  const stored = await stack.directory.store.passkeysOf(pat.id);
  assert.deepEqual(stored.map((p) => p.name), ['Laptop']);
  const { credentials } = (await cdp.send('WebAuthn.getCredentials', { authenticatorId: id })) as unknown as { credentials: Record<string, unknown>[] };
  assert.equal(credentials.length, 1);
  assert.equal(credentials[0]!.isResidentCredential, true);
  assert.equal(credentials[0]!.rpId, 'hearth.test', 'registered under the configured RP ID');
  credential = credentials[0]!;
  await context.close();

  // A fresh browser holding only the passkey: no password is typed.
  const fresh = await browser.newContext();
  const { page, verifier, state, landed } = await startAppSignIn(fresh);
  const auth = await authenticator(page);
  await auth.cdp.send('WebAuthn.addCredential', { authenticatorId: auth.id, credential: credential as never });
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  const claims = await redeem(await within(landed), verifier, state);
  await keepCredential(auth);
  assert.ok(claims.sub === 'pat' || claims.sub === pat.id, `sub ${claims.sub}`);
  assert.deepEqual(claims.amr, ['hwk', 'user']);
  assert.notEqual((await stack.directory.store.findPasskey(stored[0]!.id))!.lastUsedAt, null);
  const audit = await stack.directory.store.listAudit({ username: 'pat', protocol: 'oidc', limit: 5 });
  assert.ok(audit.some((e) => e.ok && e.detail === 'passkey'));
  await fresh.close();
});

test('after a password, the passkey is the second factor', async () => {
  const context = await browser.newContext();
  const { page, verifier, state, landed, auth } = await passwordSignInHoldingPasskey(context);
  await page.getByRole('button', { name: 'Use your passkey' }).click();
  const claims = await redeem(await within(landed), verifier, state);
  await keepCredential(auth);
  assert.deepEqual(claims.amr, ['pwd', 'hwk']);
  await context.close();
});

test('an assertion replayed, answered to another challenge, or from another origin is refused', async () => {
  // Sign in once more, recording the assertion the browser posts.
  const context = await browser.newContext();
  const first = await startAppSignIn(context);
  const auth = await authenticator(first.page);
  await auth.cdp.send('WebAuthn.addCredential', { authenticatorId: auth.id, credential: credential as never });
  let posted: { url: string; form: URLSearchParams } | null = null;
  first.page.on('request', (r) => {
    if (r.method() === 'POST' && r.url().endsWith('/passkey')) posted = { url: r.url(), form: new URLSearchParams(r.postData() ?? '') };
  });
  await first.page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await within(first.landed);
  const captured = posted as { url: string; form: URLSearchParams } | null;
  assert.ok(captured);
  const assertion = captured.form.get('response')!;
  const counterAfter = (await stack.directory.store.passkeysOf(stack.directory.userByUsername('pat')!.id))[0]!.counter;
  await context.close();

  // A new sign-in attempt elsewhere (no passkey in this browser): the old assertion does not fit its challenge.
  const other = await browser.newContext();
  const second = await startAppSignIn(other);
  const form = second.page.locator('form[data-passkey]');
  const action = new URL((await form.getAttribute('action'))!, stack.issuer).href;
  const optionsUrl = new URL((await form.getAttribute('data-options'))!, stack.issuer).href;
  const csrf = (await form.locator('input[name=csrf]').getAttribute('value'))!;
  // Posted from the sign-in page itself (its cookies, its origin): the host name resolves only inside Chromium.
  const post = (url: string, fields: Record<string, string>): Promise<{ status: number; text: string }> =>
    second.page.evaluate(async ({ url, fields }) => {
      const res = await fetch(url, { method: 'POST', body: new URLSearchParams(fields) });
      return { status: res.status, text: await res.text() };
    }, { url, fields });
  const fetchChallenge = async (): Promise<string> => {
    const res = await post(optionsUrl, { csrf });
    assert.equal(res.status, 200);
    return (JSON.parse(res.text) as { challenge: string }).challenge;
  };

  await fetchChallenge();
  const replay = await post(action, { csrf, response: assertion });
  assert.equal(replay.status, 401);
  assert.match(replay.text, /could not be used here/);

  // The same assertion posted again without asking for a challenge: the spent one is gone.
  const again = await post(action, { csrf, response: assertion });
  assert.equal(again.status, 400);
  assert.match(again.text, /expired/);

  // Client data rewritten to the live challenge but another origin: refused (and the signature no longer fits either).
  const challenge = await fetchChallenge();
  const parsed = JSON.parse(assertion) as { response: { clientDataJSON: string } };
  const clientData = JSON.parse(Buffer.from(parsed.response.clientDataJSON, 'base64url').toString('utf8')) as Record<string, unknown>;
  parsed.response.clientDataJSON = Buffer.from(JSON.stringify({ ...clientData, challenge, origin: 'https://evil.example' })).toString('base64url');
  const foreign = await post(action, { csrf, response: JSON.stringify(parsed) });
  assert.equal(foreign.status, 401);

  await fetchChallenge();
  const garbage = await post(action, { csrf, response: '{"id":"x"' });
  assert.equal(garbage.status, 401);

  const pat = stack.directory.userByUsername('pat')!;
  assert.equal((await stack.directory.store.passkeysOf(pat.id))[0]!.counter, counterAfter, 'no refused assertion moved the counter');
  const refusals = await stack.directory.store.listAudit({ protocol: 'oidc', limit: 20 });
  assert.ok(refusals.filter((e) => !e.ok && e.detail?.startsWith('passkey')).length >= 3);
  await other.close();
});

test('an admin resets a user’s two-factor and passkeys: TOTP off, no passkey left, a password alone signs in', async () => {
  const pat = stack.directory.userByUsername('pat')!;
  await stack.directory.enableTotp('pat');
  assert.ok((await stack.directory.store.passkeysOf(pat.id)).length >= 1);
  const adminBrowser = await browser.newContext({ javaScriptEnabled: false });
  const admin = await signIn(adminBrowser, stack, 'root');
  await admin.goto(`${stack.url}/admin/users/pat`);
  await admin.getByRole('button', { name: 'Reset two-factor and passkeys' }).click();
  await admin.getByText('Two-factor authentication and passkeys reset.').waitFor();
  assert.deepEqual(await stack.directory.store.passkeysOf(pat.id), []);
  // this process's directory holds users in memory: read the console's write from the store
  await stack.directory.refresh();
  assert.equal(stack.directory.userByUsername('pat')!.totpSecret, null);
  await adminBrowser.close();

  // The authenticator still holds the credential, but the provider no longer knows it; the password alone does it.
  const context = await browser.newContext();
  const { verifier, state, landed } = await passwordSignInHoldingPasskey(context);
  const claims = await redeem(await within(landed), verifier, state);
  assert.deepEqual(claims.amr, ['pwd']);
  await context.close();
});
