import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { runningProcesses, type HearthConfig } from '@hearth/config';
import { Directory, type App } from '@hearth/directory';
import { appDataDir, databaseSettings, reinstallApp } from '@hearth/provisioning';
import { prepareMysqlRestore } from './databases/mysql.ts';
import { prepareDirectoryDatabaseRestore, preparePostgresqlRestore } from './databases/postgresql.ts';
import { prepareRedisRestore } from './databases/redis.ts';
import { stopAppContainers } from './containers.ts';
import { BackupError } from './errors.ts';
import { readSnapshotManifest, type SnapshotManifest } from './manifest.ts';
import { Restic } from './restic.ts';
import type { BackupSettings } from './settings.ts';
import { eachLimited } from './limited.ts';
import { applySwaps, pathSwap, type SwapStep } from './swap.ts';
import { withBackupLock, workspace } from './workspace.ts';
import { PARALLEL_DUMPS, type Logger } from './create.ts';

/**
 * `hearth backup restore`: the snapshot is restored into a folder beside the data and every
 * database is loaded into a temporary one; only when all of that worked is each piece swapped
 * in (see swap.ts). The whole platform, or one app, leaving every other app alone.
 */

export interface RestoreRequest {
  config: HearthConfig;
  settings: BackupSettings;
  /** a snapshot id or "latest" (the newest Hearth snapshot) */
  snapshot: string;
  appId?: string;
  /** only extract the snapshot's files there, applying nothing */
  to?: string;
  logger?: Logger;
}

export interface RestoreResult {
  snapshotId: string;
  manifest: SnapshotManifest;
  restored: string[];
}

interface StagedApp {
  app: App;
  mailboxes: string[];
}

function readStagedApp(dir: string, appId: string): StagedApp {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'app.json'), 'utf8')) as StagedApp;
  } catch {
    throw new BackupError(`the snapshot's record of app ${appId} is missing or unreadable`);
  }
}

interface PreparedSteps {
  steps: SwapStep[];
  /** after the app records: MySQL objects whose definer provisioning creates */
  late: SwapStep[];
}

/** The app's MySQL databases, each loaded into a temporary one now. */
async function prepareAppMysql(dir: string, staged: StagedApp): Promise<PreparedSteps> {
  const { app } = staged;
  const prepared: PreparedSteps = { steps: [], late: [] };
  const mysqlDir = path.join(dir, 'mysql');
  if (!fs.existsSync(mysqlDir)) return prepared;
  const db = databaseSettings();
  try {
    if (!db.mysqlAdminUrl) throw new BackupError(`app ${app.id} has a MySQL database but HEARTH_MYSQL_ADMIN_URL is empty`);
    for (const f of fs.readdirSync(mysqlDir).filter((n) => n.endsWith('.sql')).sort()) {
      const m = await prepareMysqlRestore(db.mysqlAdminUrl, f.slice(0, -4), path.join(mysqlDir, f), app.credentials.mysql?.username ?? null);
      prepared.steps.push(m.tables);
      prepared.late.push(m.programs);
    }
    return prepared;
  } catch (err) {
    await cleanupAll(prepared.steps);
    throw err;
  }
}

/** The app's data folder, PostgreSQL (loaded into a temporary database now) and Redis, aside. */
async function prepareAppRest(config: HearthConfig, dir: string, staged: StagedApp, work: string): Promise<SwapStep[]> {
  const { app } = staged;
  const steps: SwapStep[] = [];
  const db = databaseSettings();
  try {
    if (fs.existsSync(path.join(dir, 'data'))) steps.push(pathSwap(`data folder of app ${app.id}`, appDataDir(config.dataDir, app.id), path.join(dir, 'data')));
    const pgDump = path.join(dir, 'postgresql.dump');
    const pg = app.credentials.postgresql;
    if (fs.existsSync(pgDump) && pg?.database && pg.username) {
      if (!db.postgresqlAdminUrl) throw new BackupError(`app ${app.id} has a PostgreSQL database but HEARTH_POSTGRESQL_ADMIN_URL is empty`);
      steps.push(await preparePostgresqlRestore(db.postgresqlAdminUrl, pg.username, pg.database, pgDump, work));
    }
    if (fs.existsSync(path.join(dir, 'redis'))) steps.push(prepareRedisRestore(config, app.id, path.join(dir, 'redis'), work));
    return steps;
  } catch (err) {
    await cleanupAll(steps);
    throw err;
  }
}

