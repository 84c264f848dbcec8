import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { TrustedProxies, type HearthConfig } from '@hearth/config';
import type { App, Directory, User } from '@hearth/directory';
import type { Logger } from '@hearth/log';
import { instrumentHttp } from '@hearth/metrics';
import { clearCookie, OidcRelyingParty, readCookie, seal, serializeCookie, unseal } from '@hearth/web';
import { BasicAuthenticator, isBasic, isBearer, parseBasic } from './basic.ts';
import { countDecision } from './metrics.ts';
import { PAGES, renderPage, type Page } from './pages.ts';
import { Forwarder, identityHeaders, parseUpstream, type Forwarded, type ProxyFailure, type Upstream } from './proxy.ts';
import { GATEWAY_PATHS, normalizePath, parseOptions, requiresAuth, safeRedirect, type NormalizedTarget, type ProxyAuthOptions } from './rules.ts';
import type { ProxyAuthSettings } from './settings.ts';
import { SessionStore, appKey, cookieNames, isGatewayCookie, loadMasterKey, loginCookieName, type CookieNames, type ResolvedSession } from './session.ts';

export interface ProxyAuthOptionsIn {
  config: HearthConfig;
  directory: Directory;
  logger: Logger;
  settings: ProxyAuthSettings;
  /** defaults to config.ports.proxyauth; 0 picks a free port */
  port?: number;
}

export interface RunningProxyAuth {
  port: number;
  endpoints: string[];
  close(): Promise<void>;
}

/** Per-request facts about the app the Host header named. */
interface AppContext {
  app: App;
  options: ProxyAuthOptions;
  key: Buffer;
  forwarded: Forwarded;
  /** where the browser reaches this app through the gateway, e.g. https://wiki.example.test */
  origin: string;
  secure: boolean;
  cookies: CookieNames;
}

type Decision =
  | { kind: 'pass'; /** identity headers for the app */ identity: readonly string[] | null; dropAuthorization: boolean }
  | { kind: 'unauthenticated' }
  | { kind: 'basic_failed'; throttled: boolean }
  | { kind: 'forbidden' };

interface LoginState {
  state: string;
  verifier: string;
  nonce: string;
  redirect: string;
  redirectUri: string;
  expires: number;
}

const LOGIN_STATE_SECONDS = 600;

/** "Host: Wiki.Example.Test:4180" → "wiki.example.test"; null when absent or malformed. */
export function hostOf(value: string | undefined): string | null {
  if (!value) return null;
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::\d{1,5})?$/i.exec(value.trim());
  return m ? m[1]!.toLowerCase().replace(/\.$/, '') : null;
}

function firstValue(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  return s?.split(',')[0]?.trim() || undefined;
}

