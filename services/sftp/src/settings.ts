import { z } from 'zod';
import { parseEnv } from '@hearth/config';

/** The SFTP daemon's own settings (its port is HEARTH_SFTP_PORT, with the others in @hearth/config). */
export interface SftpSettings {
  /** bytes an app's data folder may hold through SFTP uploads; 0: no limit but the disk */
  quotaBytes: number;
  /** open files and directories per session */
  maxHandles: number;
  idleTimeoutMs: number;
}

const envSchema = z.object({
  HEARTH_SFTP_QUOTA_MB: z.coerce.number().int().min(0).default(10240),
  HEARTH_SFTP_MAX_HANDLES: z.coerce.number().int().min(4).max(4096).default(256),
  HEARTH_SFTP_IDLE_TIMEOUT_SECONDS: z.coerce.number().int().min(10).default(900),
});

export function loadSftpSettings(env: NodeJS.ProcessEnv = process.env): SftpSettings {
  const e = parseEnv(envSchema, env);
  return { quotaBytes: e.HEARTH_SFTP_QUOTA_MB * 1024 * 1024, maxHandles: e.HEARTH_SFTP_MAX_HANDLES, idleTimeoutMs: e.HEARTH_SFTP_IDLE_TIMEOUT_SECONDS * 1000 };
}
