import fs from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import { writeFileOnce, type HearthConfig } from '@hearth/config';

/** The server's ed25519 host key: generated on first start, then kept (0600, folder 0700) so clients' known_hosts stay valid. */
export function loadHostKey(config: HearthConfig): string {
  const file = path.join(config.dataDir, 'sftp', 'host_key');
  const kept = writeFileOnce(file, generateHostKey());
  if (!(ssh2.utils.parseKey(kept) instanceof Error)) return kept;
  // A key ssh2 cannot read never served a connection (the daemon could not start), so no client knows it yet.
  fs.rmSync(file, { force: true });
  return writeFileOnce(file, generateHostKey());
}

/**
 * ssh2's generator writes a public key whose first byte is 0 with that byte dropped (31 bytes, about
 * one key in 500), which its own parser then refuses as malformed; draw again until the key reads back.
 */
function generateHostKey(): string {
  for (;;) {
    const key = ssh2.utils.generateKeyPairSync('ed25519').private;
    if (!(ssh2.utils.parseKey(key) instanceof Error)) return key;
  }
}
