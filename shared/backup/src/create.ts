import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { HearthConfig } from '@hearth/config';
import { Directory, LATEST_SCHEMA_VERSION, type App } from '@hearth/directory';
import { appDataDir, databaseSettings, requireApp } from '@hearth/provisioning';
import { appDir } from '@hearth/runtime';
import { dumpMysql, mysqlDatabases } from './databases/mysql.ts';
import { dumpDirectoryDatabase, dumpPostgresql } from './databases/postgresql.ts';
import { stageRedis } from './databases/redis.ts';
import { BackupError } from './errors.ts';
import { hearthVersion, type SnapshotManifest } from './manifest.ts';
import { Restic } from './restic.ts';
import type { BackupSettings } from './settings.ts';
import { eachLimited } from './limited.ts';
import { mirrorTree } from './tree.ts';
import { DATA_DIR_PARTS, withBackupLock, workspace } from './workspace.ts';

/**
 * `hearth backup create`: a consistent copy of everything, staged as one tree and handed to
 * restic. The tree:
 *   hearth/manifest.json           versions, scope, apps
 *   hearth/directory.sqlite|.pgdump the directory store (SQLite online backup / pg_dump)
 *   hearth/mail, hearth/queue       Maildirs and the mail queue (hard links, see tree.ts)
 *   hearth/files/…                  everything else in the data dir: keys, certificates
 *   apps/<id>/app.json              the app's record: manifest, access, credentials, mailboxes
 *   apps/<id>/data                  its /app/data
 *   apps/<id>/mysql/<db>.sql, postgresql.dump, redis/   its databases, by their own tools
 */

export interface CreateResult {
  snapshotId: string;
  manifest: SnapshotManifest;
  repositoryCreated: boolean;
  filesNew: number;
  filesChanged: number;
  bytesAdded: number;
  bytesProcessed: number;
}

export interface Logger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** The app's record and its /app/data (hard links), taken on the main thread. */
async function stageAppFiles(config: HearthConfig, d: Directory, app: App, dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const mailboxes = d.mailboxesOf('app', app.id).map((m) => m.address);
  fs.writeFileSync(path.join(dir, 'app.json'), JSON.stringify({ app, mailboxes }, null, 2), { mode: 0o600 });
  await mirrorTree(appDataDir(config.dataDir, app.id), path.join(dir, 'data'));
}

/** The app's databases, each through its own tool (child processes: they run while the files are staged). */
async function dumpAppDatabases(config: HearthConfig, app: App, dir: string, skipped: string[]): Promise<void> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const db = databaseSettings();
  const mysqlCreds = app.credentials.mysql;
  if (mysqlCreds) {
    if (!db.mysqlAdminUrl) throw new BackupError(`app ${app.id} has a MySQL database but HEARTH_MYSQL_ADMIN_URL is empty`);
    fs.mkdirSync(path.join(dir, 'mysql'), { mode: 0o700 });
    for (const name of await mysqlDatabases(db.mysqlAdminUrl, mysqlCreds)) {
      const file = path.join(dir, 'mysql', `${name}.sql`);
      await dumpMysql(db.mysqlAdminUrl, name, file);
      keepUnchanged(file, path.join(keptDumpsDir(config.dataDir, app.id), `${name}.sql`));
    }
  }
  const pgCreds = app.credentials.postgresql;
  if (pgCreds?.database) {
    if (!db.postgresqlAdminUrl) throw new BackupError(`app ${app.id} has a PostgreSQL database but HEARTH_POSTGRESQL_ADMIN_URL is empty`);
    await dumpPostgresql(db.postgresqlAdminUrl, pgCreds.database, path.join(dir, 'postgresql.dump'));
  }
  if (app.credentials.redis?.port) await stageRedis(config, app.id, app.credentials.redis, path.join(dir, 'redis'));
  // No mongodump here: Debian ships no MongoDB server or tools (see the README). Left out loudly rather than refused, so that everything else is still backed up.
  if (app.credentials.mongodb) skipped.push(`app ${app.id}: its MongoDB database ${app.credentials.mongodb.database ?? ''} (Hearth cannot dump MongoDB: back it up with mongodump yourself)`.replace('  (', ' ('));
}

/** How many apps' databases are dumped at once: the dump tools and their servers share the machine with everything else. */
export const PARALLEL_DUMPS = 2;

/** The app's last MySQL dumps, in the app's own folder: uninstalling the app removes them with it. */
export function keptDumpsDir(dataDir: string, appId: string): string {
  return path.join(appDir(dataDir, appId), 'backup-dumps');
}

/**
 * A dump identical to the previous backup's is swapped for that one's file (same inode and
 * mtime), which restic then skips without reading it again; a changed one is kept for next time.
 */
function keepUnchanged(file: string, kept: string): void {
  if (sameContents(file, kept)) {
    fs.rmSync(file);
    fs.linkSync(kept, file);
    return;
  }
  fs.mkdirSync(path.dirname(kept), { recursive: true, mode: 0o700 });
  fs.rmSync(kept, { force: true });
  fs.linkSync(file, kept);
}

