import { createHash } from 'node:crypto';
import { DirectoryError } from './store.ts';

/** Public key types an SFTP client may log in with (OpenSSH's current set, without DSA). */
export const SSH_KEY_ALGORITHMS = ['ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521'] as const;

/**
 * One authorized_keys line ("ssh-ed25519 AAAA… comment"): checked (known type, base64 blob that
 * names the same type inside) and fingerprinted as ssh-keygen -l does (SHA256, base64, no padding).
 */
export function parseSshPublicKey(line: string): { algorithm: string; keyData: string; comment: string; fingerprint: string } {
  const m = /^\s*(\S+)\s+([A-Za-z0-9+/]+={0,2})(?:\s+(.*?))?\s*$/.exec(line);
  if (!m) throw new DirectoryError('not an OpenSSH public key line (expected "ssh-ed25519 AAAA… comment")');
  const [, algorithm, keyData, comment] = m as unknown as [string, string, string, string | undefined];
  if (!(SSH_KEY_ALGORITHMS as readonly string[]).includes(algorithm)) throw new DirectoryError(`unsupported key type ${algorithm}; use one of ${SSH_KEY_ALGORITHMS.join(', ')}`);
  const blob = Buffer.from(keyData, 'base64');
  const nameLength = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (nameLength < 1 || blob.length < 4 + nameLength + 4 || blob.subarray(4, 4 + nameLength).toString('latin1') !== algorithm) {
    throw new DirectoryError(`the key data is not a ${algorithm} public key`);
  }
  if ((comment ?? '').length > 200) throw new DirectoryError('the key comment is longer than 200 characters');
  const fingerprint = `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
  return { algorithm, keyData, comment: comment ?? '', fingerprint };
}
