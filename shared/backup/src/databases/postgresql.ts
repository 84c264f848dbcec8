import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type pg from 'pg';
import { BackupError } from '../errors.ts';
import type { SwapStep } from '../swap.ts';
import { runTool, urlParts } from './tool.ts';

/**
 * PostgreSQL databases: pg_dump's custom format (one consistent snapshot), restored with
 * pg_restore into a temporary database that is then renamed into place.
 */

export function pgEnv(url: string, database?: string): Record<string, string> {
  const p = urlParts(url, 5432);
  const env: Record<string, string> = { PGHOST: p.host, PGPORT: p.port, PGUSER: p.user, PGDATABASE: database ?? p.database, PGCONNECT_TIMEOUT: '10' };
  if (p.password) env.PGPASSWORD = p.password;
  return env;
}

async function withAdmin<T>(adminUrl: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const { default: pg } = await import('pg'); // loaded only when an app has the addon
  const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  c.on('error', () => {});
  try {
    await c.connect();
  } catch (err) {
    await c.end().catch(() => {});
    throw new BackupError(`cannot reach the PostgreSQL server: ${(err as Error).message}`);
  }
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/**
 * An app's database, without the `hearth` schema and event trigger the addon installs as the
 * admin (provisioning puts them back after a restore).
 */
export async function dumpPostgresql(adminUrl: string, database: string, file: string): Promise<void> {
  await runTool('pg_dump', ['-Fc', '--no-owner', '--no-acl', '--exclude-schema=hearth', '-f', file], { env: pgEnv(adminUrl, database), what: `dumping PostgreSQL database ${database}` });
}

/** The directory store when it lives in PostgreSQL (HEARTH_DATABASE_URL). */
export async function dumpDirectoryDatabase(url: string, file: string): Promise<void> {
  await runTool('pg_dump', ['-Fc', '--no-owner', '--no-acl', '-f', file], { env: pgEnv(url), what: 'dumping the directory store' });
}

/**
 * Restores the directory store in one transaction (pg_restore --clean --single-transaction),
 * keeping a dump of what was there to put back if a later step of the restore fails.
 */
export async function prepareDirectoryDatabaseRestore(url: string, file: string, workDir: string): Promise<SwapStep> {
  const previous = `${workDir}/directory-before-restore.pgdump`;
  await dumpDirectoryDatabase(url, previous);
  const load = (from: string): Promise<unknown> =>
    runTool('pg_restore', ['--clean', '--if-exists', '--no-owner', '--no-acl', '--single-transaction', '--exit-on-error', '-d', pgEnv(url).PGDATABASE!, from], { env: pgEnv(url), what: 'restoring the directory store' });
  return {
    what: 'the directory store (PostgreSQL)',
    commit: () => load(file).then(() => {}),
    rollback: () => load(previous).then(() => {}),
    cleanup: async () => fs.rmSync(previous, { force: true }),
  };
}

/**
 * Loads an app's dump into a temporary database owned by the app's role (created, without
 * login, when the server has no such role yet), with every object owned by that role.
 * Extensions are created first by the admin, as the addon does.
 */
export async function preparePostgresqlRestore(adminUrl: string, role: string, database: string, file: string, workDir: string): Promise<SwapStep> {
  const suffix = randomBytes(4).toString('hex');
  const aside = `hearth_restore_${suffix}`;
  const old = `hearth_previous_${suffix}`;
  await withAdmin(adminUrl, async (c) => {
    if (!(await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount) await c.query(`CREATE ROLE ${c.escapeIdentifier(role)}`);
    await c.query(`CREATE DATABASE ${c.escapeIdentifier(aside)} OWNER ${c.escapeIdentifier(role)} TEMPLATE template0 ENCODING 'UTF8'`);
  });
  const dropAll = (): Promise<unknown> =>
    withAdmin(adminUrl, async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(aside)} WITH (FORCE)`);
      await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(old)} WITH (FORCE)`);
    });
  try {
    const toc = await runTool('pg_restore', ['-l', file], { what: `reading the PostgreSQL dump of ${database}` });
    const extensions = [...toc.matchAll(/^\d+; \d+ \d+ EXTENSION - (\S+)/gm)].map((m) => m[1]!);
    const list = `${workDir}/${aside}.list`;
    fs.writeFileSync(list, toc.split('\n').filter((l) => !/ (EXTENSION|EVENT TRIGGER) /.test(l)).join('\n'));
    await withAdmin(adminUrl.replace(/\/[^/?]*(\?|$)/, `/${aside}$1`), async (c) => {
      for (const e of extensions) await c.query(`CREATE EXTENSION IF NOT EXISTS ${c.escapeIdentifier(e)} CASCADE`);
    });
    await runTool('pg_restore', ['--no-owner', '--no-acl', `--role=${role}`, '--single-transaction', '--exit-on-error', '-L', list, '-d', aside, file], {
      env: pgEnv(adminUrl, aside),
      what: `restoring PostgreSQL database ${database}`,
    });
  } catch (err) {
    await dropAll().catch(() => {});
    throw err;
  }
  let hadDatabase = false;
  const rename = (c: pg.Client, from: string, to: string): Promise<unknown> => c.query(`ALTER DATABASE ${c.escapeIdentifier(from)} RENAME TO ${c.escapeIdentifier(to)}`);
  const terminate = (c: pg.Client, db: string): Promise<unknown> => c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [db]);
  return {
    what: `PostgreSQL database ${database}`,
    commit: () =>
      withAdmin(adminUrl, async (c) => {
        hadDatabase = !!(await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [database])).rowCount;
        if (hadDatabase) {
          await terminate(c, database);
          await rename(c, database, old);
        }
        await rename(c, aside, database);
      }),
    rollback: () =>
      withAdmin(adminUrl, async (c) => {
        await terminate(c, database);
        await rename(c, database, aside);
        if (hadDatabase) await rename(c, old, database);
      }),
    cleanup: () => dropAll().then(() => {}),
  };
}