async function cleanupAll(steps: SwapStep[]): Promise<void> {
  for (const s of steps) await s.cleanup().catch(() => {});
}

/** The app's record and addon state (users, passwords, the redis instance) as the snapshot has them. */
function appRecordStep(config: HearthConfig, staged: StagedApp): SwapStep {
  let previous: StagedApp | null = null;
  return {
    what: `the directory record of app ${staged.app.id}`,
    async commit() {
      const d = await Directory.open(config);
      try {
        const current = d.app(staged.app.id);
        previous = current ? { app: current, mailboxes: d.mailboxesOf('app', current.id).map((m) => m.address) } : null;
        await reinstallApp(config, d, staged.app, staged.mailboxes);
      } finally {
        await d.close();
      }
    },
    async rollback() {
      const d = await Directory.open(config);
      try {
        if (previous) await reinstallApp(config, d, previous.app, previous.mailboxes);
        else await d.deleteApp(staged.app.id);
      } finally {
        await d.close();
      }
    },
    async cleanup() {},
  };
}

/** The directory store file, with its WAL and shared-memory files moved aside together. */
function sqliteSwap(config: HearthConfig, restored: string): SwapStep {
  const db = path.join(config.dataDir, 'hearth.db');
  const parts = [db, `${db}-wal`, `${db}-shm`];
  const moved: string[] = [];
  return {
    what: 'the directory store (SQLite)',
    async commit() {
      for (const p of parts) {
        if (!fs.existsSync(p)) continue;
        fs.renameSync(p, `${p}.before-restore`);
        moved.push(p);
      }
      fs.renameSync(restored, db);
    },
    async rollback() {
      fs.renameSync(db, restored);
      for (const p of parts) fs.rmSync(p, { force: true });
      for (const p of moved) fs.renameSync(`${p}.before-restore`, p);
    },
    async cleanup() {
      for (const p of parts) fs.rmSync(`${p}.before-restore`, { force: true });
      fs.rmSync(restored, { force: true });
    },
  };
}

async function preparePlatform(config: HearthConfig, manifest: SnapshotManifest, work: string): Promise<SwapStep[]> {
  const hearth = path.join(work, 'hearth');
  const steps: SwapStep[] = [];
  const want = config.databaseUrl ? 'postgres' : 'sqlite';
  if (manifest.store !== want) {
    throw new BackupError(`the snapshot's directory store is ${manifest.store === 'postgres' ? 'PostgreSQL' : 'SQLite'} but this Hearth uses ${want === 'postgres' ? 'PostgreSQL (HEARTH_DATABASE_URL)' : 'SQLite'}`);
  }
  if (config.databaseUrl) steps.push(await prepareDirectoryDatabaseRestore(config.databaseUrl, path.join(hearth, 'directory.pgdump'), work));
  else steps.push(sqliteSwap(config, path.join(hearth, 'directory.sqlite')));
  for (const part of ['mail', 'queue']) {
    if (fs.existsSync(path.join(hearth, part))) steps.push(pathSwap(part, path.join(config.dataDir, part), path.join(hearth, part)));
  }
  const files = path.join(hearth, 'files');
  if (fs.existsSync(files)) for (const name of fs.readdirSync(files)) steps.push(pathSwap(name, path.join(config.dataDir, name), path.join(files, name)));
  return steps;
}

/**
 * The daemons hold the directory store, the Maildirs and the queue open: swapping those under
 * them would lose what they write next. One app's restore touches only that app and may run.
 */
function refuseWhileRunning(config: HearthConfig): void {
  const live = runningProcesses(config.dataDir);
  if (!live.length) return;
  const who = live.map((p) => `${p.name === 'supervisor' ? 'npm start' : p.name} (process ${p.pid})`).join(', ');
  throw new BackupError(`the platform cannot be restored while Hearth runs on ${config.dataDir}: stop ${who} first (one app can be restored while it runs: --app <id>)`);
}

/**
 * `restic restore` of the named snapshot ("latest": the newest Hearth one) into `target`, with
 * restic's include patterns; the snapshot's short id, as restic reports what it restores.
 */
