import { Directory, type App, type ThrottleLimits, type User } from '@hearth/directory';
import { createLogger } from '@hearth/log';
import { freePort, testEnv, type TestEnv } from '@hearth/testkit';
import * as oidc from 'openid-client';
import { startOidc, type OidcOptions, type RunningOidc } from '../src/server.ts';

/** A provider in-process over a temp directory, with apps and users seeded through the Directory API. */

export const PASSWORD = 'correct horse battery staple';

export interface Stack {
  env: TestEnv;
  directory: Directory;
  server: RunningOidc;
  issuer: string;
  close(): Promise<void>;
}

/** `issuerHost`: the issuer's host name on the chosen port (passkeys need a name: `localhost`). */
export async function startStack(opts: { env?: Record<string, string>; oidc?: OidcOptions; backend?: 'sqlite' | 'postgres'; throttle?: Partial<ThrottleLimits>; issuer?: string; issuerHost?: string } = {}): Promise<Stack> {
  const port = await freePort();
  const issuer = opts.issuer ?? `http://${opts.issuerHost ?? '127.0.0.1'}:${port}`;
  const env = await testEnv({ backend: opts.backend, env: { HEARTH_OIDC_ISSUER: issuer, ...opts.env } });
  const logger = createLogger('oidc-test', env.config.logLevel);
  const directory = await Directory.open(env.config, { watch: true, logger, throttle: opts.throttle });
  const server = await startOidc({ config: env.config, directory, logger }, { port, keyPollMs: 100, ...opts.oidc });
  return {
    env,
    directory,
    server,
    issuer,
    close: async () => {
      await server.close();
      await directory.close();
      await env.cleanup();
    },
  };
}

export interface SeededApp {
  app: App;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
}

/** Installs an app with the oidc addon (as `hearth app install` would store it). */
export async function addOidcApp(directory: Directory, id: string, options: Record<string, unknown>, extra: Partial<App> = {}): Promise<SeededApp> {
  const domain = `${id}.example.test`;
  const clientId = `cid-${id}`;
  const clientSecret = `secret-${id}-0123456789abcdef`;
  const app: App = {
    id,
    domain,
    manifest: { title: id[0]!.toUpperCase() + id.slice(1), addons: { oidc: options } },
    access: null,
    upstream: null,
    credentials: { oidc: { clientId, clientSecret } },
    createdAt: new Date().toISOString(),
    ...extra,
  };
  await directory.putApp(app, []);
  const first = String(options.loginRedirectUri ?? '/callback').split(',')[0]!.trim();
  return { app, clientId, clientSecret, redirectUri: `https://${domain}${first}` };
}

/** The user's immutable id: what sub and every stored session, grant and token carry. */
export function idOf(directory: Directory, login: string): string {
  const user = directory.findUser(login);
  if (!user) throw new Error(`no user ${login}`);
  return user.id;
}

export async function addUser(directory: Directory, username: string, extra: { displayName?: string } = {}): Promise<User> {
  return directory.addUser({ username, email: `${username}@example.test`, password: PASSWORD, displayName: extra.displayName ?? username });
}

/** A cookie jar good enough for one browser profile on one host: name, value, path. */
export class CookieJar {
  private readonly cookies = new Map<string, { value: string; path: string }>();

  store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const path = attrs.map((a) => a.trim()).find((a) => a.toLowerCase().startsWith('path='))?.slice(5) ?? '/';
      const expired = attrs.some((a) => /^expires=.*1970/i.test(a.trim())) || value === '';
      const key = `${name} ${path}`;
      if (expired) this.cookies.delete(key);
      else this.cookies.set(key, { value, path });
    }
  }

  header(url: URL): string {
    return [...this.cookies.entries()]
      .filter(([, c]) => url.pathname.startsWith(c.path))
      .map(([k, c]) => `${k.split(' ')[0]}=${c.value}`)
      .join('; ');
  }
}

