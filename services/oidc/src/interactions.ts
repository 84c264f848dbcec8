import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import { secretEquals, throttleAccount, type App, type Directory, type User } from '@hearth/directory';
import type { Logger } from '@hearth/log';
import { authenticationOptions, PasskeyError, PASSKEYS_SCRIPT, verifyAssertion, type RelyingParty } from '@hearth/web';
import type { Context, Middleware, Next } from 'koa';
import type { Interaction, InteractionResults, Provider } from 'oidc-provider';
import type { OidcStorage } from './storage.ts';
import type { ClientRegistry } from './clients.ts';
import { firstPartyGrant } from './grants.ts';
import { readForm, sendError } from './http.ts';
import { deniedPage } from './views/denied.ts';
import { PAGE_CSP, PASSKEYS_SCRIPT_PATH } from './views/layout.ts';
import { loginPage, totpPage } from './views/login.ts';

/**
 * The login pages behind /interaction/<uid>: password, then TOTP for users with 2FA,
 * the "you may not use this app" page, and the silent first-party consent.
 */

export interface InteractionDeps {
  provider: () => Provider;
  directory: Directory;
  clients: ClientRegistry;
  storage: OidcStorage;
  /** cookie keys, newest first; CSRF tokens are MACs under them */
  keys: () => string[];
  logger: Logger;
  /** the WebAuthn relying party for passkeys at the login page (origin: the issuer); null: passkeys are off (no RP ID) */
  relyingParty: RelyingParty | null;
}

interface PendingLogin {
  accountId: string;
  attempts: number;
}

/** A password was right; the TOTP step is still owed. Stored with the interaction's uid. */
const PENDING = 'PendingLogin';
const PENDING_TTL = 600;
const MAX_TOTP_ATTEMPTS = 5;
/** verifyTotp accepts the current step and one either side: 90 s in all. */
const TOTP_REPLAY_SECONDS = 90;

/** A passkey challenge handed out for an interaction; spent by the first assertion that names it. */
const CHALLENGE = 'PasskeyChallenge';
const CHALLENGE_TTL = 300;

const ROUTE = /^\/interaction\/([A-Za-z0-9_-]{1,64})(?:\/(login|totp|abort|passkey-options|passkey))?$/;

function csrfFor(key: string, uid: string): string {
  return createHmac('sha256', key).update(`csrf:${uid}`).digest('base64url');
}

function appName(app: App): string {
  return typeof app.manifest.title === 'string' && app.manifest.title ? app.manifest.title : app.domain;
}

