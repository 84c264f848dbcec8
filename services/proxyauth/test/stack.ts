import { Directory, type App } from '@hearth/directory';
import { freePort, startDaemon, testEnv, type Daemon, type TestEnv } from '@hearth/testkit';
import { HttpBrowser, formOf, startUpstream, type BrowserResponse, type Upstream } from './helpers.ts';

/** The password of every user the sign-in tests seed. */
export const PASSWORD = 'correct horse battery staple';

/**
 * An app at `<id>.example.test` behind the gateway, with its provisioned OIDC client; with
 * `cookieSecret` its session key is provisioned too (else the gateway derives one from its master key).
 */
export function proxyAuthApp(upstream: string, id: string, proxyAuth: Record<string, unknown>, opts: { cookieSecret?: boolean; extra?: Partial<App> } = {}): App {
  const credentials: Record<string, string> = { clientId: `proxyauth-${id}`, clientSecret: `secret-${id}-0123456789abcdef` };
  if (opts.cookieSecret) credentials.cookieSecret = `cookie-${id}-0123456789abcdef`;
  return {
    id,
    domain: `${id}.example.test`,
    manifest: { title: id, addons: { proxyAuth } },
    access: null,
    upstream,
    credentials: { proxyAuth: credentials },
    createdAt: new Date().toISOString(),
    ...opts.extra,
  };
}

export interface SignInStack {
  env: TestEnv;
  directory: Directory;
  upstream: Upstream;
  oidc: Daemon;
  gw: Daemon;
  gwPort: number;
  /** The provider's public issuer URL (what browsers are sent to). */
  issuer: string;
  /** The URL of `path` on app `id` (`<id>.example.test`) through the gateway. */
  at(id: string, path: string): string;
  close(): Promise<void>;
}

/**
 * services/oidc and the gateway as daemons on free ports over one directory, with an echo
 * upstream; `seed` adds the users and apps before the daemons start. With `issuerHost` the
 * provider's public issuer is that name (which the gateway cannot reach from here), and the
 * gateway makes its own calls through HEARTH_PROXYAUTH_OIDC_INTERNAL_URL.
 */
export async function startSignInStack(seed: (directory: Directory, upstream: Upstream) => Promise<void>, opts: { issuerHost?: string } = {}): Promise<SignInStack> {
  const stops: (() => Promise<unknown>)[] = [];
  const close = async (): Promise<void> => {
    for (const stop of stops.splice(0).reverse()) await stop();
  };
  try {
    const gwPort = await freePort();
    const oidcPort = await freePort();
    const issuer = `http://${opts.issuerHost ?? '127.0.0.1'}:${oidcPort}`;
    const env = await testEnv({
      env: {
        HEARTH_PROXYAUTH_PORT: String(gwPort),
        HEARTH_OIDC_PORT: String(oidcPort),
        HEARTH_OIDC_ISSUER: issuer,
        ...(opts.issuerHost ? { HEARTH_PROXYAUTH_OIDC_INTERNAL_URL: `http://127.0.0.1:${oidcPort}` } : {}),
        // the tests' curl and browser stand in for a TLS terminator on loopback
        HEARTH_TRUSTED_PROXIES: '127.0.0.1,::1',
        HEARTH_LOG_LEVEL: 'info',
      },
    });
    stops.push(() => env.cleanup());
    const directory = await Directory.open(env.config);
    stops.push(() => directory.close());
    const upstream = await startUpstream();
    stops.push(() => upstream.close());
    await seed(directory, upstream);
    const started = await Promise.allSettled([
      startDaemon('services/oidc/src/main.ts', env.env, (out) => out.includes('"ready"'), 60000),
      startDaemon('services/proxyauth/src/main.ts', env.env, (out) => out.includes('"ready"'), 60000),
    ]);
    for (const s of started) if (s.status === 'fulfilled') stops.push(() => s.value.stop());
    const [oidc, gw] = started.map((s) => {
      if (s.status === 'rejected') throw s.reason;
      return s.value;
    }) as [Daemon, Daemon];
    return { env, directory, upstream, oidc, gw, gwPort, issuer, at: (id, path) => `http://${id}.example.test:${gwPort}${path}`, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** From the provider's login page: submit `login` with PASSWORD; returns where the provider sent the browser next. */
export async function submitLogin(browser: HttpBrowser, page: BrowserResponse, login: string): Promise<{ final: BrowserResponse; hops: BrowserResponse[] }> {
  const form = formOf(page, '/login');
  return browser.go(form.action, { form: { ...form.fields, login, password: PASSWORD } });
}
