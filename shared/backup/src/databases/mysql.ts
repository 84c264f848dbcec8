import { randomBytes } from 'node:crypto';
import { Transform } from 'node:stream';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { BackupError } from '../errors.ts';
import type { SwapStep } from '../swap.ts';
import { createPrograms, dropPrograms, ident, readPrograms, type Program } from './mysql-programs.ts';
import { runTool, urlParts } from './tool.ts';

/**
 * An app's MySQL databases: dumped with mysqldump --single-transaction (a consistent view
 * while the app keeps writing) with its views, triggers, routines and events, restored into a
 * temporary database and then moved in with one RENAME TABLE statement, which MySQL applies
 * atomically; the other objects follow (mysql-programs.ts).
 */

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
  await runTool('mysqldump', [...args, '--single-transaction', '--routines', '--triggers', '--events', '--no-tablespaces', '--hex-blob', '--skip-dump-date', database], { env, stdoutFile: file, what: `dumping MySQL database ${database}` });
}

/**
 * The statements of a dump that act on a database by name, seen at a statement's start (after a
 * version comment's opening): USE, CREATE/DROP DATABASE or SCHEMA, and ALTER DATABASE or SCHEMA
 * with a name (the name captured; without one it alters the current database).
 */
const DATABASE_STATEMENT = /^(?:\/\*!\d*\s*)?(?:USE\b|(?:CREATE|DROP)\s+(?:DATABASE|SCHEMA)\b|ALTER\s+(?:DATABASE|SCHEMA)(?:\s*$|\s+(?!(?:DEFAULT|CHARACTER|CHARSET|COLLATE|COMMENT)\b)(`(?:[^`]|``)*`|[^\s`]+)))/i;

/**
 * Checks a mysqldump file statement by statement while it is loaded into the temporary database
 * `into`, so that nothing in it reaches the database it was dumped from (or any other). mysqldump
 * writes one such statement itself: `ALTER DATABASE <the dumped one>` around a routine made
 * under another database collation, which is pointed at the temporary database; any other
 * statement naming or switching a database is refused. Lines pass through as bytes (latin1 maps
 * each byte to one character).
 */
export class DumpConfiner {
  private delimiter = ';';
  private atStatementStart = true;
  private lineNumber = 0;
  private readonly dumped: string;
  private readonly into: string;

  constructor(database: string, into: string) {
    this.dumped = Buffer.from(ident(database)).toString('latin1');
    this.into = Buffer.from(ident(into)).toString('latin1');
  }

  /** One line (without its newline), as it may go to the server; throws on a refused statement. */
  line(text: string): string {
    this.lineNumber++;
    const trimmed = text.trim();
    if (this.atStatementStart) {
      if (trimmed === '' || trimmed.startsWith('--')) return text;
      const delimiter = /^DELIMITER\s+(\S+)/i.exec(trimmed);
      if (delimiter) {
        this.delimiter = delimiter[1]!;
        return text;
      }
      const m = DATABASE_STATEMENT.exec(trimmed);
      if (m) {
        if (m[1] !== this.dumped) {
          throw new BackupError(`the dump holds a statement that acts on another database (line ${this.lineNumber}: ${Buffer.from(trimmed.slice(0, 80), 'latin1').toString()}); nothing was loaded into the database`);
        }
        text = text.replace(m[1], this.into);
      }
    }
    this.atStatementStart = trimmed.endsWith(this.delimiter);
    return text;
  }
}

function confineDump(database: string, into: string): Transform {
  const confiner = new DumpConfiner(database, into);
  let rest = '';
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      const lines = (rest + chunk.toString('latin1')).split('\n');
      rest = lines.pop()!;
      try {
        done(null, Buffer.from(lines.map((l) => confiner.line(l) + '\n').join(''), 'latin1'));
      } catch (err) {
        done(err as Error);
      }
    },
    flush(done) {
      try {
        done(null, Buffer.from(confiner.line(rest), 'latin1'));
      } catch (err) {
        done(err as Error);
      }
    },
  });
}

