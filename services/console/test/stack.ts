import fs from 'node:fs';
import { createRequire } from 'node:module';
import { Directory, type App } from '@hearth/directory';
import { backChannelFetch } from '@hearth/web';
import * as oidc from 'openid-client';
import { freePort, startDaemon, testEnv, type Daemon, type TestEnv } from '@hearth/testkit';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/**
 * How long one browser step (a navigation, a locator) may take: generous, since the whole suite
 * runs these files two at a time beside other daemons on two cores (load averages of 20–30 seen).
 */
export const PAGE_TIMEOUT_MS = 60000;

/** The password every seeded user starts with. */
export const PASSWORD = 'correct horse battery staple';

export interface ConsoleStack {
  env: TestEnv;
  directory: Directory;
  oidc: Daemon;
  console: Daemon;
  issuer: string;
  /** the console's public URL */
  url: string;
  close(): Promise<void>;
}

/**
 * services/oidc and services/console as daemons on free ports over one directory; `seed`
 * adds users and apps before they start. The test's own Directory watches for changes,
 * so it sees what the console writes. `host` names both in their public URLs.
 */
export async function startConsoleStack(seed: (directory: Directory) => Promise<void>, opts: { env?: Record<string, string>; hosts?: { issuer: string; console: string } } = {}): Promise<ConsoleStack> {
  const stops: (() => Promise<unknown>)[] = [];
  const close = async (): Promise<void> => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => {});
  };
  try {
    const oidcPort = await freePort();
    const consolePort = await freePort();
    // WebAuthn needs host names (an IP address cannot be an RP ID): the passkey tests name both
    // daemons under a test domain that Chromium maps to loopback (see launchChromium), and the
    // console reaches the provider by address, as in containers.
    const issuer = `http://${opts.hosts?.issuer ?? '127.0.0.1'}:${oidcPort}`;
    const url = `http://${opts.hosts?.console ?? '127.0.0.1'}:${consolePort}`;
    const env = await testEnv({
      env: {
        HEARTH_OIDC_PORT: String(oidcPort),
        HEARTH_OIDC_ISSUER: issuer,
        HEARTH_CONSOLE_PORT: String(consolePort),
        HEARTH_CONSOLE_URL: url,
        HEARTH_LOG_LEVEL: 'info',
        ...(opts.hosts ? { HEARTH_CONSOLE_OIDC_INTERNAL_URL: `http://127.0.0.1:${oidcPort}` } : {}),
        ...opts.env,
      },
    });
    stops.push(() => env.cleanup());
    const directory = await Directory.open(env.config, { watch: true });
    stops.push(() => directory.close());
    await seed(directory);
    const started = await Promise.allSettled([
      startDaemon('services/oidc/src/main.ts', env.env, (out) => out.includes('"ready"'), 60000),
      startDaemon('services/console/src/main.ts', env.env, (out) => out.includes('"ready"'), 60000),
    ]);
    for (const s of started) if (s.status === 'fulfilled') stops.push(() => s.value.stop());
    const [oidc, consoleDaemon] = started.map((s) => {
      if (s.status === 'rejected') throw s.reason;
      return s.value;
    }) as [Daemon, Daemon];
    return { env, directory, oidc, console: consoleDaemon, issuer, url, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * Headless Debian Chromium. `names` lists http origins whose host names resolve to loopback in
 * this browser only (--host-resolver-rules) and count as secure contexts, as WebAuthn requires
 * (https would, but Chromium refuses WebAuthn on a certificate it does not trust).
 */
export function launchChromium(names: string[] = []): Promise<Browser> {
  const hosts = [...new Set(names.map((u) => new URL(u).hostname))];
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...(names.length ? [`--host-resolver-rules=${hosts.map((h) => `MAP ${h} 127.0.0.1`).join(',')}`, `--unsafely-treat-insecure-origin-as-secure=${names.join(',')}`] : []),
    ],
  });
}

/** Opens the console and signs in at the provider's login page with a password (and a TOTP code when asked). */
export async function signIn(context: BrowserContext, stack: ConsoleStack, username: string, password = PASSWORD, totp?: () => string): Promise<Page> {
  const page = await context.newPage();
  page.setDefaultTimeout(PAGE_TIMEOUT_MS);
  await page.goto(`${stack.url}/`);
  await page.waitForURL((u) => u.origin === stack.issuer);
  await page.getByLabel('Username or email').fill(username);
  await page.getByLabel('Password').fill(password);
  await Promise.all([page.waitForURL((u) => u.origin === stack.url || u.pathname.startsWith('/interaction/')), page.getByRole('button', { name: 'Sign in', exact: true }).click()]);
  if (totp) {
    await page.getByLabel('Authentication code').fill(totp());
    await page.getByRole('button', { name: 'Verify' }).click();
  }
  await page.waitForURL((u) => u.origin === stack.url);
  return page;
}

/** An OIDC app (not running: the tests catch its callback in the browser) for sign-ins beside the console. */
export const NOTES = { clientId: 'cid-notes', clientSecret: 'secret-notes-0123456789abcdef', redirectUri: 'https://notes.example.test/auth/callback' };

/** `backchannelLogoutUri`: a path on the app's domain where the provider posts logout tokens. */
export async function addNotesApp(d: Directory, o: { backchannelLogoutUri?: string } = {}): Promise<void> {
  const app: App = {
    id: 'notes',
    domain: 'notes.example.test',
    manifest: { title: 'Notes', addons: { oidc: { loginRedirectUri: '/auth/callback', ...o } } },
    access: null,
    upstream: null,
    credentials: { oidc: { clientId: NOTES.clientId, clientSecret: NOTES.clientSecret } },
    createdAt: new Date().toISOString(),
  };
  await d.putApp(app, []);
}

/** The notes app's client; with named hosts it reaches the provider by address, as the console does. */
export function notesClient(stack: ConsoleStack): Promise<oidc.Configuration> {
  const internal = stack.env.env.HEARTH_CONSOLE_OIDC_INTERNAL_URL;
  return oidc.discovery(new URL(stack.issuer), NOTES.clientId, NOTES.clientSecret, undefined, {
    execute: [oidc.allowInsecureRequests],
    ...(internal ? { [oidc.customFetch]: backChannelFetch(stack.issuer, internal) } : {}),
  });
}

/** Starts an authorization at the notes app in `context`; `landed` resolves with the callback URL the browser is sent to. */
export async function startAppSignIn(context: BrowserContext, rp: oidc.Configuration, scope = 'openid profile'): Promise<{ page: Page; verifier: string; state: string; landed: Promise<URL> }> {
  let resolve!: (u: URL) => void;
  const landed = new Promise<URL>((r) => (resolve = r));
  await context.unrouteAll();
  await context.route('https://notes.example.test/**', async (route) => {
    resolve(new URL(route.request().url()));
    await route.fulfill({ status: 200, contentType: 'text/html', body: '<!DOCTYPE html><title>Notes</title><p>back at the app</p>' });
  });
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(rp, { redirect_uri: NOTES.redirectUri, scope, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state });
  const page = await context.newPage();
  page.setDefaultTimeout(PAGE_TIMEOUT_MS);
  await page.goto(url.href);
  return { page, verifier, state, landed };
}

const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface Violation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/** The page's serious and critical violations (axe injected through the debugger, which the page's CSP does not govern). */
export async function axeViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE_SOURCE);
  const result = (await page.evaluate('axe.run(document, { resultTypes: ["violations"] })')) as { violations: Violation[] };
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}
