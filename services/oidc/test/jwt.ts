import { createPublicKey, verify, type JsonWebKey } from 'node:crypto';

/** Decodes a compact JWS and checks its signature against a JWKS with node's crypto (independent of the provider's own code). */
export function decodeJwt(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [h, p] = token.split('.');
  return { header: JSON.parse(Buffer.from(h!, 'base64url').toString()), payload: JSON.parse(Buffer.from(p!, 'base64url').toString()) };
}

export function verifyJwt(token: string, jwks: { keys: JsonWebKey[] }): boolean {
  const [h, p, s] = token.split('.');
  const { header } = decodeJwt(token);
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (!jwk || !s) return false;
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  const data = Buffer.from(`${h}.${p}`);
  const sig = Buffer.from(s, 'base64url');
  if (header.alg === 'RS256') return verify('sha256', data, key, sig);
  if (header.alg === 'EdDSA' || header.alg === 'Ed25519') return verify(null, data, key, sig);
  return false;
}

export async function fetchJwks(issuer: string): Promise<{ keys: JsonWebKey[] }> {
  return (await fetch(`${issuer}/jwks`)).json() as Promise<{ keys: JsonWebKey[] }>;
}
