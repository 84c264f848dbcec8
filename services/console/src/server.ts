import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { TrustedProxies, type HearthConfig } from '@hearth/config';
import { secretEquals, type Directory } from '@hearth/directory';
import type { Logger } from '@hearth/log';
import { instrumentHttp } from '@hearth/metrics';
import { sessionOfAccessToken } from '@hearth/oidc/sessions';
import { openOidcStorage } from '@hearth/oidc/storage';
import { clearCookie, loadKeyFile, OidcRelyingParty, PASSKEYS_SCRIPT, readCookie, seal, serializeCookie, unseal } from '@hearth/web';
import { adminRoutes } from './admin.ts';
import { BadRequest, Form, readForm, redirect, sendHtml } from './http.ts';
import { contentSecurityPolicy, isAdmin, page, html } from './pages/layout.ts';
import type { RequestContext, Result, Route, Services } from './routes.ts';
import { passkeyRoutes, PASSKEYS_SCRIPT_PATH } from './passkeys.ts';
import { selfRoutes } from './self.ts';
import { sessionRoutes } from './sessions-page.ts';
import { sshKeyRoutes } from './ssh-keys.ts';
import { importRoutes } from './import-page.ts';
import { BackupJobs, backupRoutes } from './backups-page.ts';
import { ConsoleSessions, type Session } from './session.ts';
import type { ConsoleSettings } from './settings.ts';
import { consoleCredentials, registerConsoleClient, userOfSubject } from './signin.ts';

export interface ConsoleOptions {
  config: HearthConfig;
  directory: Directory;
  logger: Logger;
  settings: ConsoleSettings;
  /** overrides config.ports.console (tests: 0) */
  port?: number;
}

export interface RunningConsole {
  endpoints: string[];
  port: number;
  close(): Promise<void>;
}

const LOGIN_STATE_SECONDS = 600;


interface LoginState {
  state: string;
  verifier: string;
  nonce: string;
  back: string;
  expires: number;
}

/** Console areas, the request metrics' route label ("admin/users", "profile", …); anything else is "other". */
const AREAS = new Set(['profile', 'password', '2fa', 'sessions', 'passkeys', 'login', 'callback', 'signed-out', 'logout', 'healthz', 'static', 'admin', 'admin/users', 'admin/groups', 'admin/apps', 'admin/mailboxes', 'admin/queue', 'admin/audit', 'admin/status', 'admin/backups']);

function consoleRoute(req: http.IncomingMessage): string {
  const [first = '', second = ''] = (req.url ?? '').split('?', 1)[0]!.split('/').slice(1);
  const area = first === 'admin' && second ? `admin/${second}` : first;
  return area === '' ? 'home' : AREAS.has(area) ? area : 'other';
}

/** Only local paths are followed after sign-in. */
function localPath(p: string | null): string {
  return p && /^\/(?![/\\])[\x21-\x7e]*$/.test(p) ? p : '/';
}

