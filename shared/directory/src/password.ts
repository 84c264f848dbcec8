import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Argon2Settings } from '@hearth/config';

/** The argon2 binding loads at the first hash or check: CLI commands that never touch a password start ~40 ms sooner. */
const argon2 = (): Promise<typeof import('@node-rs/argon2')> => import('@node-rs/argon2');

/** argon2id on libuv's thread pool, so hashing never blocks a daemon's event loop. */
export class PasswordHasher {
  private dummy: Promise<string> | null = null;

  constructor(private readonly settings: Argon2Settings) {}

  async hash(password: string): Promise<string> {
    const { hash } = await argon2();
    return hash(password, { algorithm: 2 /* Algorithm.Argon2id (a const enum) */, ...this.settings });
  }

  async verify(phc: string, password: string): Promise<boolean> {
    const { verify } = await argon2();
    try {
      return await verify(phc, password);
    } catch {
      return false;
    }
  }

  /** Spends the same time as a real verification, so an unknown login looks like a wrong password. */
  async verifyDummy(password: string): Promise<false> {
    this.dummy ??= this.hash(randomBytes(16).toString('hex'));
    await this.verify(await this.dummy, password);
    return false;
  }
}

/**
 * Secrets handed to apps: CSPRNG, URL- and env-safe. Apps pass them on command lines
 * (`swaks --auth-password`, `mysql -p…`), where a leading `-` reads as an option, so a
 * draw that starts with `-` or `_` is discarded and redrawn (uniform over the rest).
 */
export function generateSecret(bytes = 24): string {
  for (;;) {
    const secret = randomBytes(bytes).toString('base64url');
    if (/^[A-Za-z0-9]/.test(secret)) return secret;
  }
}

/** Constant-time comparison for app passwords stored in clear (they must be printable by `hearth app env`). */
export function secretEquals(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  if (x.length !== y.length) {
    timingSafeEqual(x, x);
    return false;
  }
  return timingSafeEqual(x, y);
}
