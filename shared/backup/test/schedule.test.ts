import assert from 'node:assert/strict';
import { it } from 'node:test';
import { loadConfig } from '@hearth/config';
import { waitFor } from '@hearth/testkit';
import { msUntil, parseBackupSettings, scheduleBackups } from '../src/index.ts';
import { backupStack } from './helpers.ts';

const logger = { info() {}, warn() {}, error() {} };

it('the daily run is due at the next HH:MM UTC, today or tomorrow', () => {
  const now = new Date('2026-03-01T02:59:30Z');
  assert.equal(msUntil(now, { hour: 3, minute: 0 }), 30_000);
  assert.equal(msUntil(new Date('2026-03-01T03:00:00Z'), { hour: 3, minute: 0 }), 24 * 3600_000);
  assert.equal(msUntil(new Date('2026-12-31T23:30:00Z'), { hour: 0, minute: 15 }), 45 * 60_000);
});

it('is off until a repository is configured, and can be turned off', () => {
  const config = loadConfig({});
  assert.match(scheduleBackups({ config, settings: parseBackupSettings({}), logger }).describe, /backups: off \(set HEARTH_BACKUP_REPOSITORY/);
  const off = parseBackupSettings({ HEARTH_BACKUP_REPOSITORY: '/srv/backup', HEARTH_BACKUP_SCHEDULE: 'off' });
  assert.match(scheduleBackups({ config, settings: off, logger }).describe, /not scheduled/);
  const on = scheduleBackups({ config, settings: parseBackupSettings({ HEARTH_BACKUP_REPOSITORY: '/srv/backup', HEARTH_BACKUP_SCHEDULE: '04:30' }), logger });
  assert.equal(on.describe, 'backups: daily at 04:30 UTC to /srv/backup');
  on.close();
  assert.deepEqual(parseBackupSettings({ HEARTH_BACKUP_KEEP_DAILY: '3' }).keep, { daily: 3, weekly: 4, monthly: 6 });
  assert.throws(() => parseBackupSettings({ HEARTH_BACKUP_KEEP_WEEKLY: '-1' }), /HEARTH_BACKUP_KEEP_WEEKLY/);
});

it('at the scheduled minute npm start makes a platform snapshot with restic, prunes, and arms the next day', { timeout: 300_000 }, async () => {
  const s = await backupStack({ HEARTH_BACKUP_SCHEDULE: '03:00', HEARTH_BACKUP_KEEP_DAILY: '1', HEARTH_BACKUP_KEEP_WEEKLY: '0', HEARTH_BACKUP_KEEP_MONTHLY: '0' });
  try {
    await s.ok(['user', 'add', 'alice', '--email', 'alice@example.test', '--password-stdin'], 'correct horse battery\n');
    // two earlier snapshots on the same day: retention keeps one per day, the newest
    await s.ok(['backup', 'create']);
    await s.ok(['backup', 'create']);
    const config = loadConfig(s.env);
    const settings = parseBackupSettings(s.env);
    const lines: { level: string; obj: object; msg: string }[] = [];
    const log = (level: string) => (obj: object, msg: string) => void lines.push({ level, obj, msg });
    // the clock reads 02:59:58 UTC: the run is due in two seconds
    let offset = Date.UTC(2026, 2, 1, 2, 59, 58) - Date.now();
    const schedule = scheduleBackups({ config, settings, logger: { info: log('info'), warn: log('warn'), error: log('error') }, now: () => new Date(Date.now() + offset) });
    try {
      await waitFor(() => lines.some((l) => l.msg === 'old backups pruned' || l.level === 'error'), 240_000, 200);
      assert.deepEqual(lines.filter((l) => l.level === 'error'), []);
      const snapshots = JSON.parse(await s.ok(['backup', 'list', '--json'])) as { id: string }[];
      assert.equal(snapshots.length, 1, 'the scheduled snapshot, the two earlier ones of the day pruned');
      const fresh = await s.restic(['snapshots', '--json', '--tag', 'hearth']);
      assert.equal(fresh.code, 0, fresh.out);
      assert.equal((JSON.parse(fresh.out) as unknown[]).length, 1, 'restic itself sees one snapshot');
      // the clock moves on: nothing runs again until the next 03:00
      offset += 10 * 60_000;
      await new Promise((r) => setTimeout(r, 3000));
      assert.equal(lines.filter((l) => l.msg === 'old backups pruned').length, 1);
    } finally {
      schedule.close();
    }
  } finally {
    await s.cleanup();
  }
});
