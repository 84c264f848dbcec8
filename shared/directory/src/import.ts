import type { Directory } from './directory.ts';
import { importFormat, ImportFileError, parseImportFile, type ImportRecord } from './import-files.ts';
import { DirectoryError, type ImportBatch } from './store.ts';
import type { Role } from './types.ts';
import { argon2idHashSchema, check, passwordSchema } from './validate.ts';

/**
 * Bulk import (`hearth user import`, `hearth group import`, the console's import page): many rows
 * checked by the same rules as `user add` / `group add` and against the rest of the file, then
 * stored in one transaction. Bad rows are refused with their line number; with `atomic` one bad
 * row means nothing is imported; `dryRun` checks and reports without writing.
 */

export { importFormat, ImportFileError, parseImportFile, type ImportRecord };

export interface ImportOptions {
  dryRun: boolean;
  atomic: boolean;
}

export interface ImportReport extends ImportOptions {
  /** every row, by line */
  rows: ImportRow[];
  accepted: number;
  refused: number;
  /** whether anything was written */
  imported: boolean;
}

export interface ImportRow {
  line: number;
  name: string;
  result: 'created' | 'would be created' | 'not imported' | 'refused';
  reason: string | null;
}

/** The columns (CSV header names or LDIF attributes, lowercase) each field is read from, first match wins. */
const USER_COLUMNS = {
  username: ['username', 'uid'],
  email: ['email', 'mail'],
  displayName: ['displayname', 'display-name', 'display_name', 'cn'],
  fallbackEmail: ['fallbackemail', 'fallback-email', 'fallback_email'],
  role: ['role'],
  password: ['password', 'userpassword'],
} as const;
const GROUP_COLUMNS = { name: ['name', 'cn'], members: ['members', 'member', 'memberuid'] } as const;
/** LDIF bookkeeping attributes that are read and ignored. */
const LDIF_IGNORED = ['dn', 'objectclass', 'changetype', 'sn', 'givenname', 'uidnumber', 'gidnumber', 'homedirectory', 'loginshell'];

function checkColumns(records: ImportRecord[], columns: Record<string, readonly string[]>, format: 'csv' | 'ldif'): void {
  const known = new Set([...Object.values(columns).flat(), ...(format === 'ldif' ? LDIF_IGNORED : [])]);
  for (const r of records) {
    const unknown = [...r.fields.keys()].find((k) => !known.has(k));
    if (unknown) throw new ImportFileError(`line ${r.line}: unknown ${format === 'csv' ? 'column' : 'attribute'} "${unknown}" (known: ${Object.values(columns).flat().join(', ')})`);
  }
}

const first = (r: ImportRecord, names: readonly string[]): string | undefined => names.map((n) => r.fields.get(n)?.[0]).find((v) => v !== undefined && v !== '');
const all = (r: ImportRecord, names: readonly string[]): string[] => names.flatMap((n) => r.fields.get(n) ?? []);

/** "created", "would be created" or "not imported" for the accepted rows, once the outcome is known. */
function acceptedResult(dryRun: boolean, imported: boolean): ImportRow['result'] {
  return dryRun ? 'would be created' : imported ? 'created' : 'not imported';
}

function readRecords(text: string, format: 'csv' | 'ldif', columns: Record<string, readonly string[]>): ImportRecord[] {
  const records = parseImportFile(text, format);
  checkColumns(records, columns, format);
  return records;
}

function parseImportRole(v: string | undefined): Role | undefined {
  if (v === undefined) return undefined;
  if (v !== 'admin' && v !== 'user') throw new DirectoryError('role must be admin or user');
  return v;
}

type PasswordSource = { plain: string } | { hash: string } | null;

/** A password column holds a password, an argon2id hash (taken as is) or nothing (no login until `hearth user passwd`). */
function passwordSource(value: string | undefined): PasswordSource {
  if (value === undefined) return null;
  const v = value.replace(/^\{ARGON2\}/i, '');
  if (v.startsWith('$argon2')) return { hash: check(argon2idHashSchema, v) };
  return { plain: check(passwordSchema, v) };
}

/** An empty hash never verifies (argon2 rejects it), so the user cannot log in until a password is set. */
const NO_PASSWORD_HASH = '';

