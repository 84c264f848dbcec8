import { z } from 'zod';
import { parseEnv } from '@hearth/config';
import { loadConnectionLimits, type ConnectionLimits } from '@hearth/lineserver';

/** The SFTP daemon's own settings (its port is HEARTH_SFTP_PORT, with the others in @hearth/config). */
export interface SftpSettings {
  /** bytes an app's data folder may hold through SFTP uploads; 0: no limit but the disk */
  quotaBytes: number;
  /** open files and directories per session */
  maxHandles: number;
  /** HEARTH_SFTP_MAX_CONNECTIONS, _PER_ADDRESS, _IDLE_TIMEOUT, _MAX_LIFETIME (shared/lineserver) */
  connections: ConnectionLimits;
}

export const SFTP_CONNECTION_DEFAULTS: ConnectionLimits = { maxConnections: 200, maxPerAddress: 20, idleTimeoutMs: 15 * 60_000, maxLifetimeMs: 0 };

const envSchema = z.object({
  HEARTH_SFTP_QUOTA_MB: z.coerce.number().int().min(0).default(10240),
  HEARTH_SFTP_MAX_HANDLES: z.coerce.number().int().min(4).max(4096).default(256),
});

export function loadSftpSettings(env: NodeJS.ProcessEnv = process.env): SftpSettings {
  const e = parseEnv(envSchema, env);
  return { quotaBytes: e.HEARTH_SFTP_QUOTA_MB * 1024 * 1024, maxHandles: e.HEARTH_SFTP_MAX_HANDLES, connections: loadConnectionLimits('SFTP', SFTP_CONNECTION_DEFAULTS, env) };
}
