import { createHash, randomBytes } from 'node:crypto';
import type { Directory } from '@hearth/directory';
import { newSessionId, sessionExpired, sessionTtlSeconds, signSessionId, verifySessionCookie, type SessionLimits } from '@hearth/web';

/**
 * Console sessions. The cookie carries a random id and its HMAC; the record lives in the
 * directory's expiring key/value store under the id's hash, so every replica sees it, a
 * user can list and end their own, and a disabled user's go at once.
 */

export const SESSION_NAMESPACE = 'console.session';
/** The gateway's sessions (services/proxyauth), listed and ended from the sessions page too. */
export const GATEWAY_SESSION_NAMESPACE = 'proxyauth.session';

export interface SessionRecord {
  userId: string;
  /** ms since epoch */
  createdAt: number;
  lastSeen: number;
  /** every form carries this; a form without it is refused */
  csrf: string;
  /** for the provider's end_session id_token_hint */
  idToken: string | null;
  /** the uid of the provider session this browser signed in with, marked "this browser" on the sessions page */
  oidcSession?: string | null;
  userAgent: string;
  remote: string | null;
  /** a TOTP secret shown as a QR code, stored once the user proves they hold it */
  pendingTotp?: string;
  /** the WebAuthn challenge of a passkey registration in progress */
  challenge?: string;
}

export interface Session {
  /** the store key (hash of the id): names the session on the sessions page without revealing the cookie */
  handle: string;
  record: SessionRecord;
}

export function sessionHandle(sid: string): string {
  return createHash('sha256').update(sid).digest('base64url');
}

export class ConsoleSessions {
  /** refresh lastSeen at most this often, so busy sessions do not write on every request */
  private readonly touchMs: number;

  constructor(
    private readonly directory: Directory,
    private readonly key: Buffer,
    private readonly limits: SessionLimits,
  ) {
    this.touchMs = Math.min(60_000, (limits.sessionIdleSeconds * 1000) / 4);
  }

  /** Starts a session and returns the cookie value. */
  async create(userId: string, signIn: { idToken: string | null; oidcSession: string | null }, userAgent: string, remote: string | null, now = Date.now()): Promise<string> {
    const sid = newSessionId();
    const record: SessionRecord = { userId, createdAt: now, lastSeen: now, csrf: randomBytes(32).toString('base64url'), idToken: signIn.idToken, oidcSession: signIn.oidcSession, userAgent: userAgent.slice(0, 200), remote };
    await this.write(sessionHandle(sid), record, now);
    return signSessionId(this.key, sid);
  }

  /** The live session a cookie names, or null (forged, idle, too old, ended). */
  async resolve(cookie: string, now = Date.now()): Promise<Session | null> {
    const sid = verifySessionCookie(this.key, cookie);
    if (!sid) return null;
    const handle = sessionHandle(sid);
    const raw = await this.directory.store.kvGet(SESSION_NAMESPACE, handle);
    if (!raw) return null;
    let record: SessionRecord;
    try {
      record = JSON.parse(raw) as SessionRecord;
    } catch {
      return null;
    }
    if (sessionExpired(this.limits, record, now)) {
      await this.destroy(handle);
      return null;
    }
    if (now - record.lastSeen > this.touchMs) {
      record = { ...record, lastSeen: now };
      await this.write(handle, record, now);
    }
    return { handle, record };
  }

  async update(session: Session, patch: Partial<SessionRecord>): Promise<void> {
    session.record = { ...session.record, ...patch };
    await this.write(session.handle, session.record);
  }

  async destroy(handle: string): Promise<void> {
    await this.directory.store.kvDelete(SESSION_NAMESPACE, handle);
  }

  /** Every console session of a user. */
  async ofUser(userId: string): Promise<Session[]> {
    const rows = await this.directory.store.kvFindWhere(SESSION_NAMESPACE, 'userId', userId);
    return rows.map((r) => ({ handle: r.key, record: JSON.parse(r.value) as SessionRecord }));
  }

  async destroyUser(userId: string): Promise<void> {
    await this.directory.store.kvDeleteWhere(SESSION_NAMESPACE, 'userId', userId);
  }

  private async write(handle: string, record: SessionRecord, now = Date.now()): Promise<void> {
    await this.directory.store.kvSet(SESSION_NAMESPACE, handle, JSON.stringify(record), sessionTtlSeconds(this.limits, record, now));
  }
}
