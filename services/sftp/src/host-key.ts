import path from 'node:path';
import ssh2 from 'ssh2';
import { writeFileOnce, type HearthConfig } from '@hearth/config';

/** The server's ed25519 host key: generated on first start, then kept (0600, folder 0700) so clients' known_hosts stay valid. */
export function loadHostKey(config: HearthConfig): string {
  const file = path.join(config.dataDir, 'sftp', 'host_key');
  return writeFileOnce(file, ssh2.utils.generateKeyPairSync('ed25519').private);
}
