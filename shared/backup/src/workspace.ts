import fs from 'node:fs';
import path from 'node:path';
import { processAlive, type HearthConfig } from '@hearth/config';
import { BackupError } from './errors.ts';

/**
 * Where backups work: `$HEARTH_DATA_DIR/backup/` (0700) holds the staging tree, restores in
 * progress and restic's cache. It lives on the data filesystem so that staging can hard-link
 * and a restore can swap folders in by rename.
 */
export function workspace(config: HearthConfig): { root: string; staging: string; cache: string; lock: string } {
  const root = path.join(config.dataDir, 'backup');
  return { root, staging: path.join(root, 'staging'), cache: path.join(root, 'cache'), lock: path.join(root, 'lock') };
}

/** Top-level entries of the data dir that a platform snapshot takes apart (or never: backup/, and run/ with the pid files of live processes). */
export const DATA_DIR_PARTS = new Set(['hearth.db', 'hearth.db-wal', 'hearth.db-shm', 'hearth.db-journal', 'mail', 'queue', 'apps', 'backup', 'run']);

/** One backup or restore at a time per data dir; a lock left by a dead process is taken over. */
export async function withBackupLock<T>(config: HearthConfig, fn: () => Promise<T>): Promise<T> {
  const w = workspace(config);
  fs.mkdirSync(w.root, { recursive: true, mode: 0o700 });
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(w.lock, String(process.pid), { flag: 'wx', mode: 0o600 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(fs.readFileSync(w.lock, 'utf8').trim());
      if (attempt === 0 && !(holder > 0 && processAlive(holder))) {
        fs.rmSync(w.lock, { force: true });
        continue;
      }
      throw new BackupError(`another backup or restore is running (process ${holder})`);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(w.lock, { force: true });
  }
}
