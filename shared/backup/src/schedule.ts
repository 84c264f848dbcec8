import type { HearthConfig } from '@hearth/config';
import { createBackup, type Logger } from './create.ts';
import { pruneBackups } from './maintenance.ts';
import type { BackupSettings } from './settings.ts';

/** Milliseconds from `now` to the next hh:mm UTC. */
export function msUntil(now: Date, at: { hour: number; minute: number }): number {
  const next = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), at.hour, at.minute));
  if (next.getTime() <= now.getTime()) next.setUTCDate(next.getUTCDate() + 1);
  return next.getTime() - now.getTime();
}

/**
 * The daily backup `npm start` runs: a platform snapshot at HEARTH_BACKUP_SCHEDULE (UTC),
 * then the retention settings applied. Off until a repository is configured. A failed run is
 * logged and tried again the next day.
 */
export function scheduleBackups(opts: {
  config: HearthConfig;
  settings: BackupSettings;
  logger: Logger & { error(obj: object, msg: string): void };
  /** the wall clock the schedule is read against (a test starts it just before the hour) */
  now?: () => Date;
}): { close: () => void; describe: string } {
  const { config, settings, logger } = opts;
  const now = opts.now ?? ((): Date => new Date());
  if (!settings.repository || !settings.schedule) {
    return { close: () => {}, describe: settings.repository ? 'backups: not scheduled (HEARTH_BACKUP_SCHEDULE=off)' : 'backups: off (set HEARTH_BACKUP_REPOSITORY to schedule them)' };
  }
  const at = settings.schedule;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  const arm = (): void => {
    if (closed) return;
    timer = setTimeout(() => void run(), msUntil(now(), at));
    timer.unref();
  };
  const run = async (): Promise<void> => {
    try {
      await createBackup({ config, settings, logger });
      const pruned = await pruneBackups(config, settings);
      logger.info(pruned, 'old backups pruned');
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'scheduled backup failed');
    }
    arm();
  };
  arm();
  const hhmm = `${String(at.hour).padStart(2, '0')}:${String(at.minute).padStart(2, '0')}`;
  return {
    close: () => {
      closed = true;
      if (timer) clearTimeout(timer);
    },
    describe: `backups: daily at ${hhmm} UTC to ${settings.repository}`,
  };
}
