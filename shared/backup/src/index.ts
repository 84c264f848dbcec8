export { BackupError } from './errors.ts';
export { parseBackupSettings, type BackupSettings } from './settings.ts';
export { createBackup, type CreateResult } from './create.ts';
export { restoreBackup, type RestoreResult } from './restore.ts';
export { listBackups, pruneBackups, verifyBackups, type BackupEntry } from './maintenance.ts';
export { scheduleBackups, msUntil } from './schedule.ts';
export { hearthVersion, type SnapshotManifest } from './manifest.ts';
