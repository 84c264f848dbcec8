import type { AdapterPayload } from 'oidc-provider';
import { ACCOUNT_MODELS, type OidcStorage } from './storage.ts';

/**
 * A user's sign-in sessions at the provider, as the web console lists and ends them. The
 * provider's own Session records say when and to which apps; where from (address, browser) is
 * kept beside them as a SessionInfo record, written on every authorization the session answers.
 * Ending a session deletes it with every grant it holds and every token of those grants, so an
 * app's next refresh fails and the next authorization asks for a sign-in again.
 */

export const SESSION_INFO_MODEL = 'SessionInfo';

/** Where a session was last used from; keyed by the session's uid (never its cookie value). */
export interface SessionInfo {
  uid: string;
  accountId: string;
  remote: string | null;
  userAgent: string;
  /** ms since epoch */
  lastSeen: number;
}

export interface OidcSessionView {
  /** the session's uid: names it without revealing the cookie */
  uid: string;
  /** ms since epoch */
  signedInAt: number | null;
  expiresAt: number | null;
  lastSeen: number | null;
  remote: string | null;
  userAgent: string;
  /** the apps (OIDC clients) this session signed in to */
  authorizations: { clientId: string; grantId: string | null }[];
}

/** A grant that outlives its session (offline access): an app that can still refresh without one. */
export interface OidcGrantView {
  grantId: string;
  clientId: string;
  issuedAt: number | null;
  expiresAt: number | null;
}

/** Models whose entities hang off a grant; deleting them with the grant ends an app's access. */
const GRANT_MODELS = ['AccessToken', 'RefreshToken', 'AuthorizationCode', 'DeviceCode', 'BackchannelAuthenticationRequest'];

type Authorizations = Record<string, { grantId?: string }>;

function seconds(v: unknown): number | null {
  return typeof v === 'number' ? v * 1000 : null;
}

/** The uid of the session an access token was issued in (the console marks "this browser" by it). */
export async function sessionOfAccessToken(storage: OidcStorage, accessToken: string): Promise<string | null> {
  const token = await storage.get('AccessToken', accessToken);
  return typeof token?.sessionUid === 'string' ? token.sessionUid : null;
}

/** Records where a session was used from (the provider's authorization.success). */
export async function recordSessionUse(storage: OidcStorage, info: SessionInfo, ttlSeconds: number): Promise<void> {
  await storage.set(SESSION_INFO_MODEL, info.uid, { ...info, userAgent: info.userAgent.slice(0, 200) } as unknown as AdapterPayload, ttlSeconds);
}

async function sessionsOf(storage: OidcStorage, accountId: string): Promise<AdapterPayload[]> {
  return (await storage.findAll('Session', 'accountId', accountId)).filter((s) => s.accountId === accountId && typeof s.uid === 'string');
}

export async function listSessions(storage: OidcStorage, accountId: string): Promise<OidcSessionView[]> {
  const out: OidcSessionView[] = [];
  for (const s of await sessionsOf(storage, accountId)) {
    const info = (await storage.get(SESSION_INFO_MODEL, s.uid!)) as unknown as SessionInfo | undefined;
    const mine = info?.accountId === accountId ? info : undefined;
    out.push({
      uid: s.uid!,
      signedInAt: seconds(s.loginTs),
      expiresAt: seconds(s.exp),
      lastSeen: mine?.lastSeen ?? null,
      remote: mine?.remote ?? null,
      userAgent: mine?.userAgent ?? '',
      authorizations: Object.entries((s.authorizations ?? {}) as Authorizations).map(([clientId, a]) => ({ clientId, grantId: a.grantId ?? null })),
    });
  }
  return out.sort((a, b) => (b.lastSeen ?? b.signedInAt ?? 0) - (a.lastSeen ?? a.signedInAt ?? 0));
}

/** Grants of the account that no live session holds (kept by offline access after the session ended). */
export async function listDetachedGrants(storage: OidcStorage, accountId: string): Promise<OidcGrantView[]> {
  const held = new Set((await sessionsOf(storage, accountId)).flatMap((s) => Object.values((s.authorizations ?? {}) as Authorizations).map((a) => a.grantId)));
  return (await storage.findAll('Grant', 'accountId', accountId))
    .filter((g) => g.accountId === accountId && typeof g.jti === 'string' && !held.has(g.jti))
    .map((g) => ({ grantId: g.jti!, clientId: String(g.clientId ?? ''), issuedAt: seconds(g.iat), expiresAt: seconds(g.exp) }));
}

/** Deletes a grant and every token issued under it. Only the account's own grant is touched. */
export async function revokeGrant(storage: OidcStorage, accountId: string, grantId: string): Promise<boolean> {
  const grant = await storage.get('Grant', grantId);
  if (grant && grant.accountId !== accountId) return false;
  for (const model of GRANT_MODELS) await storage.deleteAll(model, 'grantId', grantId);
  await storage.delete('Grant', grantId);
  return grant !== undefined;
}

/** Ends one of the account's sessions (named by uid) with its grants and their tokens; false when it is not theirs or gone. */
export async function endSession(storage: OidcStorage, accountId: string, uid: string): Promise<boolean> {
  const session = (await storage.findAll('Session', 'uid', uid))[0];
  if (!session || session.accountId !== accountId || typeof session.jti !== 'string') return false;
  await storage.delete('Session', session.jti);
  await storage.delete(SESSION_INFO_MODEL, uid);
  for (const a of Object.values((session.authorizations ?? {}) as Authorizations)) if (a.grantId) await revokeGrant(storage, accountId, a.grantId);
  return true;
}

/** Every session, grant and token of the account: "sign out everywhere" and the purge of a disabled user. */
export async function revokeAccount(storage: OidcStorage, accountId: string): Promise<void> {
  for (const model of [...ACCOUNT_MODELS, SESSION_INFO_MODEL]) await storage.deleteAll(model, 'accountId', accountId);
}