async function restoreFiles(restic: Restic, snapshot: string, target: string, includes: string[]): Promise<string> {
  if (snapshot !== 'latest' && !/^[0-9a-f]{4,64}$/i.test(snapshot)) throw new BackupError(`no such snapshot: ${snapshot} (see hearth backup list)`);
  const which = snapshot === 'latest' ? ['latest', '--tag', 'hearth'] : [snapshot.toLowerCase()];
  let out: string;
  try {
    out = await restic.run(['restore', ...which, '--target', target, ...includes.flatMap((p) => ['--include', p])], { action: 'restore' });
  } catch (err) {
    const message = (err as Error).message;
    if (/no such snapshot/.test(message)) throw new BackupError(snapshot === 'latest' ? 'the repository holds no Hearth snapshot yet' : `no such snapshot: ${snapshot} (see hearth backup list)`);
    if (/ambiguous|multiple IDs/i.test(message)) throw new BackupError(`snapshot id ${snapshot} is ambiguous; give more of it`);
    throw err;
  }
  const id = /restoring <Snapshot ([0-9a-f]+) /.exec(out)?.[1];
  if (!id) throw new BackupError('restore failed: restic did not say which snapshot it restored');
  return id;
}

export async function restoreBackup(req: RestoreRequest): Promise<RestoreResult> {
  const { config } = req;
  return withBackupLock(config, async () => {
    const w = workspace(config);
    const restic = new Restic(req.settings, w.cache);
    if (req.to) {
      const to = path.resolve(req.to);
      const snapshotId = await restoreFiles(restic, req.snapshot, to, req.appId ? ['/hearth/manifest.json', `/apps/${req.appId}`] : []);
      const manifest = readSnapshotManifest(path.join(to, 'hearth', 'manifest.json'));
      if (req.appId && !manifest.apps.includes(req.appId)) throw new BackupError(`snapshot ${snapshotId} holds no app ${req.appId}`);
      return { snapshotId, manifest, restored: [`files into ${to}`] };
    }
    const work = path.join(w.root, `restore-${randomBytes(4).toString('hex')}`);
    fs.mkdirSync(work, { recursive: true, mode: 0o700 });
    const steps: SwapStep[] = [];
    try {
      // The small parts first, in one call: the manifest (a newer snapshot is refused before anything big is
      // fetched), the apps' records and their MySQL dumps, which load while restic fetches the rest.
      const apps = req.appId ? `/apps/${req.appId}` : '/apps/*';
      const snapshotId = await restoreFiles(restic, req.snapshot, work, ['/hearth/manifest.json', `${apps}/app.json`, `${apps}/mysql`]);
      const manifest = readSnapshotManifest(path.join(work, 'hearth', 'manifest.json'));
      const appId = req.appId ?? (manifest.scope === 'platform' ? undefined : manifest.scope.app);
      if (appId && !manifest.apps.includes(appId)) throw new BackupError(`snapshot ${snapshotId} holds no app ${appId}`);
      if (!appId) refuseWhileRunning(config);
      const ids = appId ? [appId] : manifest.apps;
      const staged = new Map(ids.map((id) => [id, readStagedApp(path.join(work, 'apps', id), id)]));
      const mysql = new Map<string, PreparedSteps>();
      const loading = eachLimited(ids, PARALLEL_DUMPS, async (id) => {
        mysql.set(id, await prepareAppMysql(path.join(work, 'apps', id), staged.get(id)!));
      });
      const rest = [...(appId ? [] : ['/hearth']), ...ids.flatMap((id) => ['data', 'redis', 'postgresql.dump'].map((part) => `/apps/${id}/${part}`))];
      // Both finish before anything else happens (a failed load must not leave restic writing into a folder being removed).
      const [loaded, fetched] = await Promise.allSettled([loading, restoreFiles(restic, snapshotId, work, rest)]);
      const late: SwapStep[] = [];
      for (const m of mysql.values()) {
        steps.push(...m.steps);
        late.push(...m.late);
      }
      if (loaded.status === 'rejected') throw loaded.reason;
      if (fetched.status === 'rejected') throw fetched.reason;
      if (!appId) steps.push(...(await preparePlatform(config, manifest, work)));
      const records: SwapStep[] = [];
      for (const [id, app] of staged) {
        steps.push(...(await prepareAppRest(config, path.join(work, 'apps', id), app, work)));
        records.push(appRecordStep(config, app));
      }
      // Records after the data: provisioning then finds the swapped-in databases and folders.
      steps.push(...records, ...late);
      const restored = steps.map((s) => s.what);
      const containers = await stopAppContainers(config, [...staged.values()].map((a) => a.app), req.logger);
      try {
        await applySwaps(steps);
      } finally {
        await containers.start();
      }
      req.logger?.info({ snapshot: snapshotId, app: appId ?? null, restored }, 'backup restored');
      return { snapshotId, manifest, restored };
    } catch (err) {
      await cleanupAll(steps);
      throw err;
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
}