/** Checks and (unless a dry run) imports users from a CSV or LDIF text. Throws ImportFileError when the file itself cannot be read. */
export async function importUsers(d: Directory, text: string, format: 'csv' | 'ldif', opts: ImportOptions): Promise<ImportReport> {
  const records = readRecords(text, format, USER_COLUMNS);
  const rows: ImportRow[] = [];
  const accepted: { row: ImportRow; user: Omit<ImportBatch['users'][number], 'passwordHash'>; password: PasswordSource }[] = [];
  const seen = new Map<string, number>();
  for (const r of records) {
    const name = first(r, USER_COLUMNS.username) ?? '';
    try {
      if (r.error) throw new ImportFileError(r.error);
      const user = d.checkNewUser({
        username: name,
        email: first(r, USER_COLUMNS.email) ?? '',
        displayName: first(r, USER_COLUMNS.displayName),
        fallbackEmail: first(r, USER_COLUMNS.fallbackEmail),
        role: parseImportRole(first(r, USER_COLUMNS.role)),
      });
      for (const key of [`u:${user.username}`, `e:${user.email}`]) {
        const earlier = seen.get(key);
        if (earlier !== undefined) throw new DirectoryError(`${key.startsWith('u:') ? 'username' : 'email'} already used on line ${earlier}`, 'conflict');
      }
      const password = passwordSource(first(r, USER_COLUMNS.password));
      seen.set(`u:${user.username}`, r.line).set(`e:${user.email}`, r.line);
      const row: ImportRow = { line: r.line, name: user.username, result: 'refused', reason: password ? null : 'no password: set one with hearth user passwd' };
      accepted.push({ row, user, password });
      rows.push(row);
    } catch (err) {
      rows.push({ line: r.line, name, result: 'refused', reason: (err as Error).message.split('\n')[0]! });
    }
  }
  const refused = rows.length - accepted.length;
  const imported = !opts.dryRun && accepted.length > 0 && !(opts.atomic && refused > 0);
  if (imported) {
    // Hashes run on libuv's thread pool, a few at a time, like one `user add` each but in one process.
    const users = await Promise.all(
      accepted.map(async ({ user, password }) => ({
        ...user,
        passwordHash: password === null ? NO_PASSWORD_HASH : 'hash' in password ? password.hash : await d.hasher.hash(password.plain),
      })),
    );
    await d.importBatch({ users, groups: [], members: [] });
  }
  for (const a of accepted) a.row.result = acceptedResult(opts.dryRun, imported);
  return finish(rows, opts, imported);
}

/** A member is a username or email, or an LDAP DN whose first value is one (uid=alice,ou=users,…). */
function memberLogin(value: string): string {
  const dn = /^[a-z]+=([^,]+),/i.exec(value.trim());
  return (dn ? dn[1]! : value).trim();
}

/** Checks and (unless a dry run) imports groups with their members from a CSV or LDIF text. */
export async function importGroups(d: Directory, text: string, format: 'csv' | 'ldif', opts: ImportOptions): Promise<ImportReport> {
  const records = readRecords(text, format, GROUP_COLUMNS);
  const rows: ImportRow[] = [];
  const batch: ImportBatch = { users: [], groups: [], members: [] };
  const accepted: ImportRow[] = [];
  const seen = new Map<string, number>();
  for (const r of records) {
    const name = first(r, GROUP_COLUMNS.name) ?? '';
    try {
      if (r.error) throw new ImportFileError(r.error);
      const group = d.checkNewGroup(name);
      const earlier = seen.get(group.name.toLowerCase());
      if (earlier !== undefined) throw new DirectoryError(`group already on line ${earlier}`, 'conflict');
      // CSV holds members in one cell (space, comma or semicolon separated); LDIF repeats the attribute.
      const logins = all(r, GROUP_COLUMNS.members).flatMap((v) => (format === 'csv' ? v.split(/[\s,;]+/) : [memberLogin(v)])).filter(Boolean);
      const members = logins.map((login) => {
        const u = d.findUser(login);
        if (!u) throw new DirectoryError(`no such user: ${login}`, 'not_found');
        return { groupId: group.id, userId: u.id };
      });
      seen.set(group.name.toLowerCase(), r.line);
      batch.groups.push(group);
      batch.members.push(...members);
      const row: ImportRow = { line: r.line, name: group.name, result: 'refused', reason: members.length ? `${members.length} member(s)` : null };
      accepted.push(row);
      rows.push(row);
    } catch (err) {
      rows.push({ line: r.line, name, result: 'refused', reason: (err as Error).message.split('\n')[0]! });
    }
  }
  const imported = !opts.dryRun && accepted.length > 0 && !(opts.atomic && rows.length > accepted.length);
  if (imported) await d.importBatch(batch);
  for (const row of accepted) row.result = acceptedResult(opts.dryRun, imported);
  return finish(rows, opts, imported);
}

function finish(rows: ImportRow[], opts: ImportOptions, imported: boolean): ImportReport {
  rows.sort((a, b) => a.line - b.line);
  const refused = rows.filter((r) => r.result === 'refused').length;
  return { ...opts, rows, accepted: rows.length - refused, refused, imported };
}
