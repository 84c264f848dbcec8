import { Directory } from '@hearth/directory';
import { freePort, startDaemon, testEnv, type Daemon, type TestEnv } from '@hearth/testkit';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

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
export async function startConsoleStack(seed: (directory: Directory) => Promise<void>, opts: { env?: Record<string, string>; host?: string } = {}): Promise<ConsoleStack> {
  const stops: (() => Promise<unknown>)[] = [];
  const close = async (): Promise<void> => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => {});
  };
  try {
    const oidcPort = await freePort();
    const consolePort = await freePort();
    // WebAuthn needs a host name (an IP address cannot be an RP ID): the passkey tests use localhost.
    const host = opts.host ?? '127.0.0.1';
    const issuer = `http://${host}:${oidcPort}`;
    const url = `http://${host}:${consolePort}`;
    const env = await testEnv({
      env: { HEARTH_OIDC_PORT: String(oidcPort), HEARTH_OIDC_ISSUER: issuer, HEARTH_CONSOLE_PORT: String(consolePort), HEARTH_CONSOLE_URL: url, HEARTH_LOG_LEVEL: 'info', ...opts.env },
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

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Opens the console and signs in at the provider's login page with a password (and a TOTP code when asked). */
export async function signIn(context: BrowserContext, stack: ConsoleStack, username: string, password = PASSWORD, totp?: () => string): Promise<Page> {
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
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
