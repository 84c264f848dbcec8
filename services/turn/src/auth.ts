import { createHmac, randomBytes } from 'node:crypto';
import type { Directory } from '@hearth/directory';
import {
  Attr,
  attrString,
  attrValue,
  checkIntegrity,
  integrityKind,
  longTermKey,
  parsePasswordAlgorithms,
  PasswordAlgorithmId,
  type IntegrityKind,
  type StunMessage,
} from './stun-codec.ts';

/**
 * TURN REST API credentials (the scheme coturn's use-auth-secret implements) checked
 * through the STUN long-term credential mechanism (RFC 8489 §9.2):
 *   username = "<unix expiry>[:<user>]", password = base64(HMAC-SHA1(secret, username)),
 *   key = MD5 (or SHA-256, when the client picks it) of "username:realm:password".
 * The secrets are every installed app's credentials.turn.secret.
 */

/** RFC 8489 §9.2: nonce cookie + base64 of the security-feature bits ("password algorithms" set). */
export const NONCE_COOKIE = 'obMatJos2gAAA';
export const SUPPORTED_ALGORITHMS = [PasswordAlgorithmId.Md5, PasswordAlgorithmId.Sha256];

export interface AppSecret {
  appId: string;
  secret: string;
}

export type AuthOutcome =
  /** no USERNAME/integrity at all: answer 401 with REALM and NONCE */
  | { kind: 'challenge' }
  /** credentials present but wrong, expired or unknown: 401 (counted as a failure) */
  | { kind: 'reject'; reason: string; username: string | null }
  /** the nonce is unknown or expired: 438 with a fresh one */
  | { kind: 'stale' }
  /** malformed credential attributes: 400 */
  | { kind: 'bad'; reason: string }
  | { kind: 'ok'; username: string; user: string | null; appId: string; key: Buffer; integrity: IntegrityKind };

export function restPassword(secret: string, username: string): string {
  return createHmac('sha1', secret).update(username, 'utf8').digest('base64');
}

/** The expiry (unix seconds) and user part of a REST API username, or null when it is not one. */
export function parseRestUsername(username: string): { expiry: number; user: string | null } | null {
  const m = /^(\d{1,12})(?::(.*))?$/s.exec(username);
  if (!m) return null;
  return { expiry: Number(m[1]), user: m[2] ?? null };
}

export interface AuthOptions {
  realm: string;
  nonceLifetimeSeconds: number;
  /** bound on outstanding nonces, so unauthenticated traffic cannot grow memory without limit */
  maxNonces?: number;
  now?: () => number;
}

export class TurnAuth {
  private secrets: AppSecret[] = [];
  private readonly nonces = new Map<string, number>();
  private readonly unsubscribe: () => void;
  readonly realm: string;
  private readonly now: () => number;

  constructor(
    directory: Directory,
    private readonly opts: AuthOptions,
  ) {
    this.realm = opts.realm;
    this.now = opts.now ?? Date.now;
    this.loadSecrets(directory);
    this.unsubscribe = directory.onChange((d) => this.loadSecrets(d));
  }

  private loadSecrets(directory: Directory): void {
    const out: AppSecret[] = [];
    for (const app of directory.apps()) {
      const secret = app.credentials.turn?.secret;
      if (secret) out.push({ appId: app.id, secret });
    }
    this.secrets = out;
  }

  close(): void {
    this.unsubscribe();
  }

  get secretCount(): number {
    return this.secrets.length;
  }

  newNonce(): string {
    const max = this.opts.maxNonces ?? 100_000;
    if (this.nonces.size >= max) {
      // Map keeps insertion order: the first entry is the oldest.
      const oldest = this.nonces.keys().next().value;
      if (oldest !== undefined) this.nonces.delete(oldest);
    }
    const nonce = NONCE_COOKIE + randomBytes(12).toString('hex');
    this.nonces.set(nonce, this.now() + this.opts.nonceLifetimeSeconds * 1000);
    return nonce;
  }

  private nonceValid(nonce: string): boolean {
    const exp = this.nonces.get(nonce);
    return exp !== undefined && exp > this.now();
  }

  /** Drops expired nonces (called from the server's housekeeping timer). */
  sweep(): void {
    const now = this.now();
    for (const [n, exp] of this.nonces) if (exp <= now) this.nonces.delete(n);
  }

  /**
   * Checks a request's long-term credentials. The integrity check runs against each
   * app's secret in turn; the first that verifies names the app.
   */
  check(msg: StunMessage): AuthOutcome {
    const hasMi = integrityKind(msg) !== null;
    const username = attrString(msg, Attr.Username);
    if (!hasMi && username === undefined) return { kind: 'challenge' };
    const realm = attrString(msg, Attr.Realm);
    const nonce = attrString(msg, Attr.Nonce);
    if (!hasMi || username === undefined || realm === undefined || nonce === undefined) return { kind: 'bad', reason: 'missing credential attributes' };
    const algorithm = this.negotiatedAlgorithm(msg);
    if (algorithm === null) return { kind: 'bad', reason: 'password algorithm mismatch' };
    if (realm !== this.realm) return { kind: 'reject', reason: 'wrong realm', username };
    if (!this.nonceValid(nonce)) return { kind: 'stale' };
    const parsed = parseRestUsername(username);
    if (!parsed) return { kind: 'reject', reason: 'not a TURN REST API username', username };
    if (parsed.expiry * 1000 <= this.now()) return { kind: 'reject', reason: 'expired username', username };
    const integrity: IntegrityKind = integrityKind(msg) ?? 'sha1';
    for (const { appId, secret } of this.secrets) {
      const key = longTermKey(username, this.realm, restPassword(secret, username), algorithm);
      if (checkIntegrity(msg, key)) return { kind: 'ok', username, user: parsed.user, appId, key, integrity };
    }
    return { kind: 'reject', reason: 'invalid credentials', username };
  }

  /** md5 unless the client picked SHA-256 from our PASSWORD-ALGORITHMS (RFC 8489 §9.2.4); null on a bid-down attempt. */
  private negotiatedAlgorithm(msg: StunMessage): 'md5' | 'sha256' | null {
    const chosen = attrValue(msg, Attr.PasswordAlgorithm);
    const offered = attrValue(msg, Attr.PasswordAlgorithms);
    if (!chosen && !offered) return 'md5';
    if (!chosen || !offered) return null;
    const list = parsePasswordAlgorithms(offered);
    const pick = parsePasswordAlgorithms(chosen);
    if (!list || !pick || pick.length !== 1) return null;
    if (list.length !== SUPPORTED_ALGORITHMS.length || list.some((id, i) => id !== SUPPORTED_ALGORITHMS[i])) return null;
    if (pick[0] === PasswordAlgorithmId.Md5) return 'md5';
    if (pick[0] === PasswordAlgorithmId.Sha256) return 'sha256';
    return null;
  }
}
