import type { Directory } from '@hearth/directory';
import { CONSOLE_SESSION_END_PATH } from '@hearth/oidc/endpoints';
import { endSession, listDetachedGrants, listSessions, revokeAccount, revokeGrant, type OidcSessionView } from '@hearth/oidc/sessions';
import { html, postButton, type Html } from './pages/layout.ts';
import { done, view, type RequestContext, type Result, type Route, type Services } from './routes.ts';
import { appTitle } from './self.ts';
import { GATEWAY_SESSION_NAMESPACE, type Session } from './session.ts';
import { consoleCredentials } from './signin.ts';

/**
 * The sessions page: where the user is signed in — this console, the provider's single sign-on
 * sessions (and the apps each one signed in to), the proxyAuth gateway — each with a sign-out
 * that ends it for real; and "sign out everywhere" for an admin on a user's page.
 */

interface GatewaySession {
  handle: string;
  record: { appId: string; createdAt: number; lastSeen: number; remote?: string | null; userAgent?: string };
}

function when(ms: number | null): string {
  return ms === null ? '—' : new Date(ms).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
}

async function gatewaySessions(directory: Directory, userId: string): Promise<GatewaySession[]> {
  return (await directory.store.kvFindWhere(GATEWAY_SESSION_NAMESPACE, 'userId', userId)).map((r) => ({ handle: r.key, record: JSON.parse(r.value) as GatewaySession['record'] }));
}

/** The app an OIDC client id belongs to (its own client, or the gateway's client in front of it). */
function clientTitle(directory: Directory, clientId: string): string {
  const app = directory.apps().find((a) => a.credentials.oidc?.clientId === clientId || a.credentials.proxyAuth?.clientId === clientId);
  if (!app) return clientId;
  return app.id === 'hearth-console' ? 'this console' : appTitle(app);
}

/** The provider session this console session signed in with. */
function isThisBrowser(s: OidcSessionView, session: Session): boolean {
  return s.uid === session.record.oidcSession;
}

/**
 * Ends one of the user's provider sessions (`uid`), or all of them, through the provider
 * (services/oidc session-end.ts), which first sends each app the session signed in to a
 * back-channel logout token. If the provider cannot be reached they end in the store all the
 * same — a sign-out must not wait on the provider — and the log says the apps were not told.
 * True when something was ended.
 */
