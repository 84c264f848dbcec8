import fs from 'node:fs';
import { z } from 'zod';
import { blank, ConfigError, parseEnv } from '@hearth/config';

/**
 * Backup settings, read from HEARTH_BACKUP_* once per process. Without a repository
 * nothing is scheduled and `hearth backup …` says what to set.
 */
export interface BackupSettings {
  /** a restic repository: a local path, sftp:…, rest:…, s3:… */
  repository: string | undefined;
  passwordFile: string | undefined;
  /** daily time in UTC, "HH:MM"; null: no schedule */
  schedule: { hour: number; minute: number } | null;
  keep: { daily: number; weekly: number; monthly: number };
  resticBin: string;
}

const keep = (fallback: number) => z.coerce.number().int().min(0).max(1000).default(fallback);

const envSchema = z.object({
  HEARTH_BACKUP_REPOSITORY: z.string().min(1).optional().or(blank),
  HEARTH_BACKUP_PASSWORD_FILE: z.string().min(1).optional().or(blank),
  HEARTH_BACKUP_SCHEDULE: z
    .string()
    .regex(/^(off|([01][0-9]|2[0-3]):[0-5][0-9])$/, 'must be a daily time HH:MM (UTC) or "off"')
    .default('03:00'),
  HEARTH_BACKUP_KEEP_DAILY: keep(7),
  HEARTH_BACKUP_KEEP_WEEKLY: keep(4),
  HEARTH_BACKUP_KEEP_MONTHLY: keep(6),
  HEARTH_RESTIC_BIN: z.string().min(1).default('restic'),
});

export function parseBackupSettings(env: NodeJS.ProcessEnv = process.env): BackupSettings {
  const e = parseEnv(envSchema, env);
  const [hour, minute] = e.HEARTH_BACKUP_SCHEDULE === 'off' ? [] : e.HEARTH_BACKUP_SCHEDULE.split(':').map(Number);
  return {
    repository: e.HEARTH_BACKUP_REPOSITORY,
    passwordFile: e.HEARTH_BACKUP_PASSWORD_FILE,
    schedule: hour === undefined ? null : { hour, minute: minute! },
    keep: { daily: e.HEARTH_BACKUP_KEEP_DAILY, weekly: e.HEARTH_BACKUP_KEEP_WEEKLY, monthly: e.HEARTH_BACKUP_KEEP_MONTHLY },
    resticBin: e.HEARTH_RESTIC_BIN,
  };
}

/** The repository and a readable, private password file, or a one-line error naming the setting. */
export function requireRepository(s: BackupSettings): { repository: string; passwordFile: string } {
  if (!s.repository) throw new ConfigError('no backup repository: set HEARTH_BACKUP_REPOSITORY (a path or a restic URL) and HEARTH_BACKUP_PASSWORD_FILE');
  if (!s.passwordFile) throw new ConfigError('HEARTH_BACKUP_PASSWORD_FILE is not set: a file holding the repository password');
  let st: fs.Stats;
  try {
    st = fs.statSync(s.passwordFile);
  } catch {
    throw new ConfigError(`invalid setting HEARTH_BACKUP_PASSWORD_FILE: ${s.passwordFile} does not exist`);
  }
  if (!st.isFile()) throw new ConfigError(`invalid setting HEARTH_BACKUP_PASSWORD_FILE: ${s.passwordFile} is not a file`);
  if (st.mode & 0o077) throw new ConfigError(`invalid setting HEARTH_BACKUP_PASSWORD_FILE: ${s.passwordFile} is readable by others; chmod 600 it`);
  if (st.size === 0) throw new ConfigError(`invalid setting HEARTH_BACKUP_PASSWORD_FILE: ${s.passwordFile} is empty`);
  return { repository: s.repository, passwordFile: s.passwordFile };
}
