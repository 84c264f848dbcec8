import { randomBytes } from 'node:crypto';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { BackupError } from '../errors.ts';
import type { SwapStep } from '../swap.ts';
import { runTool, urlParts } from './tool.ts';

/**
 * An app's MySQL databases: dumped with mysqldump --single-transaction (a consistent view
 * while the app keeps writing), restored into a temporary database and then moved in with
 * one RENAME TABLE statement, which MySQL applies atomically.
 */

function ident(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}

function clientArgs(adminUrl: string): { args: string[]; env: Record<string, string> } {
  const p = urlParts(adminUrl, 3306);
  return { args: ['-h', p.host, '-P', p.port, '-u', p.user, '--default-character-set=utf8mb4'], env: p.password ? { MYSQL_PWD: p.password } : {} };
}

async function withAdmin<T>(adminUrl: string, fn: (c: Connection) => Promise<T>): Promise<T> {
  let c: Connection;
  try {
    const { default: mysql } = await import('mysql2/promise'); // loaded only when an app has the addon
    c = await mysql.createConnection({ uri: adminUrl, connectTimeout: 5000, multipleStatements: false });
  } catch (err) {
    throw new BackupError(`cannot reach the MySQL server (HEARTH_MYSQL_ADMIN_URL): ${(err as Error).message}`);
  }
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => c.destroy());
  }
}

/** The app's databases: its one database, or every `<prefix>…` one with multipleDatabases. */
export async function mysqlDatabases(adminUrl: string, creds: Record<string, string>): Promise<string[]> {
  if (creds.database) return [creds.database];
  if (!creds.prefix) return [];
  return withAdmin(adminUrl, async (c) => {
    const [rows] = await c.query<RowDataPacket[]>('SHOW DATABASES LIKE ?', [`${creds.prefix!.replace(/[\\_%]/g, (x) => '\\' + x)}%`]);
    return rows.map((r) => String(Object.values(r)[0]));
  });
}

export async function dumpMysql(adminUrl: string, database: string, file: string): Promise<void> {
  const { args, env } = clientArgs(adminUrl);
  await runTool('mysqldump', [...args, '--single-transaction', '--routines', '--triggers', '--no-tablespaces', '--hex-blob', database], { env, stdoutFile: file, what: `dumping MySQL database ${database}` });
}

async function tables(c: Connection, database: string): Promise<string[]> {
  const [rows] = await c.query<RowDataPacket[]>('SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ?', [database]);
  return rows.map((r) => String(r.t));
}

async function moveTables(c: Connection, moves: [from: string, to: string, tables: string[]][]): Promise<void> {
  const pairs = moves.flatMap(([from, to, ts]) => ts.map((t) => `${ident(from)}.${ident(t)} TO ${ident(to)}.${ident(t)}`));
  if (pairs.length) await c.query(`RENAME TABLE ${pairs.join(', ')}`);
}

/** Loads the dump into a temporary database now; the swap moves its tables into `database`. */
export async function prepareMysqlRestore(adminUrl: string, database: string, file: string): Promise<SwapStep> {
  const suffix = randomBytes(4).toString('hex');
  const aside = `hearth_restore_${suffix}`;
  const old = `hearth_previous_${suffix}`;
  const { args, env } = clientArgs(adminUrl);
  await withAdmin(adminUrl, (c) => c.query(`CREATE DATABASE ${ident(aside)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`));
  const dropAll = (): Promise<unknown> =>
    withAdmin(adminUrl, async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ${ident(aside)}`);
      await c.query(`DROP DATABASE IF EXISTS ${ident(old)}`);
    });
  try {
    await runTool('mysql', [...args, aside], { env, stdinFile: file, what: `restoring MySQL database ${database}` });
  } catch (err) {
    await dropAll().catch(() => {});
    throw err;
  }
  let moved: { current: string[]; restored: string[] } = { current: [], restored: [] };
  return {
    what: `MySQL database ${database}`,
    commit: () =>
      withAdmin(adminUrl, async (c) => {
        await c.query(`CREATE DATABASE IF NOT EXISTS ${ident(database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
        await c.query(`CREATE DATABASE ${ident(old)}`);
        moved = { current: await tables(c, database), restored: await tables(c, aside) };
        await moveTables(c, [
          [database, old, moved.current],
          [aside, database, moved.restored],
        ]);
      }),
    rollback: () =>
      withAdmin(adminUrl, (c) =>
        moveTables(c, [
          [database, aside, moved.restored],
          [old, database, moved.current],
        ]),
      ),
    cleanup: () => dropAll().then(() => {}),
  };
}