/** A minimal browser: follows redirects on the issuer's origin, stops at any other origin. */
export class Browser {
  readonly jar = new CookieJar();
  constructor(readonly origin: string) {}

  async request(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const u = new URL(url, this.origin);
    const headers = new Headers(init.headers);
    const cookie = this.jar.header(u);
    if (cookie) headers.set('cookie', cookie);
    const res = await fetch(u, { ...init, headers, redirect: 'manual' });
    this.jar.store(res);
    return res;
  }

  /** GET/POST, then follow same-origin redirects; returns the final response (and the off-origin Location, if any). */
  async go(url: string | URL, init: RequestInit = {}): Promise<{ res: Response; url: URL; leftTo: URL | null }> {
    let res = await this.request(url, init);
    let current = new URL(url, this.origin);
    for (let hops = 0; hops < 10; hops++) {
      const loc = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !loc) return { res, url: current, leftTo: null };
      const next = new URL(loc, current);
      if (next.origin !== this.origin) return { res, url: current, leftTo: next };
      await res.body?.cancel();
      current = next;
      res = await this.request(next);
    }
    throw new Error('too many redirects');
  }

  async postForm(url: string | URL, fields: Record<string, string>): Promise<{ res: Response; url: URL; leftTo: URL | null }> {
    return this.go(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
  }
}

/** The form fields of the first form on a page (action + hidden inputs). */
export function formOf(html: string, actionEndsWith?: string): { action: string; fields: Record<string, string> } {
  const forms = [...html.matchAll(/<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/g)];
  const form = forms.find((f) => (actionEndsWith ? f[1]!.endsWith(actionEndsWith) : true));
  if (!form) throw new Error(`no form${actionEndsWith ? ` ending ${actionEndsWith}` : ''} in:\n${html}`);
  const fields: Record<string, string> = {};
  for (const input of form[2]!.matchAll(/<input[^>]*type="hidden"[^>]*>/g)) {
    const name = /name="([^"]+)"/.exec(input[0])?.[1];
    const value = /value="([^"]*)"/.exec(input[0])?.[1] ?? '';
    if (name) fields[name] = value.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)));
  }
  return { action: form[1]!.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))), fields };
}

export async function rpConfig(issuer: string, clientId: string, clientSecret: string): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(issuer), clientId, clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
}

export interface LoginResult {
  tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
  browser: Browser;
  callback: URL;
}

/** Starts an authorization request as an RP would; returns what the browser needs. */
export async function authorizationRequest(config: oidc.Configuration, redirectUri: string, scope = 'openid profile email groups offline_access') {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    state,
    nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  return { url, verifier, state, nonce };
}

/** Signs in through the real login form (and the TOTP step when `totp` is given); returns the redirect to the app. */
export async function signIn(browser: Browser, authUrl: URL, login: string, password: string, totp?: () => string): Promise<URL> {
  const page = await browser.go(authUrl);
  if (page.leftTo) return page.leftTo;
  const html = await page.res.text();
  const form = formOf(html, '/login');
  let r = await browser.postForm(form.action, { ...form.fields, login, password });
  if (r.leftTo) return r.leftTo;
  if (totp) {
    const totpHtml = await r.res.text();
    const tf = formOf(totpHtml, '/totp');
    r = await browser.postForm(tf.action, { ...tf.fields, code: totp() });
    if (r.leftTo) return r.leftTo;
  }
  throw new Error(`sign-in did not return to the app (status ${r.res.status}):\n${await r.res.text()}`);
}

/** The whole code + PKCE flow for one user; the redirect to the app is intercepted, never followed. */
export async function fullLogin(issuer: string, config: oidc.Configuration, redirectUri: string, login: string, opts: { browser?: Browser; scope?: string; totp?: () => string } = {}): Promise<LoginResult> {
  const browser = opts.browser ?? new Browser(issuer);
  const req = await authorizationRequest(config, redirectUri, opts.scope);
  const callback = await signIn(browser, req.url, login, PASSWORD, opts.totp);
  const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce });
  return { tokens, browser, callback };
}
