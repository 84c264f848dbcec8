import type { Connection, RowDataPacket } from 'mysql2/promise';

/**
 * The objects of a MySQL database that are not tables: views, triggers, stored procedures and
 * functions, events. RENAME TABLE cannot carry them into another database (a view cannot change
 * schema, a table with triggers cannot move, routines and events are not tables), so a restore
 * reads their definitions, drops them, moves the tables and creates them again where the
 * tables now are.
 */

export type ProgramKind = 'VIEW' | 'TRIGGER' | 'PROCEDURE' | 'FUNCTION' | 'EVENT';

export interface Program {
  kind: ProgramKind;
  name: string;
  /** the CREATE statement as the server shows it (unqualified: read with the database current) */
  create: string;
  /** the sql_mode and time zone it was created under (triggers, routines, events) */
  sqlMode: string | null;
  timeZone: string | null;
}

export function ident(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}

/** The column of SHOW CREATE <kind> that holds the statement. */
const CREATE_COLUMN: Record<ProgramKind, string> = {
  VIEW: 'Create View',
  TRIGGER: 'SQL Original Statement',
  PROCEDURE: 'Create Procedure',
  FUNCTION: 'Create Function',
  EVENT: 'Create Event',
};

async function names(c: Connection, database: string): Promise<[ProgramKind, string][]> {
  const q = async (sql: string): Promise<string[]> => (await c.query<RowDataPacket[]>(sql, [database]))[0].map((r) => String(r.n));
  const out: [ProgramKind, string][] = [];
  for (const n of await q('SELECT table_name AS n FROM information_schema.views WHERE table_schema = ?')) out.push(['VIEW', n]);
  for (const n of await q('SELECT trigger_name AS n FROM information_schema.triggers WHERE trigger_schema = ?')) out.push(['TRIGGER', n]);
  for (const r of (await c.query<RowDataPacket[]>('SELECT routine_type AS t, routine_name AS n FROM information_schema.routines WHERE routine_schema = ?', [database]))[0]) {
    out.push([String(r.t) === 'FUNCTION' ? 'FUNCTION' : 'PROCEDURE', String(r.n)]);
  }
  for (const n of await q('SELECT event_name AS n FROM information_schema.events WHERE event_schema = ?')) out.push(['EVENT', n]);
  return out;
}

/** Every view, trigger, routine and event of `database`, with the statement that makes it there again. */
export async function readPrograms(c: Connection, database: string): Promise<Program[]> {
  // With the database current, SHOW CREATE VIEW leaves its own tables unqualified.
  await c.query(`USE ${ident(database)}`);
  const out: Program[] = [];
  for (const [kind, name] of await names(c, database)) {
    const [rows] = await c.query<RowDataPacket[]>(`SHOW CREATE ${kind} ${ident(name)}`);
    const row = rows[0];
    if (!row || row[CREATE_COLUMN[kind]] == null) continue;
    out.push({ kind, name, create: String(row[CREATE_COLUMN[kind]]), sqlMode: row.sql_mode == null ? null : String(row.sql_mode), timeZone: row.time_zone == null ? null : String(row.time_zone) });
  }
  return out;
}

export async function dropPrograms(c: Connection, database: string, programs: Program[]): Promise<void> {
  for (const p of programs) await c.query(`DROP ${p.kind} IF EXISTS ${ident(database)}.${ident(p.name)}`);
}

/**
 * An app's objects run as the app's own MySQL user whoever made them: a snapshot never brings
 * back an object that runs with an administrator's rights, nor one whose definer does not
 * exist on this server.
 */
export function withDefiner(create: string, definer: string): string {
  return create.replace(/^(CREATE\s+(?:OR\s+REPLACE\s+)?(?:ALGORITHM=\w+\s+)?)DEFINER=(?:`(?:[^`]|``)*`|'[^']*'|\S+)@(?:`(?:[^`]|``)*`|'[^']*'|\S+)/i, `$1DEFINER=${definer}`);
}

/**
 * Creates the programs in `database`. Views may use other views, so a view that fails is
 * tried again after the others until no more succeed.
 */
export async function createPrograms(c: Connection, database: string, programs: Program[], definer: string | null): Promise<void> {
  await c.query(`USE ${ident(database)}`);
  const [[session]] = await c.query<RowDataPacket[]>('SELECT @@SESSION.sql_mode AS m, @@SESSION.time_zone AS z');
  const make = async (p: Program): Promise<void> => {
    await c.query('SET SESSION sql_mode = ?, SESSION time_zone = ?', [p.sqlMode ?? session!.m, p.timeZone ?? session!.z]);
    await c.query(definer ? withDefiner(p.create, definer) : p.create);
  };
  try {
    let views = programs.filter((p) => p.kind === 'VIEW');
    while (views.length) {
      const failed: { p: Program; err: unknown }[] = [];
      for (const p of views) await make(p).catch((err: unknown) => failed.push({ p, err }));
      if (failed.length === views.length) throw failed[0]!.err;
      views = failed.map((f) => f.p);
    }
    for (const p of programs) if (p.kind !== 'VIEW') await make(p);
  } finally {
    await c.query('SET SESSION sql_mode = ?, SESSION time_zone = ?', [session!.m, session!.z]);
  }
}