async function endProviderSessions(s: Services, accountId: string, uid: string | null): Promise<boolean> {
  const creds = consoleCredentials(s.directory);
  const base = s.settings.oidcInternalUrl ?? s.config.oidcIssuer.replace(/\/+$/, '');
  try {
    if (!creds) throw new Error('the console has no OIDC client');
    const res = await fetch(base + CONSOLE_SESSION_END_PATH, {
      method: 'POST',
      headers: { Authorization: `Basic ${Buffer.from(`${encodeURIComponent(creds.clientId)}:${encodeURIComponent(creds.clientSecret)}`).toString('base64')}` },
      body: new URLSearchParams({ account: accountId, ...(uid ? { session: uid } : {}) }),
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) throw new Error(`the provider answered ${res.status}`);
    return ((await res.json()) as { ended?: number }).ended !== 0;
  } catch (err) {
    s.logger.warn({ err, accountId }, 'could not end sessions at the provider; ending them in its store, without telling the apps (back-channel logout)');
    if (uid) return endSession(s.oidcStorage, accountId, uid);
    const any = (await listSessions(s.oidcStorage, accountId)).length > 0;
    await revokeAccount(s.oidcStorage, accountId);
    return any;
  }
}

const TABLE = (caption: string, head: Html, rows: Html[]): Html =>
  html`<div class="table" tabindex="0" role="region" aria-label="${caption} (scrolls sideways on small screens)"><table><caption class="hint">${caption}</caption><thead><tr>${head}</tr></thead><tbody>${rows}</tbody></table></div>`;

async function sessionsPage(c: RequestContext): Promise<Result> {
  const csrf = c.session.record.csrf;
  const end = (kind: string, handle: string, aria: string): Html => postButton('/sessions/end', csrf, 'Sign out', { kind: 'secondary', hidden: { kind, handle }, aria });
  const consoleSessions = (await c.sessions.ofUser(c.user.id)).sort((a, b) => b.record.lastSeen - a.record.lastSeen);
  const sso = await listSessions(c.oidcStorage, c.user.id);
  const detached = await listDetachedGrants(c.oidcStorage, c.user.id);
  const gateway = await gatewaySessions(c.directory, c.user.id);
  const browserHead = html`<th scope="col">Browser</th><th scope="col">From</th><th scope="col">Signed in</th><th scope="col">Last active</th>`;
  return view(
    c,
    'Sessions',
    html`<h2>Single sign-on</h2>
<p class="hint">Signing out here ends the sign-in and the apps' access through it: they must ask you to sign in again.</p>
${sso.length
  ? TABLE(
      'Where you are signed in to Hearth, and the apps each sign-in opened',
      html`${browserHead}<th scope="col">Apps</th><th scope="col"><span class="hint">Action</span></th>`,
      sso.map(
        (s) => html`<tr><td>${s.userAgent || 'unknown'}</td><td>${s.remote ?? '—'}</td><td>${when(s.signedInAt)}</td><td>${when(s.lastSeen)}</td><td>${s.authorizations.map((a) => clientTitle(c.directory, a.clientId)).join(', ') || '—'}</td>
<td>${isThisBrowser(s, c.session) ? html`<span class="tag">this browser</span>` : end('oidc', s.uid, `Sign out the sign-in from ${when(s.signedInAt)}`)}</td></tr>`,
      ),
    )
  : html`<p>None.</p>`}
${detached.length
  ? html`<h3>Apps that stay signed in without a session</h3>
${TABLE(
  'Apps holding offline access (a refresh token) after their sign-in ended',
  html`<th scope="col">App</th><th scope="col">Granted</th><th scope="col">Expires</th><th scope="col"><span class="hint">Action</span></th>`,
  detached.map((g) => html`<tr><td>${clientTitle(c.directory, g.clientId)}</td><td>${when(g.issuedAt)}</td><td>${when(g.expiresAt)}</td><td>${postButton('/sessions/end', csrf, 'Revoke', { kind: 'secondary', hidden: { kind: 'grant', handle: g.grantId }, aria: `Revoke the access of ${clientTitle(c.directory, g.clientId)}` })}</td></tr>`),
)}`
  : ''}
<h2>Console</h2>
${TABLE(
  'Where you are signed in to this console',
  html`${browserHead}<th scope="col"><span class="hint">Action</span></th>`,
  consoleSessions.map(
    (s) => html`<tr><td>${s.record.userAgent || 'unknown'}</td><td>${s.record.remote ?? '—'}</td><td>${when(s.record.createdAt)}</td><td>${when(s.record.lastSeen)}</td>
<td>${s.handle === c.session.handle ? html`<span class="tag">this browser</span>` : end('console', s.handle, `Sign out the console session started ${when(s.record.createdAt)}`)}</td></tr>`,
  ),
)}
<h2>Apps behind the sign-in wall</h2>
${gateway.length
  ? TABLE(
      'Apps you are signed in to through the sign-in wall',
      html`<th scope="col">App</th><th scope="col">From</th><th scope="col">Signed in</th><th scope="col">Last active</th><th scope="col"><span class="hint">Action</span></th>`,
      gateway.map((s) => {
        const app = c.directory.app(s.record.appId);
        const title = app ? appTitle(app) : s.record.appId;
        return html`<tr><td>${title}</td><td>${s.record.remote ?? '—'}</td><td>${when(s.record.createdAt)}</td><td>${when(s.record.lastSeen)}</td><td>${end('gateway', s.handle, `Sign out of ${title}`)}</td></tr>`;
      }),
    )
  : html`<p>None.</p>`}
<div class="actions">${postButton('/sessions/end-others', csrf, 'Sign out everywhere else', { kind: 'danger' })}</div>`,
  );
}

async function endOne(c: RequestContext): Promise<Result> {
  const handle = c.form.get('handle');
  const kind = c.form.get('kind');
  // Only the user's own sessions: each lookup is scoped to the signed-in user.
  let ended = false;
  if (kind === 'console') {
    if (handle !== c.session.handle && (await c.sessions.ofUser(c.user.id)).some((s) => s.handle === handle)) {
      await c.sessions.destroy(handle);
      ended = true;
    }
  } else if (kind === 'gateway') {
    if ((await gatewaySessions(c.directory, c.user.id)).some((s) => s.handle === handle)) {
      await c.directory.store.kvDelete(GATEWAY_SESSION_NAMESPACE, handle);
      ended = true;
    }
  } else if (kind === 'oidc') {
    const target = (await listSessions(c.oidcStorage, c.user.id)).find((s) => s.uid === handle);
    if (target && !isThisBrowser(target, c.session)) ended = await endProviderSessions(c, c.user.id, handle);
  } else if (kind === 'grant') {
    if ((await listDetachedGrants(c.oidcStorage, c.user.id)).some((g) => g.grantId === handle)) ended = await revokeGrant(c.oidcStorage, c.user.id, handle);
  }
  if (ended) await c.directory.audit({ username: c.user.username, protocol: 'console', remote: c.remote, ok: true, detail: `signed out a ${kind} session` });
  return done('/sessions', 'session-ended');
}

async function endOthers(c: RequestContext): Promise<Result> {
  for (const s of await c.sessions.ofUser(c.user.id)) if (s.handle !== c.session.handle) await c.sessions.destroy(s.handle);
  await c.directory.store.kvDeleteWhere(GATEWAY_SESSION_NAMESPACE, 'userId', c.user.id);
  for (const s of await listSessions(c.oidcStorage, c.user.id)) if (!isThisBrowser(s, c.session)) await endProviderSessions(c, c.user.id, s.uid);
  for (const g of await listDetachedGrants(c.oidcStorage, c.user.id)) await revokeGrant(c.oidcStorage, c.user.id, g.grantId);
  await c.directory.audit({ username: c.user.username, protocol: 'console', remote: c.remote, ok: true, detail: 'signed out everywhere else' });
  return done('/sessions', 'sessions-ended');
}

/** How many sessions of each kind a user has (the admin's user page). */
export async function sessionCounts(s: Services, userId: string): Promise<{ console: number; sso: number; gateway: number }> {
  return {
    console: (await s.sessions.ofUser(userId)).length,
    sso: (await listSessions(s.oidcStorage, userId)).length,
    gateway: (await gatewaySessions(s.directory, userId)).length,
  };
}

/** Ends every session, grant and token of a user: the console's, the gateway's and the provider's. */
export async function signOutEverywhere(s: Services, userId: string): Promise<void> {
  await s.sessions.destroyUser(userId);
  await s.directory.store.kvDeleteWhere(GATEWAY_SESSION_NAMESPACE, 'userId', userId);
  await endProviderSessions(s, userId, null);
  // what outlives the sessions: offline grants and their tokens
  await revokeAccount(s.oidcStorage, userId);
}

export const sessionRoutes: Route[] = [
  { method: 'GET', path: /^\/sessions$/, handler: sessionsPage },
  { method: 'POST', path: /^\/sessions\/end$/, handler: endOne },
  { method: 'POST', path: /^\/sessions\/end-others$/, handler: endOthers },
];
