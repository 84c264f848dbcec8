import { createHmac, randomBytes } from 'node:crypto';
import type { App, AuthFailure, Directory, User } from '@hearth/directory';

/** `Authorization: Basic` sign-in (the manifest's basicAuth: true), with a short memory of good logins. */

export interface BasicCredentials {
  login: string;
  password: string;
}

/** Parses an Authorization header value; null unless it is well-formed Basic. */
export function parseBasic(header: string | undefined): BasicCredentials | null {
  if (!header) return null;
  const m = /^basic[ \t]+([A-Za-z0-9+/=]{1,2048})[ \t]*$/i.exec(header);
  if (!m) return null;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return null;
  return { login: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export function isBasic(header: string | undefined): boolean {
  return header !== undefined && /^basic(\s|$)/i.test(header);
}

export function isBearer(header: string | undefined): boolean {
  return header !== undefined && /^bearer\s/i.test(header);
}

const CACHE_MS = 60_000;
const CACHE_MAX = 10_000;

interface Remembered {
  userId: string;
  passwordHash: string;
  until: number;
}

/**
 * Clients with Basic auth send the password on every request; one argon2 check per
 * request would cap the gateway at a few dozen requests per second. A good login is
 * remembered for a minute under a keyed hash of (app, login, password), and only
 * while the user's password hash is unchanged. Whether the user is still active and
 * allowed is checked by the caller on every request; failures always go to the
 * directory (throttled and audited there).
 */
export class BasicAuthenticator {
  private readonly key = randomBytes(32);
  private readonly cache = new Map<string, Remembered>();

  constructor(private readonly directory: Directory) {}

  async authenticate(app: App, creds: BasicCredentials, remote: string): Promise<{ ok: true; user: User } | { ok: false; reason: AuthFailure }> {
    const id = createHmac('sha256', this.key).update(`${app.id}\0${creds.login}\0${creds.password}`).digest('base64url');
    const now = Date.now();
    const hit = this.cache.get(id);
    if (hit && hit.until > now) {
      const user = this.directory.userById(hit.userId);
      if (user && user.active && user.passwordHash === hit.passwordHash) return { ok: true, user };
    }
    this.cache.delete(id);
    const r = await this.directory.authenticate({ login: creds.login, password: creds.password, protocol: 'proxyauth', appId: app.id, remote });
    if (r.ok) {
      if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(id, { userId: r.user.id, passwordHash: r.user.passwordHash, until: now + CACHE_MS });
    }
    return r;
  }
}
