import { createHash, createHmac } from 'node:crypto';
import path from 'node:path';
import type { App, Directory } from '@hearth/directory';
import { loadKeyFile, newSessionId, sessionExpired, sessionTtlSeconds, signSessionId, verifySessionCookie, type SessionLimits } from '@hearth/web';

/**
 * Gateway sessions. The cookie carries only a random session id and its HMAC; the
 * session itself (user, app, times, id_token for logout) lives in the directory's
 * expiring key/value store under the id's hash, so logout ends it everywhere and
 * every replica sees the same sessions. The short-lived sign-in state (PKCE verifier,
 * nonce, return path) travels in an AES-GCM sealed cookie instead.
 */

export const SESSION_COOKIE = 'hearth_proxyauth';
export const LOGIN_COOKIE = 'hearth_proxyauth_login';

export interface CookieNames {
  session: string;
  login: string;
}

/** Over TLS the names carry the __Host- prefix, so no sibling subdomain can plant one (session fixation). */
export function cookieNames(secure: boolean): CookieNames {
  return secure ? TLS_COOKIE_NAMES : PLAIN_COOKIE_NAMES;
}
const TLS_COOKIE_NAMES: CookieNames = Object.freeze({ session: `__Host-${SESSION_COOKIE}`, login: `__Host-${LOGIN_COOKIE}` });
const PLAIN_COOKIE_NAMES: CookieNames = Object.freeze({ session: SESSION_COOKIE, login: LOGIN_COOKIE });

/**
 * The sign-in state cookie is named after its state, so sign-ins started in several tabs
 * at once (all of them after a session expired, say) do not overwrite each other.
 */
export function loginCookieName(names: CookieNames, state: string): string {
  return `${names.login}_${state.slice(0, 16)}`;
}

/** The gateway owns every cookie named hearth_proxyauth*; none of them is passed on to an app. */
export function isGatewayCookie(name: string): boolean {
  return (name.startsWith('__Host-') ? name.slice(7) : name).startsWith(SESSION_COOKIE);
}
const KV_NAMESPACE = 'proxyauth.session';

/** The gateway-wide secret, generated once into $HEARTH_DATA_DIR/proxyauth/cookie.key. */
export function loadMasterKey(dataDir: string): Buffer {
  return loadKeyFile(path.join(dataDir, 'proxyauth', 'cookie.key'));
}

/** Each app signs with its own key: its provisioned cookieSecret, else one derived from the master key. */
export function appKey(master: Buffer, app: App): Buffer {
  const secret = app.credentials.proxyAuth?.cookieSecret;
  const base = secret ? Buffer.from(secret, 'utf8') : master;
  return createHmac('sha256', base).update(`hearth-proxyauth:${app.id}`).digest();
}

export interface SessionRecord {
  userId: string;
  appId: string;
  /** ms since epoch */
  createdAt: number;
  lastSeen: number;
  /** kept for the provider's end_session id_token_hint */
  idToken: string | null;
  /** where the sign-in came from, for the console's sessions page */
  remote?: string | null;
  userAgent?: string;
}

export interface ResolvedSession {
  sid: string;
  record: SessionRecord;
}

function kvKey(sid: string): string {
  // A leaked store holds no usable cookie values.
  return createHash('sha256').update(sid).digest('base64url');
}

/** How long a looked-up session is reused in this process (another replica's logout shows after at most this). */
const CACHE_MS = 1000;
const CACHE_MAX = 50_000;

interface Cached {
  cookie: string;
  app: App;
  record: SessionRecord;
  until: number;
}

export class SessionStore {
  /** refresh lastSeen at most this often, so busy sessions do not write on every request */
  private readonly touchMs: number;
  /** by session id; spares the store read and the HMAC on the requests that follow within CACHE_MS */
  private readonly cache = new Map<string, Cached>();

  constructor(
    private readonly directory: Directory,
    private readonly limits: SessionLimits,
  ) {
    this.touchMs = Math.min(60_000, (limits.sessionIdleSeconds * 1000) / 4);
  }

  /** Starts a session and returns the cookie value. */
  async create(key: Buffer, app: App, userId: string, idToken: string | null, where: { remote: string | null; userAgent: string } = { remote: null, userAgent: '' }, now = Date.now()): Promise<string> {
    const sid = newSessionId();
    await this.write(sid, { userId, appId: app.id, createdAt: now, lastSeen: now, idToken, remote: where.remote, userAgent: where.userAgent.slice(0, 200) }, now);
    return signSessionId(key, sid);
  }

  /** The live session a cookie names for this app, or null (forged, foreign, idle, too old, ended). */
  async resolve(key: Buffer, app: App, cookie: string, now = Date.now()): Promise<ResolvedSession | null> {
    const claimed = cookie.slice(0, Math.max(0, cookie.indexOf('.')));
    const hit = this.cache.get(claimed);
    // The same App object means the same key: a rotated cookieSecret arrives as a new record.
    if (hit && hit.cookie === cookie && hit.app === app && hit.until > now) return this.check(claimed, hit.record, now);
    const sid = verifySessionCookie(key, cookie);
    if (!sid) return null;
    const raw = await this.directory.store.kvGet(KV_NAMESPACE, kvKey(sid));
    if (!raw) return null;
    let record: SessionRecord;
    try {
      record = JSON.parse(raw) as SessionRecord;
    } catch {
      return null;
    }
    if (record.appId !== app.id) return null;
    if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(sid, { cookie, app, record, until: now + CACHE_MS });
    return this.check(sid, record, now);
  }

  private async check(sid: string, record: SessionRecord, now: number): Promise<ResolvedSession | null> {
    if (sessionExpired(this.limits, record, now)) {
      await this.destroy(sid);
      return null;
    }
    if (now - record.lastSeen > this.touchMs) {
      record = { ...record, lastSeen: now };
      await this.write(sid, record, now);
      const cached = this.cache.get(sid);
      if (cached) cached.record = record;
    }
    return { sid, record };
  }

  async destroy(sid: string): Promise<void> {
    this.cache.delete(sid);
    await this.directory.store.kvDelete(KV_NAMESPACE, kvKey(sid));
  }

  /** Ends every gateway session of a user, on every app (single logout). */
  async destroyUser(userId: string): Promise<void> {
    for (const [sid, c] of this.cache) if (c.record.userId === userId) this.cache.delete(sid);
    await this.directory.store.kvDeleteWhere(KV_NAMESPACE, 'userId', userId);
  }

  /** Writes a record as-is (tests use it to plant old sessions). */
  async write(sid: string, record: SessionRecord, now = Date.now()): Promise<void> {
    await this.directory.store.kvSet(KV_NAMESPACE, kvKey(sid), JSON.stringify(record), sessionTtlSeconds(this.limits, record, now));
  }
}