/** [name, value, name, value, …] as a headers object. */
function pairs(flat: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

function quote(s: string): string {
  return `"${s.replace(/[^\x20-\x7e]/g, '').replace(/["\\]/g, '\\$&')}"`;
}

export async function startProxyAuth(opts: ProxyAuthOptionsIn): Promise<RunningProxyAuth> {
  const { config, directory, logger, settings } = opts;
  const master = loadMasterKey(config.dataDir);
  const sessions = new SessionStore(directory, settings);
  const basic = new BasicAuthenticator(directory);
  const oidc = new OidcRelyingParty(config.oidcIssuer, settings.oidcInternalUrl, 'hearth-proxyauth');
  const proxy = new Forwarder(settings.upstreamTimeoutMs);
  const trusted = new TrustedProxies(config.trustedProxies);
  // App records are replaced on every directory reload, so these caches follow changes by themselves.
  const appOptions = new WeakMap<App, ProxyAuthOptions>();
  const appKeys = new WeakMap<App, Buffer>();
  const appUpstreams = new WeakMap<App, Upstream | null>();
  // User records too (a group change brings new ones), so the identity headers are built once per user and reload.
  const userIdentities = new WeakMap<User, readonly string[]>();

  function optionsOf(app: App): ProxyAuthOptions {
    let o = appOptions.get(app);
    if (!o) {
      const r = parseOptions(app.manifest.addons.proxyAuth);
      if (r.error) logger.warn({ appId: app.id, error: r.error }, 'malformed proxyAuth options; the whole app stays behind the wall');
      o = r.options;
      appOptions.set(app, o);
    }
    return o;
  }

  function keyOf(app: App): Buffer {
    let k = appKeys.get(app);
    if (!k) {
      k = appKey(master, app);
      appKeys.set(app, k);
    }
    return k;
  }

  /** The app's own OIDC client (its provisioned proxyAuth credentials). */
  function clientOf(app: App): ReturnType<OidcRelyingParty['configFor']> {
    const creds = app.credentials.proxyAuth;
    if (!creds?.clientId || !creds.clientSecret) return Promise.reject(new Error(`app ${app.id} has no proxyAuth client credentials`));
    return oidc.configFor(app.id, { clientId: creds.clientId, clientSecret: creds.clientSecret });
  }

  function guardedApp(host: string | null): App | undefined {
    const app = host ? directory.appByDomain(host) : undefined;
    return app && app.manifest.addons.proxyAuth ? app : undefined;
  }

  /** X-Forwarded-* from a trusted proxy in front of us are believed; anyone else's are replaced. */
  function forwardedOf(req: http.IncomingMessage): Forwarded {
    const host = req.headers.host ?? '';
    const chain = trusted.chain(req.socket.remoteAddress, req.headers['x-forwarded-for']);
    const tls = (req.socket as { encrypted?: boolean }).encrypted === true;
    if (!trusted.has(req.socket.remoteAddress ?? '')) return { for: chain, proto: tls ? 'https' : 'http', host, fromTrustedProxy: false };
    const proto = firstValue(req.headers['x-forwarded-proto'])?.toLowerCase();
    return {
      fromTrustedProxy: true,
      for: chain,
      proto: proto === 'https' || tls ? 'https' : 'http',
      host: firstValue(req.headers['x-forwarded-host']) ?? host,
    };
  }

  /** The client address for throttling and audit: the nearest untrusted hop. */
  function clientAddress(fwd: Forwarded): string {
    return trusted.client(fwd.for);
  }

  function contextFor(req: http.IncomingMessage, app: App): AppContext {
    const forwarded = forwardedOf(req);
    // The two redirect URI forms services/oidc registers for every proxyAuth app.
    const secure = forwarded.proto === 'https';
    const origin = secure ? `https://${app.domain}` : `http://${app.domain}:${config.ports.proxyauth}`;
    return { app, options: optionsOf(app), key: keyOf(app), forwarded, origin, secure, cookies: cookieNames(secure) };
  }

  function identityOf(user: User): readonly string[] {
    let headers = userIdentities.get(user);
    if (!headers) {
      headers = identityHeaders({ username: user.username, email: user.email, name: user.displayName, groups: directory.groupsOf(user.id).map((g) => g.name) });
      userIdentities.set(user, headers);
    }
    return headers;
  }

  /** The signed-in session behind the request's cookie, checked against the directory right now. */
  async function sessionOf(ctx: AppContext, req: http.IncomingMessage): Promise<{ session: ResolvedSession; user: User } | null> {
    // A __Host- cookie only exists if a browser got it over TLS; accepting it on plain HTTP too lets
    // /verify work when the proxy in front forgets X-Forwarded-Proto. The reverse is never accepted.
    const cookie = readCookie(req.headers.cookie, ctx.cookies.session) ?? (ctx.secure ? undefined : readCookie(req.headers.cookie, cookieNames(true).session));
    if (!cookie) return null;
    const session = await sessions.resolve(ctx.key, ctx.app, cookie);
    if (!session) return null;
    const user = directory.userById(session.record.userId);
    if (!user || !user.active) {
      await sessions.destroy(session.sid);
      return null;
    }
    return { session, user };
  }

  async function decide(ctx: AppContext, req: http.IncomingMessage, target: NormalizedTarget): Promise<Decision> {
    const d = await decideAccess(ctx, req, target);
    countDecision(ctx.app.id, d.kind === 'pass' ? 'allow' : d.kind === 'basic_failed' ? (d.throttled ? 'throttled' : 'invalid_credentials') : d.kind);
    return d;
  }

  async function decideAccess(ctx: AppContext, req: http.IncomingMessage, target: NormalizedTarget): Promise<Decision> {
    const authorization = req.headers.authorization;
    if (ctx.options.supportsBearerAuth && isBearer(authorization)) return { kind: 'pass', identity: null, dropAuthorization: false };
    const walled = requiresAuth(ctx.options.rule, target);
    const signedIn = await sessionOf(ctx, req);
    if (signedIn) {
      if (directory.canUseApp(ctx.app, signedIn.user)) return { kind: 'pass', identity: identityOf(signedIn.user), dropAuthorization: false };
      return walled ? { kind: 'forbidden' } : { kind: 'pass', identity: null, dropAuthorization: false };
    }
    if (!walled) return { kind: 'pass', identity: null, dropAuthorization: false };
    if (ctx.options.basicAuth && isBasic(authorization)) {
      const creds = parseBasic(authorization);
      if (!creds) return { kind: 'basic_failed', throttled: false };
      const r = await basic.authenticate(ctx.app, creds, clientAddress(ctx.forwarded));
      if (r.ok) {
        if (!directory.canUseApp(ctx.app, r.user)) return { kind: 'forbidden' };
        return { kind: 'pass', identity: identityOf(r.user), dropAuthorization: true };
      }
      if (r.reason === 'not_allowed') return { kind: 'forbidden' };
      return { kind: 'basic_failed', throttled: r.reason === 'throttled' };
    }
    return { kind: 'unauthenticated' };
  }

  function challenges(ctx: AppContext): string[] {
    const realm = quote(ctx.app.manifest.title ?? ctx.app.domain);
    // The Cookie scheme (draft-broyer-http-cookie-auth) says where a browser-style sign-in starts.
    const list = [`Cookie realm=${realm}, form-action="/login", cookie-name=${ctx.cookies.session}`];
    if (ctx.options.basicAuth) list.unshift(`Basic realm=${realm}, charset="UTF-8"`);
    if (ctx.options.supportsBearerAuth) list.push(`Bearer realm=${realm}`);
    return list;
  }

  function wantsJson(req: http.IncomingMessage): boolean {
    if (String(req.headers['x-requested-with'] ?? '').toLowerCase() === 'xmlhttprequest') return true;
    const accept = String(req.headers.accept ?? '');
    return /application\/(?:[\w.+-]*\+)?json/i.test(accept) && !/text\/html/i.test(accept);
  }

  function sendPage(res: http.ServerResponse, page: Page, headers: http.OutgoingHttpHeaders = {}): void {
    if (res.headersSent) return void res.destroy();
    const body = renderPage(page);
    res.writeHead(page.status, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', ...headers });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  }

  function redirect(res: http.ServerResponse, location: string, cookies: string[] = []): void {
    res.writeHead(302, { Location: location, 'Cache-Control': 'no-store', 'Content-Length': 0, ...(cookies.length ? { 'Set-Cookie': cookies } : {}) });
    res.end();
  }

  function loginUrl(target: NormalizedTarget): string {
    return `/login?redirect=${encodeURIComponent(target.path + target.query)}`;
  }

  function deny(ctx: AppContext, req: http.IncomingMessage, res: http.ServerResponse, target: NormalizedTarget, decision: Exclude<Decision, { kind: 'pass' }>): void {
    if (decision.kind === 'forbidden') return sendPage(res, PAGES.forbidden);
    if (decision.kind === 'basic_failed') {
      if (decision.throttled) return sendPage(res, { status: 429, title: 'Too many attempts', message: 'Too many failed sign-ins. Wait a while and try again.' }, { 'Retry-After': '60' });
      return sendPage(res, { status: 401, title: 'Sign-in failed', message: 'The user name or password is wrong.' }, { 'WWW-Authenticate': challenges(ctx) });
    }
    if (wantsJson(req)) {
      const body = JSON.stringify({ error: 'unauthorized', login: loginUrl(target) });
      res.writeHead(401, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', 'WWW-Authenticate': challenges(ctx) });
      return void res.end(body);
    }
    redirect(res, loginUrl(target));
  }

  async function login(ctx: AppContext, req: http.IncomingMessage, res: http.ServerResponse, target: NormalizedTarget): Promise<void> {
    const back = safeRedirect(new URLSearchParams(target.query).get('redirect'), ctx.app.domain);
    const signedIn = await sessionOf(ctx, req);
    if (signedIn && directory.canUseApp(ctx.app, signedIn.user)) return redirect(res, back);
    let start;
    const redirectUri = `${ctx.origin}/login/callback`;
    try {
      start = await oidc.start(await clientOf(ctx.app), redirectUri);
    } catch (err) {
      logger.warn({ err, appId: ctx.app.id }, 'cannot start sign-in at the OIDC provider');
      return sendPage(res, PAGES.providerDown);
    }
    const state: LoginState = { state: start.state, verifier: start.verifier, nonce: start.nonce, redirect: back, redirectUri, expires: Date.now() + LOGIN_STATE_SECONDS * 1000 };
    redirect(res, start.url.href, [serializeCookie(loginCookieName(ctx.cookies, start.state), seal(ctx.key, state), { secure: ctx.secure, maxAgeSeconds: LOGIN_STATE_SECONDS })]);
  }

  async function callback(ctx: AppContext, req: http.IncomingMessage, res: http.ServerResponse, target: NormalizedTarget): Promise<void> {
    const params = new URLSearchParams(target.query);
    const name = loginCookieName(ctx.cookies, params.get('state') ?? '');
    const clear = clearCookie(name, { secure: ctx.secure });
    const raw = readCookie(req.headers.cookie, name);
    const state = raw ? (unseal(ctx.key, raw) as LoginState | null) : null;
    const retry = { href: `/login?redirect=${encodeURIComponent(state?.redirect ?? '/')}`, text: 'Sign in again' };
    if (!state || typeof state.expires !== 'number' || state.expires < Date.now()) {
      return sendPage(res, { status: 400, title: 'Sign-in expired', message: 'This sign-in took too long or was started elsewhere.', link: retry }, { 'Set-Cookie': clear });
    }
    if (params.has('error')) {
      return sendPage(res, { status: 403, title: 'Sign-in refused', message: 'The sign-in was cancelled or refused.', link: retry }, { 'Set-Cookie': clear });
    }
    let result;
    try {
      result = await oidc.finish(await clientOf(ctx.app), new URL(`${state.redirectUri}${target.query}`), state);
    } catch (err) {
      logger.warn({ err, appId: ctx.app.id }, 'sign-in callback failed');
      return sendPage(res, { status: 400, title: 'Sign-in failed', message: 'The sign-in could not be completed.', link: retry }, { 'Set-Cookie': clear });
    }
    // services/oidc's sub is the user's immutable id: a user re-created under the same name is someone else.
    const user = directory.userById(result.sub);
    if (!user || !directory.canUseApp(ctx.app, user)) {
      await directory.audit({ username: user?.username ?? result.sub, protocol: 'proxyauth', appId: ctx.app.id, remote: clientAddress(ctx.forwarded), ok: false, detail: 'not_allowed' });
      return sendPage(res, PAGES.forbidden, { 'Set-Cookie': clear });
    }
    const cookie = await sessions.create(ctx.key, ctx.app, user.id, result.idToken, { remote: clientAddress(ctx.forwarded), userAgent: String(req.headers['user-agent'] ?? '') });
    await directory.audit({ username: user.username, protocol: 'proxyauth', appId: ctx.app.id, remote: clientAddress(ctx.forwarded), ok: true, detail: 'oidc sign-in' });
    redirect(res, state.redirect, [clear, serializeCookie(ctx.cookies.session, cookie, { secure: ctx.secure, maxAgeSeconds: settings.sessionMaxSeconds })]);
  }

  async function logout(ctx: AppContext, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const cookie = readCookie(req.headers.cookie, ctx.cookies.session);
    const session = cookie ? await sessions.resolve(ctx.key, ctx.app, cookie) : null;
    // The provider session ends too, so every app it signed in is signed out here as well.
    if (session) {
      await sessions.destroyUser(session.record.userId);
      const user = directory.userById(session.record.userId);
      await directory.audit({ username: user?.username ?? session.record.userId, protocol: 'proxyauth', appId: ctx.app.id, remote: clientAddress(ctx.forwarded), ok: true, detail: 'logout' });
    }
    const endSession = await oidc.endSessionUrl(() => clientOf(ctx.app), `${ctx.origin}/`, session?.record.idToken ?? null);
    redirect(res, endSession?.href ?? '/', [clearCookie(ctx.cookies.session, { secure: ctx.secure })]);
  }

  /** /verify for nginx auth_request / Traefik ForwardAuth: the app comes from X-Forwarded-Host. */
  async function verify(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const host = hostOf(firstValue(req.headers['x-forwarded-host']));
    const app = guardedApp(host);
    if (!app || !host) return sendPage(res, PAGES.unknownHost);
    const target = normalizePath(firstValue(req.headers['x-forwarded-uri']) ?? '/');
    if (!target) return sendPage(res, PAGES.badRequest);
    const ctx = contextFor(req, app);
    const decision = await decide(ctx, req, target);
    if (decision.kind === 'pass') {
      res.writeHead(200, { 'Content-Length': 0, 'Cache-Control': 'no-store', ...pairs(decision.identity ?? []) });
      return void res.end();
    }
    if (decision.kind === 'forbidden') return sendPage(res, PAGES.forbidden);
    if (decision.kind === 'basic_failed' && decision.throttled) return sendPage(res, { status: 429, title: 'Too many attempts', message: 'Too many failed sign-ins.' }, { 'Retry-After': '60' });
    res.writeHead(401, { 'Content-Length': 0, 'Cache-Control': 'no-store', 'WWW-Authenticate': challenges(ctx) });
    res.end();
  }

  function failurePage(why: ProxyFailure): Page {
    return why === 'timeout' ? PAGES.gatewayTimeout : PAGES.badGateway;
  }

  function upstreamOf(app: App): Upstream | null {
    let u = appUpstreams.get(app);
    if (u === undefined) {
      u = app.upstream ? parseUpstream(app.upstream) : null;
      appUpstreams.set(app, u);
    }
    return u;
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const host = hostOf(req.headers.host);
    const app = guardedApp(host);
    if (!app || !host) {
      // Any method: nginx's auth_request subrequest keeps the original one.
      if (req.url?.split('?')[0] === '/verify') return verify(req, res);
      return sendPage(res, PAGES.unknownHost);
    }
    const target = normalizePath(req.url ?? '');
    if (!target) return sendPage(res, PAGES.badRequest);
    const ctx = contextFor(req, app);
    if (GATEWAY_PATHS.has(target.path)) {
      if (target.path === '/login') return login(ctx, req, res, target);
      if (target.path === '/login/callback') return callback(ctx, req, res, target);
      return logout(ctx, req, res);
    }
    const decision = await decide(ctx, req, target);
    if (decision.kind !== 'pass') return deny(ctx, req, res, target, decision);
    const upstream = upstreamOf(app);
    if (!upstream) {
      logger.warn({ appId: app.id }, 'proxyAuth app has no usable upstream URL');
      return sendPage(res, PAGES.badGateway);
    }
    proxy.forward(
      req,
      res,
      { upstream, path: target.path + target.query, identity: decision.identity, forwarded: ctx.forwarded, dropAuthorization: decision.dropAuthorization, isGatewayCookie },
      (why) => sendPage(res, failurePage(why)),
    );
  }

  function rawReply(socket: Duplex, page: Page, headers: Record<string, string | string[]> = {}): void {
    if (!socket.writable) return void socket.destroy();
    const body = renderPage(page);
    const lines = [`HTTP/1.1 ${page.status} ${http.STATUS_CODES[page.status] ?? ''}`, 'Content-Type: text/html; charset=utf-8', `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close'];
    for (const [k, v] of Object.entries(headers)) for (const one of [v].flat()) lines.push(`${k}: ${one}`);
    socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  }

  async function handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const host = hostOf(req.headers.host);
    const app = guardedApp(host);
    if (!app || !host) return rawReply(socket, PAGES.unknownHost);
    const target = normalizePath(req.url ?? '');
    if (!target || GATEWAY_PATHS.has(target.path)) return rawReply(socket, PAGES.badRequest);
    const ctx = contextFor(req, app);
    const decision = await decide(ctx, req, target);
    if (decision.kind === 'forbidden') return rawReply(socket, PAGES.forbidden);
    if (decision.kind !== 'pass') return rawReply(socket, { status: 401, title: 'Sign-in required', message: 'Sign in first.' }, { 'WWW-Authenticate': challenges(ctx) });
    const upstream = upstreamOf(app);
    if (!upstream) return rawReply(socket, PAGES.badGateway);
    proxy.upgrade(
      req,
      socket,
      head,
      { upstream, path: target.path + target.query, identity: decision.identity, forwarded: ctx.forwarded, dropAuthorization: decision.dropAuthorization, isGatewayCookie },
      (why) => rawReply(socket, failurePage(why)),
    );
  }

  const server = http.createServer({ maxHeaderSize: settings.maxHeaderSize, requestTimeout: 0 }, (req, res) => {
    handle(req, res).catch((err) => {
      logger.error({ err, url: req.url }, 'request failed');
      sendPage(res, { status: 500, title: 'Internal error', message: 'Something went wrong in the gateway.' });
    });
  });
  instrumentHttp(server, (req) => {
    const path = (req.url ?? '').split('?', 1)[0]!;
    if (!guardedApp(hostOf(req.headers.host))) return path === '/verify' ? 'verify' : 'unknown_host';
    return path === '/login' ? 'login' : path === '/login/callback' ? 'callback' : GATEWAY_PATHS.has(path) ? 'logout' : 'proxy';
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    handleUpgrade(req, socket, head).catch((err) => {
      logger.error({ err, url: req.url }, 'upgrade failed');
      socket.destroy();
    });
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable) return void socket.destroy();
    const page = err.code === 'HPE_HEADER_OVERFLOW' ? { status: 431, title: 'Headers too large', message: 'The request headers are too large.' } : PAGES.badRequest;
    rawReply(socket, page);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? config.ports.proxyauth, config.listen, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  const shownHost = config.listen.includes(':') ? `[${config.listen}]` : config.listen;
  return {
    port,
    endpoints: [`http://${shownHost}:${port}`],
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await proxy.close();
    },
  };
}