async function tables(c: Connection, database: string): Promise<string[]> {
  // Views are not moved: they are made again with the other programs (mysql-programs.ts).
  const [rows] = await c.query<RowDataPacket[]>("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ? AND table_type <> 'VIEW'", [database]);
  return rows.map((r) => String(r.t));
}

async function moveTables(c: Connection, moves: [from: string, to: string, tables: string[]][]): Promise<void> {
  const pairs = moves.flatMap(([from, to, ts]) => ts.map((t) => `${ident(from)}.${ident(t)} TO ${ident(to)}.${ident(t)}`));
  if (pairs.length) await c.query(`RENAME TABLE ${pairs.join(', ')}`);
}

/**
 * Loads the dump into a temporary database now. Two swap steps: `tables` moves its tables into
 * `database` with one RENAME TABLE (atomic); `programs`, run after the app's record is back, makes
 * its views, triggers, routines and events there again, run as `appUser` (the app's MySQL account).
 */
export async function prepareMysqlRestore(adminUrl: string, database: string, file: string, appUser: string | null): Promise<{ tables: SwapStep; programs: SwapStep }> {
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
    await runTool('mysql', [...args, aside], { env, stdinFile: file, stdinFilter: confineDump(database, aside), what: `restoring MySQL database ${database}` });
  } catch (err) {
    await dropAll().catch(() => {});
    throw err;
  }
  const definer = appUser ? `${ident(appUser)}@\`%\`` : null;
  // What the swap did so far, so that a failure half-way (or a later step's) is undone exactly.
  const done = { current: [] as Program[], restored: [] as Program[], droppedCurrent: false, moved: false };
  let moved: { current: string[]; restored: string[] } = { current: [], restored: [] };
  const undoTables = async (c: Connection): Promise<void> => {
    if (done.moved) {
      await moveTables(c, [
        [database, aside, moved.restored],
        [old, database, moved.current],
      ]);
      done.moved = false;
    }
    // the database's own objects, with their own definers, as they were
    if (done.droppedCurrent) await createPrograms(c, database, done.current, null);
    done.droppedCurrent = false;
  };
  const tablesStep: SwapStep = {
    what: `MySQL database ${database}`,
    commit: () =>
      withAdmin(adminUrl, async (c) => {
        try {
          await c.query(`CREATE DATABASE IF NOT EXISTS ${ident(database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
          await c.query(`CREATE DATABASE ${ident(old)}`);
          done.current = await readPrograms(c, database);
          // Names the server qualified with the temporary database (MariaDB does so in views whose definer has no rights there) mean the restored one.
          done.restored = (await readPrograms(c, aside)).map((p) => ({ ...p, create: p.create.split(`${ident(aside)}.`).join('') }));
          // Tables with triggers cannot change database: every program goes before the move.
          await dropPrograms(c, aside, done.restored);
          await dropPrograms(c, database, done.current);
          done.droppedCurrent = true;
          moved = { current: await tables(c, database), restored: await tables(c, aside) };
          await moveTables(c, [
            [database, old, moved.current],
            [aside, database, moved.restored],
          ]);
          done.moved = true;
        } catch (err) {
          await undoTables(c).catch(() => {});
          throw err;
        }
      }),
    rollback: () => withAdmin(adminUrl, undoTables),
    cleanup: () => dropAll().then(() => {}),
  };
  // After the app's record: provisioning has then made its MySQL account, the definer every object needs to exist (a view on a view checks it).
  const programsStep: SwapStep = {
    what: `views, triggers, routines and events of MySQL database ${database}`,
    commit: () =>
      withAdmin(adminUrl, async (c) => {
        try {
          await createPrograms(c, database, done.restored, definer);
        } catch (err) {
          await dropPrograms(c, database, done.restored).catch(() => {});
          throw err;
        }
      }),
    rollback: () => withAdmin(adminUrl, (c) => dropPrograms(c, database, done.restored)),
    cleanup: async () => {},
  };
  return { tables: tablesStep, programs: programsStep };
}