export async function startConsole(opts: ConsoleOptions): Promise<RunningConsole> {
  const { config, directory, logger, settings } = opts;
  const key = loadKeyFile(path.join(config.dataDir, 'console', 'cookie.key'));
  const sessions = new ConsoleSessions(directory, key, settings);
  const oidc = new OidcRelyingParty(config.oidcIssuer, settings.oidcInternalUrl, 'hearth-console');
  const publicOrigin = new URL(settings.publicUrl).origin;
  const secure = publicOrigin.startsWith('https:');
  // Behind TLS the names carry __Host-: host-only, Secure, Path=/, so no sibling subdomain can plant one.
  const cookieName = secure ? '__Host-hearth_console' : 'hearth_console';
  const loginCookie = `${cookieName}_login`;
  const csp = contentSecurityPolicy(config.oidcIssuer);
  const oidcStorage = await openOidcStorage(config, directory.store);
  const services: Services = { config, directory, logger, settings, sessions, oidcStorage, backupJobs: new BackupJobs(logger) };
  const routes: Route[] = [...selfRoutes, ...sessionRoutes, ...passkeyRoutes, ...sshKeyRoutes, ...importRoutes, ...backupRoutes, ...adminRoutes];
  const passkeysScript = fs.readFileSync(PASSKEYS_SCRIPT);

  await registerConsoleClient(config, directory, settings.publicUrl, logger);
  if (settings.passkeysOff) logger.info({ reason: settings.passkeysOff }, 'passkeys are off in the console');

  // A disabled or deleted user is signed out of the console at once (every request checks too).
  let active = new Set(directory.users().filter((u) => u.active).map((u) => u.id));
  const stopWatching = directory.onChange((d) => {
    const now = new Set(d.users().filter((u) => u.active).map((u) => u.id));
    for (const id of active) if (!now.has(id)) void sessions.destroyUser(id).catch((err) => logger.warn({ err }, 'could not end the sessions of a disabled user'));
    active = now;
    if (!d.app('hearth-console')) void registerConsoleClient(config, d, settings.publicUrl, logger).catch((err) => logger.warn({ err }, 'could not register the console client again'));
  });

  const clientConfig = () => {
    const creds = consoleCredentials(directory);
    if (!creds) return Promise.reject(new Error('the console has no OIDC client (app hearth-console is missing)'));
    return oidc.configFor('console', creds);
  };
  // The client for throttling, audit and the sessions page: the socket peer, or what a proxy in
  // HEARTH_TRUSTED_PROXIES says in X-Forwarded-For (the same rule as oidc and proxyauth).
  const trusted = new TrustedProxies(config.trustedProxies);
  const remoteOf = (req: http.IncomingMessage): string | null => trusted.client(trusted.chain(req.socket.remoteAddress, req.headers['x-forwarded-for'])) || null;

  function errorPage(res: http.ServerResponse, status: number, title: string, message: string, link?: { href: string; text: string }): void {
    sendHtml(res, status, page({ title, user: null, csrf: '' }, html`<p>${message}</p>${link ? html`<p><a href="${link.href}">${link.text}</a></p>` : ''}`));
  }

  async function startSignIn(res: http.ServerResponse, back: string): Promise<void> {
    let start;
    try {
      start = await oidc.start(await clientConfig(), `${settings.publicUrl}/callback`);
    } catch (err) {
      logger.warn({ err }, 'cannot start sign-in at the OIDC provider');
      return errorPage(res, 503, 'Sign-in unavailable', 'The sign-in service cannot be reached right now. Try again in a moment.', { href: '/login', text: 'Try again' });
    }
    const state: LoginState = { state: start.state, verifier: start.verifier, nonce: start.nonce, back, expires: Date.now() + LOGIN_STATE_SECONDS * 1000 };
    redirect(res, start.url.href, [serializeCookie(loginCookie, seal(key, state), { secure, maxAgeSeconds: LOGIN_STATE_SECONDS })]);
  }

  async function callback(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const clear = clearCookie(loginCookie, { secure });
    const raw = readCookie(req.headers.cookie, loginCookie);
    const state = raw ? (unseal(key, raw) as LoginState | null) : null;
    const retry = { href: '/login', text: 'Sign in again' };
    if (!state || typeof state.expires !== 'number' || state.expires < Date.now()) {
      return errorPage(res, 400, 'Sign-in expired', 'This sign-in took too long or was started in another browser.', retry);
    }
    if (url.searchParams.has('error')) return errorPage(res, 403, 'Sign-in cancelled', 'The sign-in was cancelled or refused.', retry);
    let result;
    try {
      result = await oidc.finish(await clientConfig(), new URL(`${settings.publicUrl}/callback${url.search}`), state);
    } catch (err) {
      logger.warn({ err }, 'console sign-in callback failed');
      return errorPage(res, 400, 'Sign-in failed', 'The sign-in could not be completed.', retry);
    }
    const user = userOfSubject(directory, result.sub);
    const remote = remoteOf(req);
    if (!user || !user.active) {
      await directory.audit({ username: user?.username ?? result.sub, protocol: 'console', remote, ok: false, detail: 'disabled' });
      return errorPage(res, 403, 'Account disabled', 'This account cannot use the console. Ask your administrator.');
    }
    const oidcSession = await sessionOfAccessToken(oidcStorage, result.accessToken).catch(() => null);
    const cookie = await sessions.create(user.id, { idToken: result.idToken, oidcSession }, String(req.headers['user-agent'] ?? ''), remote);
    await directory.audit({ username: user.username, protocol: 'console', remote, ok: true, detail: 'oidc sign-in' });
    logger.info({ username: user.username }, 'signed in to the console');
    redirect(res, localPath(state.back), [clear, serializeCookie(cookieName, cookie, { secure, maxAgeSeconds: settings.sessionMaxSeconds })]);
  }

  async function logout(res: http.ServerResponse, session: Session, userName: string, remote: string | null): Promise<void> {
    await sessions.destroy(session.handle);
    await directory.audit({ username: userName, protocol: 'console', remote, ok: true, detail: 'logout' });
    // The provider's session ends too, or the next visit would sign straight back in.
    const end = await oidc.endSessionUrl(clientConfig, `${settings.publicUrl}/signed-out`, session.record.idToken);
    redirect(res, end?.href ?? '/signed-out', [clearCookie(cookieName, { secure })]);
  }

  function send(res: http.ServerResponse, r: Result): void {
    if ('redirect' in r) return redirect(res, r.redirect);
    if ('json' in r) {
      const body = JSON.stringify(r.json);
      res.writeHead(r.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
      return void res.end(body);
    }
    sendHtml(res, r.status, r.html);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    res.setHeader('Content-Security-Policy', csp);
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'same-origin');
    if (secure) res.setHeader('Strict-Transport-Security', 'max-age=31536000');
    const url = new URL(req.url ?? '/', publicOrigin);
    const method = req.method === 'HEAD' ? 'GET' : req.method;

    if (url.pathname === PASSKEYS_SCRIPT_PATH && method === 'GET') {
      res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Content-Length': passkeysScript.length, 'Cache-Control': 'public, max-age=300' });
      return void res.end(passkeysScript);
    }
    if (url.pathname === '/login' && method === 'GET') return startSignIn(res, localPath(url.searchParams.get('back')));
    if (url.pathname === '/callback' && method === 'GET') return callback(req, res, url);
    if (url.pathname === '/signed-out' && method === 'GET') return errorPage(res, 200, 'Signed out', 'You have signed out of the Hearth console.', { href: '/login', text: 'Sign in again' });
    if (url.pathname === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      return void res.end('ok\n');
    }

    const cookie = readCookie(req.headers.cookie, cookieName);
    const session = cookie ? await sessions.resolve(cookie) : null;
    const user = session ? directory.userById(session.record.userId) : undefined;
    if (!session || !user || !user.active) {
      if (session) await sessions.destroy(session.handle);
      if (method === 'GET') return redirect(res, `/login?back=${encodeURIComponent(url.pathname + url.search)}`, session ? [clearCookie(cookieName, { secure })] : []);
      return errorPage(res, 401, 'Signed out', 'Your session has ended. Sign in again, then repeat what you were doing.', { href: '/login', text: 'Sign in' });
    }

    const remote = remoteOf(req);
    let form = new Form(new URLSearchParams());
    if (method === 'POST') {
      // A form from another site carries a foreign Origin; a forged one lacks the session's token.
      const origin = req.headers.origin;
      try {
        form = await readForm(req);
      } catch (err) {
        if (err instanceof BadRequest) return errorPage(res, 400, 'Bad request', err.message, { href: url.pathname, text: 'Back' });
        throw err;
      }
      const token = form.get('csrf') || String(req.headers['x-csrf-token'] ?? '');
      if ((origin && origin !== publicOrigin) || !secretEquals(token, session.record.csrf)) {
        logger.warn({ username: user.username, path: url.pathname, origin }, 'refused a form without a valid CSRF token');
        return errorPage(res, 403, 'Form expired', 'This form was not sent from this console page, or your session changed. Go back, reload the page and try again.', { href: url.pathname, text: 'Back' });
      }
      if (url.pathname === '/logout') return logout(res, session, user.username, remote);
    }

    for (const route of routes) {
      if (route.method !== method) continue;
      const m = route.path.exec(url.pathname);
      if (!m) continue;
      if (route.admin && !isAdmin(user)) {
        logger.warn({ username: user.username, path: url.pathname }, 'refused an admin page to a non-admin');
        return sendHtml(res, 403, page({ title: 'Not allowed', user, csrf: session.record.csrf }, html`<p>This page is for administrators.</p><p><a href="/">Back to your dashboard</a></p>`));
      }
      const c: RequestContext = { ...services, req, url, params: m.slice(1).map((p) => decodeURIComponent(p)), user, session, form, remote };
      return send(res, await route.handler(c));
    }
    sendHtml(res, 404, page({ title: 'Not found', user, csrf: session.record.csrf }, html`<p>There is no such page.</p><p><a href="/">Back to your dashboard</a></p>`));
  }

  const server = http.createServer({ maxHeaderSize: 32 * 1024 }, (req, res) => {
    handle(req, res).catch((err) => {
      logger.error({ err, path: req.url }, 'console request failed');
      if (!res.headersSent) errorPage(res, 500, 'Something went wrong', 'The console could not complete this request. Nothing was changed unless the page says so.');
      else res.destroy();
    });
  });
  instrumentHttp(server, consoleRoute);
  server.headersTimeout = 15_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? config.ports.console, config.listen, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    endpoints: [`${settings.publicUrl} (listening on http://${config.listen}:${port})`],
    port,
    close: async () => {
      stopWatching();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await oidcStorage.close();
    },
  };
}
