import { generateKeyPairSync, randomBytes, randomUUID, type JsonWebKey } from 'node:crypto';
import type { HearthConfig } from '@hearth/config';
import { Directory, type DirectoryStore } from '@hearth/directory';

/**
 * Signing keys (RS256 and EdDSA/Ed25519) and cookie keys, generated once and kept in
 * the shared store so every replica signs with the same keys. Rotation puts new keys
 * first (used for signing) and keeps the previous generation for verification, so
 * tokens already issued stay valid.
 */

export interface KeyMaterial {
  /** bumped on every rotation; running daemons reload when it changes */
  version: number;
  /** private JWKs, newest first */
  jwks: JsonWebKey[];
  /** cookie signing keys, newest first */
  cookieKeys: string[];
}

const NS = 'oidc';
const KEY = 'keys';
const LOCK = 'keys-init';
/** Generations kept: the current one signs, older ones only verify. */
const GENERATIONS = 2;

/** A fresh RSA-2048 (RS256) and Ed25519 (EdDSA) signing key pair, as private JWKs. */
export function signingKeys(): JsonWebKey[] {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ed = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });
  return [
    { ...rsa, kid: `rs-${randomUUID()}`, alg: 'RS256', use: 'sig' },
    { ...ed, kid: `ed-${randomUUID()}`, alg: 'EdDSA', use: 'sig' },
  ];
}

function fresh(version: number, previous?: KeyMaterial): KeyMaterial {
  const keep = (previous?.jwks ?? []).slice(0, 2 * (GENERATIONS - 1));
  return {
    version,
    jwks: [...signingKeys(), ...keep],
    cookieKeys: [randomBytes(32).toString('base64url'), ...(previous?.cookieKeys ?? []).slice(0, GENERATIONS - 1)],
  };
}

export async function readKeys(store: DirectoryStore): Promise<KeyMaterial | null> {
  const raw = await store.kvGet(NS, KEY);
  return raw === null ? null : (JSON.parse(raw) as KeyMaterial);
}

/** The current keys, generating them on first start (one replica generates, the others wait for it). */
export async function loadOrCreateKeys(store: DirectoryStore): Promise<KeyMaterial> {
  const existing = await readKeys(store);
  if (existing) return existing;
  if ((await store.kvIncr(NS, LOCK, 1, 30)) === 1) {
    const keys = fresh(1);
    await store.kvSet(NS, KEY, JSON.stringify(keys), null);
    return keys;
  }
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    const k = await readKeys(store);
    if (k) return k;
  }
  throw new Error('timed out waiting for another replica to generate the OIDC signing keys');
}

/**
 * New signing and cookie keys; the previous generation stays published for verification.
 * Running providers pick the change up within seconds. `hearth oidc rotate-keys` calls this.
 */
export async function rotateKeys(config: HearthConfig, store?: DirectoryStore): Promise<{ version: number; kids: string[] }> {
  const directory = store ? null : await Directory.open(config);
  const s = store ?? directory!.store;
  try {
    const current = await loadOrCreateKeys(s);
    const next = fresh(current.version + 1, current);
    await s.kvSet(NS, KEY, JSON.stringify(next), null);
    return { version: next.version, kids: next.jwks.map((k) => String(k.kid)) };
  } finally {
    await directory?.close();
  }
}
