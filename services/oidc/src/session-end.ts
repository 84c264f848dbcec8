import { secretEquals, type Directory } from '@hearth/directory';
import type { Logger } from '@hearth/log';
import type { Context, Middleware, Next } from 'koa';
import type { AdapterPayload, Client, Provider } from 'oidc-provider';
import { CONSOLE_SESSION_END_PATH } from './endpoints.ts';
import type { ClientRegistry } from './clients.ts';
import { readForm, sendError } from './http.ts';
import { endSession } from './sessions.ts';
import type { OidcStorage } from './storage.ts';

/**
 * OpenID Back-Channel Logout 1.0 for sessions ended outside a browser's own logout: a disabled
 * user's, and those the web console signs out. Each app the session signed in to that registered a
 * backchannel_logout_uri gets a logout token, signed with the provider's keys by oidc-provider's
 * own `Client#backchannelLogout` (sub, sid, the back-channel-logout event).
 */

type BackchannelClient = Client & { backchannelLogout(sub: string, sid: string | undefined): Promise<void> };

/** Posts a logout token to every app of `session` with a back-channel logout URI; an app that fails is logged, the others still hear. */
export async function notifyApps(provider: Provider, logger: Logger, accountId: string, session: AdapterPayload): Promise<void> {
  for (const [clientId, auth] of Object.entries(session.authorizations ?? {})) {
    const client = (await provider.Client.find(clientId)) as BackchannelClient | undefined;
    if (!client?.backchannelLogoutUri) continue;
    await client.backchannelLogout(accountId, auth.sid).catch((err: Error) => logger.warn({ err: err.message, clientId }, 'back-channel logout failed'));
  }
}

/** The console's app id (services/console registers itself under it). */
const CONSOLE_APP_ID = 'hearth-console';

/** The console, and only the console, by its client credentials (HTTP Basic, as at the token endpoint). */
function isConsole(ctx: Context, clients: ClientRegistry): boolean {
  const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(ctx.get('authorization'));
  if (!m) return false;
  const [id = '', secret = ''] = Buffer.from(m[1]!, 'base64').toString('utf8').split(':').map((p) => decodeURIComponent(p));
  const client = clients.get(id);
  return client?.appId === CONSOLE_APP_ID && secretEquals(secret, String(client.metadata.client_secret ?? ''));
}

/**
 * POST <issuer>/hearth/sessions/end (form: account, session): the console's "sign out" of one of a
 * user's provider sessions, or of every one when `session` is absent. The apps are told first,
 * then the session goes with its grants and tokens (`endSession`). The console may act for any
 * user, as it may read and delete their sessions in the store itself; nobody else may call it.
 */
export function sessionEndRoute(deps: { provider: () => Provider; storage: OidcStorage; clients: ClientRegistry; directory: Directory; logger: Logger }): Middleware {
  return async (ctx: Context, next: Next) => {
    if (ctx.path !== CONSOLE_SESSION_END_PATH) return next();
    if (ctx.method !== 'POST') return sendError(ctx, 405, 'invalid_request', 'POST only');
    if (!isConsole(ctx, deps.clients)) {
      ctx.set('WWW-Authenticate', 'Basic realm="hearth-console"');
      return sendError(ctx, 401, 'invalid_client', 'only the web console may end sessions here');
    }
    const form = await readForm(ctx);
    const accountId = form?.get('account') ?? '';
    const uid = form?.get('session') || null;
    if (!accountId || !deps.directory.userById(accountId)) return sendError(ctx, 400, 'invalid_request', 'account names no user');
    const sessions = (await deps.storage.findAll('Session', 'accountId', accountId)).filter((s) => s.accountId === accountId && typeof s.uid === 'string' && (uid === null || s.uid === uid));
    let ended = 0;
    for (const s of sessions) {
      await notifyApps(deps.provider(), deps.logger, accountId, s);
      if (await endSession(deps.storage, accountId, s.uid!)) ended++;
    }
    deps.logger.info({ username: deps.directory.userById(accountId)?.username, sessions: ended }, 'provider sessions ended by the console');
    ctx.status = 200;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { ended };
  };
}