export function interactionRoutes(deps: InteractionDeps): Middleware {
  const { directory, clients, storage } = deps;
  const passkeysScript = fs.readFileSync(PASSKEYS_SCRIPT);

  const html = (ctx: Context, status: number, body: string): void => {
    ctx.status = status;
    ctx.type = 'html';
    ctx.body = body;
  };

  const finish = async (ctx: Context, provider: Provider, details: Interaction, user: User, amr: string[] | null): Promise<void> => {
    const clientId = String(details.params.client_id);
    const grant = await firstPartyGrant(provider, user.id, clientId, details.grantId);
    const result: InteractionResults = { consent: { grantId: grant.jti } };
    if (amr) result.login = { accountId: user.id, amr, remember: true };
    const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    ctx.redirect(to);
    ctx.status = 303;
  };

  return async (ctx: Context, next: Next) => {
    if (ctx.path === PASSKEYS_SCRIPT_PATH && ctx.method === 'GET') {
      ctx.type = 'text/javascript; charset=utf-8';
      ctx.set('Cache-Control', 'public, max-age=300');
      ctx.body = passkeysScript;
      return;
    }
    const m = ROUTE.exec(ctx.path);
    if (!m) return next();
    const uid = m[1]!;
    const action = m[2];
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Content-Security-Policy', PAGE_CSP);
    if ((action === undefined) !== (ctx.method === 'GET' || ctx.method === 'HEAD')) {
      ctx.set('Allow', action === undefined ? 'GET' : 'POST');
      return sendError(ctx, 405, 'invalid_request', 'method not allowed');
    }

    const provider = deps.provider();
    let details: Interaction;
    try {
      details = await provider.interactionDetails(ctx.req, ctx.res);
    } catch {
      return sendError(ctx, 400, 'session_not_found', 'This sign-in attempt has expired or was started in another browser. Go back to the app and sign in again.');
    }
    if (details.uid !== uid) return sendError(ctx, 400, 'session_not_found', 'This sign-in attempt does not match your browser session. Go back to the app and sign in again.');
    const reg = clients.get(String(details.params.client_id));
    const app = reg && directory.app(reg.appId);
    if (!app) return sendError(ctx, 400, 'invalid_client', 'This app is no longer installed.');

    const base = `/interaction/${uid}`;
    const csrf = csrfFor(deps.keys()[0]!, uid);
    const name = appName(app);
    const passkey = deps.relyingParty ? { optionsAction: `${base}/passkey-options`, action: `${base}/passkey` } : null;
    const views = {
      login: (status: number, error?: string, login?: string) =>
        html(ctx, status, loginPage({ appName: name, action: `${base}/login`, abortAction: `${base}/abort`, csrf, error, passkey, login: login ?? (typeof details.params.login_hint === 'string' ? details.params.login_hint : '') })),
      totp: async (status: number, username: string, error?: string) => {
        const user = directory.userByUsername(username);
        const hasPasskey = user && passkey ? (await directory.store.passkeysOf(user.id)).length > 0 : false;
        html(ctx, status, totpPage({ appName: name, username, action: `${base}/totp`, abortAction: `${base}/abort`, csrf, error, totp: !!user?.totpSecret, passkey: hasPasskey ? passkey : null }));
      },
      denied: (username: string) => html(ctx, 403, deniedPage({ appName: name, username, switchHref: `${base}?login=1`, abortAction: `${base}/abort`, csrf })),
    };

    if (action === undefined) {
      const switching = ctx.query.login === '1';
      const pending = (await storage.get(PENDING, uid)) as PendingLogin | undefined;
      const pendingUser = pending && directory.userById(pending.accountId);
      if (pendingUser && !switching) return views.totp(200, pendingUser.username);
      if (details.prompt.name === 'login' || switching) return views.login(200);
      // Only consent is missing: the session's user is signed in already.
      const user = details.session?.accountId ? directory.userById(details.session.accountId) : undefined;
      if (!user || !user.active) return views.login(200);
      if (!directory.canUseApp(app, user)) return views.denied(user.username);
      return finish(ctx, provider, details, user, null);
    }

    const form = await readForm(ctx);
    const sent = form?.get('csrf') ?? '';
    if (!form || !deps.keys().some((k) => secretEquals(csrfFor(k, uid), sent))) {
      return sendError(ctx, 403, 'invalid_request', 'The form was not sent from this sign-in page, or it expired. Go back and try again.');
    }
    const remote = ctx.ip || null;

    if (action === 'abort') {
      await storage.delete(PENDING, uid);
      const to = await provider.interactionResult(ctx.req, ctx.res, { error: 'access_denied', error_description: 'End-User aborted interaction' }, { mergeWithLastSubmission: false });
      ctx.redirect(to);
      ctx.status = 303;
      return;
    }

    if (action === 'login') {
      const login = (form.get('login') ?? '').trim();
      const password = form.get('password') ?? '';
      if (!login || !password) return views.login(400, 'Enter your username or email and your password.', login);
      if (login.length > 256 || password.length > 1024) return views.login(400, 'Incorrect username, email or password.', '');
      const r = await directory.authenticate({ login, password, protocol: 'oidc', appId: app.id, remote });
      if (!r.ok) {
        switch (r.reason) {
          case 'throttled':
            return views.login(429, 'Too many failed sign-in attempts. Wait a few minutes, then try again.', login);
          case 'disabled':
            return views.login(403, 'This account is disabled. Ask your administrator.', login);
          case 'not_allowed':
            return views.denied(directory.findUser(login)?.username ?? login);
          default:
            return views.login(401, 'Incorrect username, email or password.', login);
        }
      }
      // A second factor is owed by users with TOTP or a passkey.
      if (r.user.totpSecret || (deps.relyingParty && (await directory.store.passkeysOf(r.user.id)).length > 0)) {
        await storage.set(PENDING, uid, { accountId: r.user.id, attempts: 0 } as never, PENDING_TTL);
        ctx.redirect(base);
        ctx.status = 303;
        return;
      }
      return finish(ctx, provider, details, r.user, ['pwd']);
    }

    if ((action === 'passkey-options' || action === 'passkey') && deps.relyingParty) {
      const relyingParty = deps.relyingParty;
      // After a password, only that user's passkeys count (second factor); before, any registered one (passwordless).
      const pending = (await storage.get(PENDING, uid)) as PendingLogin | undefined;
      const pendingUser = pending ? directory.userById(pending.accountId) : undefined;
      if (action === 'passkey-options') {
        const options = await authenticationOptions(relyingParty, pendingUser ? await directory.store.passkeysOf(pendingUser.id) : null);
        await storage.set(CHALLENGE, uid, { challenge: options.challenge } as never, CHALLENGE_TTL);
        ctx.body = options;
        return;
      }
      const saved = (await storage.get(CHALLENGE, uid)) as { challenge?: string } | undefined;
      await storage.delete(CHALLENGE, uid);
      const retry = (status: number, message: string) => (pendingUser ? views.totp(status, pendingUser.username, message) : views.login(status, message));
      if (!saved?.challenge) return retry(400, 'That passkey request has expired. Try again.');
      // Passwordless attempts name no account until verified: they count against the address (and one shared passkey account).
      const attempt = await directory.throttle.begin(pendingUser ? throttleAccount('user', pendingUser.id, pendingUser.username) : throttleAccount('user', null, `passkey@${remote ?? ''}`), remote);
      if (attempt.blocked) return retry(429, 'Too many failed attempts. Wait a few minutes, then try again.');
      let used;
      try {
        used = await verifyAssertion(relyingParty, directory.store, form.get('response') ?? '', saved.challenge, pendingUser?.id);
      } catch (err) {
        if (!(err instanceof PasskeyError)) throw err;
        await attempt.failed();
        await directory.audit({ username: pendingUser?.username ?? null, protocol: 'oidc', appId: app.id, remote, ok: false, detail: `passkey: ${err.message}` });
        deps.logger.info({ protocol: 'oidc', login: pendingUser?.username ?? null, remote, reason: err.message }, 'login refused');
        return retry(401, 'That passkey could not be used here. Try again, or sign in with your password.');
      }
      const user = directory.userById(used.userId);
      if (!user || !user.active) return views.login(403, 'This account is disabled. Ask your administrator.');
      if (!directory.canUseApp(app, user)) return views.denied(user.username);
      await attempt.succeeded();
      await storage.delete(PENDING, uid);
      await directory.audit({ username: user.username, protocol: 'oidc', appId: app.id, remote, ok: true, detail: pendingUser ? 'passkey (second factor)' : 'passkey' });
      return finish(ctx, provider, details, user, pendingUser ? ['pwd', 'hwk'] : ['hwk', 'user']);
    }

    if (action === 'passkey-options' || action === 'passkey') return sendError(ctx, 404, 'invalid_request', 'Passkeys are not enabled on this server.');

    // action === 'totp'
    const pending = (await storage.get(PENDING, uid)) as PendingLogin | undefined;
    if (!pending) return views.login(400, 'Sign in with your password first.');
    const user = directory.userById(pending.accountId);
    if (!user || !user.active || !directory.canUseApp(app, user)) {
      await storage.delete(PENDING, uid);
      return views.login(403, 'This account can no longer sign in here.');
    }
    const attempt = await directory.throttle.begin(throttleAccount('user', user.id, user.username), remote);
    if (attempt.blocked) {
      return views.totp(429, user.username, 'Too many failed attempts. Wait a few minutes, then try again.');
    }
    const code = (form.get('code') ?? '').trim();
    if (!directory.verifyTotp(user, code)) {
      await attempt.failed();
      await directory.audit({ username: user.username, protocol: 'oidc', appId: app.id, remote, ok: false, detail: 'totp' });
      if (pending.attempts + 1 >= MAX_TOTP_ATTEMPTS) {
        await storage.delete(PENDING, uid);
        return views.login(401, 'Too many wrong codes. Sign in again.');
      }
      await storage.set(PENDING, uid, { ...pending, attempts: pending.attempts + 1 } as never, PENDING_TTL);
      return views.totp(401, user.username, 'That code is not valid. Check the time on your device and try again.');
    }
    // A code works once: someone who saw it over the user's shoulder cannot reuse it within its window.
    if ((await directory.store.kvIncr('oidc:totp-used', `${user.id}:${code}`, 1, TOTP_REPLAY_SECONDS)) !== 1) {
      return views.totp(401, user.username, 'That code was already used. Wait for the next one, then try again.');
    }
    await storage.delete(PENDING, uid);
    await directory.audit({ username: user.username, protocol: 'oidc', appId: app.id, remote, ok: true, detail: 'totp' });
    return finish(ctx, provider, details, user, ['pwd', 'otp']);
  };
}