function sameContents(a: string, b: string): boolean {
  let fa: number | null = null;
  let fb: number | null = null;
  try {
    if (fs.statSync(a).size !== fs.statSync(b).size) return false;
    fa = fs.openSync(a, 'r');
    fb = fs.openSync(b, 'r');
    const ba = Buffer.alloc(1 << 20);
    const bb = Buffer.alloc(1 << 20);
    for (;;) {
      const n = fs.readSync(fa, ba);
      const m = fs.readSync(fb, bb);
      if (n !== m || !ba.subarray(0, n).equals(bb.subarray(0, m))) return false;
      if (n === 0) return true;
    }
  } catch {
    return false;
  } finally {
    if (fa !== null) fs.closeSync(fa);
    if (fb !== null) fs.closeSync(fb);
  }
}

async function stagePlatform(config: HearthConfig, stage: string): Promise<void> {
  const hearth = path.join(stage, 'hearth');
  if (config.databaseUrl) await dumpDirectoryDatabase(config.databaseUrl, path.join(hearth, 'directory.pgdump'));
  else {
    const db = new Database(path.join(config.dataDir, 'hearth.db'), { readonly: true, fileMustExist: true });
    try {
      await db.backup(path.join(hearth, 'directory.sqlite'));
    } finally {
      db.close();
    }
  }
  await mirrorTree(path.join(config.dataDir, 'mail'), path.join(hearth, 'mail'), { maildir: true });
  // Queued messages before their delivery logs: a recipient delivered while we copy is then
  // recorded as done, never sent twice (the other order could miss that record).
  const queue = path.join(config.dataDir, 'queue');
  if (fs.existsSync(queue)) {
    await mirrorTree(path.join(queue, 'msg'), path.join(hearth, 'queue', 'msg'));
    await mirrorTree(path.join(queue, 'state'), path.join(hearth, 'queue', 'state'), { copy: true });
  }
  for (const name of fs.readdirSync(config.dataDir)) {
    if (!DATA_DIR_PARTS.has(name)) await mirrorTree(path.join(config.dataDir, name), path.join(hearth, 'files', name), { copy: true });
  }
}

export async function createBackup(opts: { config: HearthConfig; settings: BackupSettings; appId?: string; logger?: Logger }): Promise<CreateResult> {
  const { config, settings, appId } = opts;
  return withBackupLock(config, async () => {
    const w = workspace(config);
    const restic = new Restic(settings, w.cache);
    const directory = await Directory.open(config);
    try {
      const apps = appId ? [requireApp(directory, appId)] : directory.apps();
      fs.rmSync(w.staging, { recursive: true, force: true });
      fs.mkdirSync(path.join(w.staging, 'hearth'), { recursive: true, mode: 0o700 });
      const skipped: string[] = [];
      const stagedApp = (app: App): string => path.join(w.staging, 'apps', app.id);
      // Database dumps (child processes) run while this process links the files.
      const dumps = eachLimited(apps, PARALLEL_DUMPS, (app) => dumpAppDatabases(config, app, stagedApp(app), skipped));
      try {
        if (!appId) await stagePlatform(config, w.staging);
        for (const app of apps) await stageAppFiles(config, directory, app, stagedApp(app));
      } finally {
        await dumps.catch(() => {});
      }
      await dumps;
      const manifest: SnapshotManifest = {
        format: 1,
        hearthVersion: hearthVersion(),
        schemaVersion: LATEST_SCHEMA_VERSION,
        createdAt: new Date().toISOString(),
        scope: appId ? { app: appId } : 'platform',
        store: appId ? null : config.databaseUrl ? 'postgres' : 'sqlite',
        apps: apps.map((a) => a.id),
        skipped: skipped.sort(),
      };
      fs.writeFileSync(path.join(w.staging, 'hearth', 'manifest.json'), JSON.stringify(manifest, null, 2), { mode: 0o600 });
      const tags = ['hearth', appId ? `app=${appId}` : 'platform', `version=${manifest.hearthVersion}`];
      const parts = ['hearth', ...(apps.length ? ['apps'] : [])];
      // Staged files are hard links, whose ctime changes with every link: restic must not take that for a change.
      const backup = (): Promise<string> => restic.run(['backup', '--json', '--ignore-ctime', ...tags.flatMap((t) => ['--tag', t]), ...parts], { cwd: w.staging, action: 'backup' });
      // The repository is opened (its key derived, seconds of scrypt) once per backup: only a missing one costs a second try.
      let repositoryCreated = false;
      let out: string;
      try {
        out = await backup();
      } catch (err) {
        if (!/no restic repository at/.test((err as Error).message)) throw err;
        repositoryCreated = await restic.ensureRepository();
        out = await backup();
      }
      const summary = out
        .split('\n')
        .filter((l) => l.includes('"summary"'))
        .map((l) => JSON.parse(l) as Record<string, number | string>)[0];
      if (!summary) throw new BackupError('backup failed: restic reported no snapshot');
      opts.logger?.info({ snapshot: summary.snapshot_id, scope: tags[1], apps: manifest.apps, skipped, bytesAdded: summary.data_added }, 'backup created');
      for (const s of skipped) opts.logger?.warn({ part: s }, 'left out of the backup');
      return {
        snapshotId: String(summary.snapshot_id),
        manifest,
        repositoryCreated,
        filesNew: Number(summary.files_new),
        filesChanged: Number(summary.files_changed),
        bytesAdded: Number(summary.data_added),
        bytesProcessed: Number(summary.total_bytes_processed),
      };
    } finally {
      await directory.close().catch(() => {});
      fs.rmSync(w.staging, { recursive: true, force: true });
    }
  });
}
