import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import { writeFileOnce } from '@hearth/config';

/**
 * Cookie cryptography shared by the web daemons: session ids signed with an HMAC (the
 * session itself lives server-side), and short-lived state sealed with AES-256-GCM.
 */

/** A 32-byte secret kept as hex in `file` (0600), generated on first use; replicas starting together agree on the first one written. */
export function loadKeyFile(file: string): Buffer {
  const hex = (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : writeFileOnce(file, `${randomBytes(32).toString('hex')}\n`)).trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${file} is not a 32-byte hex key`);
  return Buffer.from(hex, 'hex');
}

/** A key for one purpose derived from a master key, so one secret never serves two uses. */
export function subKey(key: Buffer, label: string): Buffer {
  return createHmac('sha256', key).update(label).digest();
}

function mac(key: Buffer, value: string): Buffer {
  return createHmac('sha256', subKey(key, 'session')).update(value).digest();
}

/** A fresh random session id (43 base64url characters). */
export function newSessionId(): string {
  return randomBytes(32).toString('base64url');
}

export function signSessionId(key: Buffer, sid: string): string {
  return `${sid}.${mac(key, sid).toString('base64url')}`;
}

export function verifySessionCookie(key: Buffer, cookie: string): string | null {
  const dot = cookie.indexOf('.');
  if (dot <= 0) return null;
  const sid = cookie.slice(0, dot);
  if (!/^[A-Za-z0-9_-]{43}$/.test(sid)) return null;
  const given = Buffer.from(cookie.slice(dot + 1), 'base64url');
  const want = mac(key, sid);
  return given.length === want.length && timingSafeEqual(given, want) ? sid : null;
}

/** AES-256-GCM; the output is base64url(iv | tag | ciphertext). */
export function seal(key: Buffer, value: unknown): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', subKey(key, 'seal'), iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

export function unseal(key: Buffer, sealed: string): unknown {
  try {
    const raw = Buffer.from(sealed, 'base64url');
    if (raw.length < 29 || raw.length > 8192) return null;
    const decipher = createDecipheriv('aes-256-gcm', subKey(key, 'seal'), raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return JSON.parse(Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8'));
  } catch {
    return null;
  }
}
