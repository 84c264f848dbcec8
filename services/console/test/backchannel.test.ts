import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@hearth/testkit';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext } from 'playwright-core';
import { addNotesApp, launchChromium, NOTES, notesClient, PASSWORD, signIn, startAppSignIn, startConsoleStack, type ConsoleStack } from './stack.ts';

/**
 * Signing out a single sign-on session in the console reaches the apps it signed in to by
 * OpenID Back-Channel Logout 1.0. The notes app registers a backchannel_logout_uri; a small HTTPS
 * server on loopback (a certificate from a CA made here) stands in for it and checks each logout
 * token as the specification's section 2.6 tells a relying party to: signed with a key from the
 * provider's JWKS, iss, aud, iat, the back-channel-logout event, sid, no nonce. Ending one session
 * tells the app of that session only; an admin's "sign out everywhere" tells it of the rest.
 */

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const APP_HOST = 'notes.example.test';
/** this suite's own loopback address */
const APP_ADDRESS = '127.0.0.34';

let stack: ConsoleStack;
let browser: Browser;
let rp: oidc.Configuration;
let tmp: string;
let app: https.Server;
/** what the app accepted, and what it refused (with why) */
const accepted: JWTPayload[] = [];
const refused: string[] = [];

/** A CA and a certificate for the app's host signed by it, made with openssl. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const f = (n: string): string => path.join(dir, n);
  const ssl = (args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
  ssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=Hearth test CA', '-days', '1', '-keyout', f('ca.key'), '-out', f('ca.crt')]);
  ssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${APP_HOST}`, '-keyout', f('app.key'), '-out', f('app.csr')]);
  fs.writeFileSync(f('san.ext'), `subjectAltName=DNS:${APP_HOST}\n`);
  ssl(['x509', '-req', '-in', f('app.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', f('san.ext'), '-out', f('app.crt')]);
  return { ca: f('ca.crt'), cert: fs.readFileSync(f('app.crt'), 'utf8'), key: fs.readFileSync(f('app.key'), 'utf8') };
}

/** The relying party's checks of a logout token (Back-Channel Logout 1.0, 2.6), with jose. */
async function validateLogoutToken(token: string): Promise<JWTPayload> {
  const meta = rp.serverMetadata();
  const jwks = createRemoteJWKSet(new URL(meta.jwks_uri!));
  assert.equal(decodeProtectedHeader(token).typ, 'logout+jwt');
  const { payload } = await jwtVerify(token, jwks, { issuer: meta.issuer, audience: NOTES.clientId, typ: 'logout+jwt', requiredClaims: ['iat', 'jti', 'sid', 'events'] });
  const events = payload.events as Record<string, unknown> | undefined;
  assert.deepEqual(events?.[BACKCHANNEL_EVENT], {});
  assert.equal(payload.nonce, undefined, 'a logout token carries no nonce');
  return payload;
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'console-backchannel-'));
  const certs = makeCertificates(tmp);
  app = https.createServer({ cert: certs.cert, key: certs.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const token = new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get('logout_token');
      if (req.method !== 'POST' || req.url !== '/oidc/backchannel' || !token) {
        refused.push(`${req.method} ${req.url} without a logout token`);
        return void res.writeHead(400).end();
      }
      validateLogoutToken(token).then(
        (claims) => {
          accepted.push(claims);
          res.writeHead(200, { 'Cache-Control': 'no-store' }).end();
        },
        (err: Error) => {
          refused.push(err.message);
          res.writeHead(400).end();
        },
      );
    });
  });
  await new Promise<void>((resolve) => app.listen(0, APP_ADDRESS, resolve));
  const appPort = (app.address() as AddressInfo).port;
  stack = await startConsoleStack(
    async (d) => {
      await d.addUser({ username: 'root', email: 'root@example.test', password: PASSWORD, role: 'admin' });
      await d.addUser({ username: 'pat', email: 'pat@example.test', password: PASSWORD });
      await addNotesApp(d, { backchannelLogoutUri: '/oidc/backchannel' });
    },
    {
      env: {
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${fileURLToPath(new URL('./route-hosts.mjs', import.meta.url))}`.trim(),
        NODE_EXTRA_CA_CERTS: certs.ca,
        HEARTH_TEST_ROUTES: `${APP_HOST}=${APP_ADDRESS}:${appPort}`,
      },
    },
  );
  rp = await notesClient(stack);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await stack?.close();
  app?.closeAllConnections();
  await new Promise((r) => app?.close(r));
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Signs pat in to the notes app in `context`; the ID token's sid names the provider session. */
async function appSignIn(context: BrowserContext): Promise<string> {
  const { page, verifier, state, landed } = await startAppSignIn(context, rp);
  await page.getByLabel('Username or email').fill('pat');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  const tokens = await oidc.authorizationCodeGrant(rp, await landed, { pkceCodeVerifier: verifier, expectedState: state });
  await page.close();
  const sid = tokens.claims()?.sid;
  assert.equal(typeof sid, 'string', 'the ID token names its session (sid)');
  return sid as string;
}

test('a sign-in ended on the sessions page reaches the app by back-channel logout, for that session only', async () => {
  const pat = stack.directory.userByUsername('pat')!;
  const phone = await browser.newContext({ userAgent: 'NotesPhone/1.0' });
  const laptop = await browser.newContext({ userAgent: 'NotesLaptop/1.0' });
  const phoneSid = await appSignIn(phone);
  const laptopSid = await appSignIn(laptop);
  assert.notEqual(phoneSid, laptopSid);

  const consoleBrowser = await browser.newContext({ javaScriptEnabled: false });
  const page = await signIn(consoleBrowser, stack, 'pat');
  await page.goto(`${stack.url}/sessions`);
  const sso = page.getByRole('region', { name: /Where you are signed in to Hearth/ });
  await sso.getByRole('row').filter({ hasText: 'NotesPhone/1.0' }).getByRole('button', { name: /^Sign out the sign-in/ }).click();
  await page.getByText('The session was signed out.').waitFor();

  await waitFor(() => accepted.length === 1, 30000, 50);
  assert.deepEqual(refused, []);
  assert.equal(accepted[0]!.sub, pat.id);
  assert.equal(accepted[0]!.sid, phoneSid);
  // The laptop's session is still there, and the app heard nothing of it.
  assert.equal(await sso.getByRole('row').filter({ hasText: 'NotesLaptop/1.0' }).count(), 1);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(accepted.length, 1);

  // An admin's "sign out everywhere" tells the app of the laptop's session too.
  const adminBrowser = await browser.newContext({ javaScriptEnabled: false });
  const admin = await signIn(adminBrowser, stack, 'root');
  await admin.goto(`${stack.url}/admin/users/pat`);
  await admin.getByRole('button', { name: 'Sign out everywhere' }).click();
  await admin.getByText('The user is signed out everywhere').waitFor();
  await waitFor(() => accepted.some((c) => c.sid === laptopSid), 30000, 50);
  assert.deepEqual(refused, []);
  assert.ok(accepted.every((c) => c.sub === pat.id));
  await Promise.all([phone.close(), laptop.close(), consoleBrowser.close(), adminBrowser.close()]);
});

test('only the console may end sessions at the provider: another client’s credentials get 401 and nothing ends', async () => {
  const pat = stack.directory.userByUsername('pat')!;
  const context = await browser.newContext();
  await appSignIn(context);
  const before = accepted.length;
  const res = await fetch(`${stack.issuer}/hearth/sessions/end`, {
    method: 'POST',
    headers: { Authorization: `Basic ${Buffer.from(`${NOTES.clientId}:${NOTES.clientSecret}`).toString('base64')}` },
    body: new URLSearchParams({ account: pat.id }),
  });
  assert.equal(res.status, 401);
  const anonymous = await fetch(`${stack.issuer}/hearth/sessions/end`, { method: 'POST', body: new URLSearchParams({ account: pat.id }) });
  assert.equal(anonymous.status, 401);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(accepted.length, before);
  const consoleBrowser = await browser.newContext({ javaScriptEnabled: false });
  const page = await signIn(consoleBrowser, stack, 'pat');
  await page.goto(`${stack.url}/sessions`);
  assert.equal(await page.getByRole('region', { name: /Where you are signed in to Hearth/ }).getByRole('row').count(), 3, 'a header, the app browser and this one');
  await Promise.all([context.close(), consoleBrowser.close()]);
});
