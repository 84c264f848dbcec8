import assert from 'node:assert/strict';
import { it } from 'node:test';
import { loadConfig } from '@hearth/config';
import { msUntil, parseBackupSettings, scheduleBackups } from '../src/index.ts';

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
