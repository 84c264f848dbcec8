import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { LATEST_SCHEMA_VERSION, MIGRATIONS, type NumberCounter } from './migrations.ts';
import {
  appFromRow,
  appToRow,
  auditFromRow,
  conflictMessage,
  groupsFromRows,
  mailboxFromRow,
  passkeyFromRow,
  sshKeyFromRow,
  USER_COLUMNS,
  USER_FIELDS,
  userFromRow,
  userToRow,
  type Row,
} from './rows.ts';
import { DirectoryError, type AuditQuery, type DirectoryStore, type ImportBatch } from './store.ts';
import type { App, AuditEvent, Group, Mailbox, Passkey, SshKey, Snapshot, User } from './types.ts';

const CHANNEL = 'hearth_changes';
/** Arbitrary constant for pg_advisory_xact_lock so concurrent starts migrate one at a time. */
const MIGRATION_LOCK = 4_242_001;

/** The server backend, selected by HEARTH_DATABASE_URL; several replicas can share it. */
export class PostgresStore implements DirectoryStore {
  readonly kind = 'postgres' as const;
  private readonly pool: pg.Pool;

  constructor(readonly url: string) {
    this.pool = new pg.Pool({ connectionString: url, max: 8 });
    // An idle client losing its connection must not take the daemon down.
    this.pool.on('error', () => {});
  }

  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>, bump = true): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      if (bump) {
        await c.query("UPDATE meta SET value = (value::bigint + 1)::text WHERE key = 'change_seq'");
        await c.query(`NOTIFY ${CHANNEL}`);
      }
      await c.query('COMMIT');
      return out;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      if ((err as { code?: string }).code === '23505') throw new DirectoryError(conflictMessage(err) ?? 'already exists', 'conflict');
      throw err;
    } finally {
      c.release();
    }
  }

  async migrate(): Promise<void> {
    await this.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      const hasMeta = await c.query("SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'meta'");
      let current = 0;
      if (hasMeta.rowCount) {
        const row = await c.query("SELECT value FROM meta WHERE key = 'schema_version'");
        current = row.rowCount ? Number(row.rows[0].value) : 0;
      }
      if (current > LATEST_SCHEMA_VERSION) {
        throw new DirectoryError(
          `the store was written by a newer Hearth (schema ${current}, this version knows ${LATEST_SCHEMA_VERSION}); refusing to open it`,
          'version',
        );
      }
      for (const m of MIGRATIONS) {
        if (m.version <= current) continue;
        await c.query(m.postgres);
        await c.query("INSERT INTO meta (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [String(m.version)]);
      }
    }, false);
  }

  async loadSnapshot(): Promise<Snapshot> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const [users, groups, members, apps, mailboxes] = [
        await c.query('SELECT * FROM users'),
        await c.query('SELECT * FROM groups'),
        await c.query('SELECT * FROM group_members'),
        await c.query('SELECT * FROM apps'),
        await c.query('SELECT * FROM mailboxes'),
      ];
      await c.query('COMMIT');
      return {
        users: users.rows.map(userFromRow),
        groups: groupsFromRows(groups.rows, members.rows),
        apps: apps.rows.map(appFromRow),
        mailboxes: mailboxes.rows.map(mailboxFromRow),
      };
    } finally {
      c.release();
    }
  }

  async changeSeq(): Promise<number> {
    const r = await this.pool.query("SELECT value FROM meta WHERE key = 'change_seq'");
    return Number(r.rows[0].value);
  }

  async installationId(): Promise<string> {
    await this.pool.query("INSERT INTO meta (key, value) VALUES ('installation_id', $1) ON CONFLICT (key) DO NOTHING", [randomBytes(8).toString('hex')]);
    const r = await this.pool.query("SELECT value FROM meta WHERE key = 'installation_id'");
    return String(r.rows[0].value);
  }

  async watch(onChange: () => void): Promise<() => Promise<void>> {
    // LISTEN on a dedicated connection; if it drops, reconnect and report a change so nothing is missed.
    let client: pg.Client | null = null;
    let closed = false;
    const connect = async (): Promise<void> => {
      const c = new pg.Client({ connectionString: this.url });
      c.on('notification', () => onChange());
      c.on('error', () => {
        if (closed) return;
        client = null;
        setTimeout(() => void connect().then(onChange, () => {}), 500).unref();
      });
      await c.connect();
      await c.query(`LISTEN ${CHANNEL}`);
      client = c;
    };
    await connect();
    return async () => {
      closed = true;
      await client?.end().catch(() => {});
    };
  }

  /** Takes the next number from a counter inside the transaction (the row lock serializes writers). */
  private async takeNumber(c: pg.PoolClient, counter: NumberCounter): Promise<number> {
    const next = await c.query('UPDATE meta SET value = (value::bigint + 1)::text WHERE key = $1 RETURNING value', [counter]);
    return Number(next.rows[0].value) - 1;
  }

  private async insertUser(c: pg.PoolClient, fields: Omit<User, 'uidNumber'>): Promise<User> {
    const user: User = { ...fields, uidNumber: await this.takeNumber(c, 'next_uid_number') };
    await c.query(`INSERT INTO users (${USER_COLUMNS.join(',')}) VALUES (${USER_COLUMNS.map((_, i) => `$${i + 1}`).join(',')})`, userToRow(user));
    return user;
  }

  private async insertGroup(c: pg.PoolClient, group: Omit<Group, 'memberIds' | 'gidNumber'>): Promise<Group> {
    const gid = await this.takeNumber(c, 'next_gid_number');
    await c.query('INSERT INTO groups (id, name, gid_number) VALUES ($1, $2, $3)', [group.id, group.name, gid]);
    return { id: group.id, name: group.name, gidNumber: gid, memberIds: [] };
  }

  private async insertMember(c: pg.PoolClient, groupId: string, userId: string): Promise<void> {
    await c.query('INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [groupId, userId]);
  }

  async createUser(fields: Omit<User, 'uidNumber'>): Promise<User> {
    return this.tx((c) => this.insertUser(c, fields));
  }

  async importBatch(batch: ImportBatch): Promise<{ users: User[]; groups: Group[] }> {
    return this.tx(async (c) => {
      const users: User[] = [];
      for (const u of batch.users) users.push(await this.insertUser(c, u));
      const groups: Group[] = [];
      for (const g of batch.groups) groups.push(await this.insertGroup(c, g));
      for (const m of batch.members) await this.insertMember(c, m.groupId, m.userId);
      return { users, groups };
    });
  }

  async updateUser(id: string, patch: Partial<Omit<User, 'id' | 'createdAt' | 'uidNumber'>>): Promise<void> {
    const keys = Object.keys(patch) as (keyof typeof patch)[];
    if (keys.length === 0) return;
    await this.tx(async (c) => {
      const sets = keys.map((k, i) => `${USER_FIELDS[k]} = $${i + 1}`).join(', ');
      const res = await c.query(`UPDATE users SET ${sets} WHERE id = $${keys.length + 1}`, [...keys.map((k) => patch[k]), id]);
      if (res.rowCount === 0) throw new DirectoryError('no such user', 'not_found');
    });
  }

  async deleteUser(id: string): Promise<void> {
    await this.tx(async (c) => {
      if ((await c.query('DELETE FROM users WHERE id = $1', [id])).rowCount === 0) throw new DirectoryError('no such user', 'not_found');
      await c.query("DELETE FROM mailboxes WHERE owner_type = 'user' AND owner_id = $1", [id]);
    });
  }

  async createGroup(group: Omit<Group, 'memberIds' | 'gidNumber'>): Promise<Group> {
    return this.tx((c) => this.insertGroup(c, group));
  }

  async deleteGroup(id: string): Promise<void> {
    await this.tx(async (c) => {
      if ((await c.query('DELETE FROM groups WHERE id = $1', [id])).rowCount === 0) throw new DirectoryError('no such group', 'not_found');
    });
  }

  async addMember(groupId: string, userId: string): Promise<void> {
    await this.tx((c) => this.insertMember(c, groupId, userId));
  }

  async removeMember(groupId: string, userId: string): Promise<void> {
    await this.tx(async (c) => {
      const res = await c.query('DELETE FROM group_members WHERE group_id = $1 AND user_id = $2', [groupId, userId]);
      if (res.rowCount === 0) throw new DirectoryError('user is not a member of that group', 'not_found');
    });
  }

  async putApp(app: App, ownedMailboxes: string[]): Promise<void> {
    await this.tx(async (c) => {
      await c.query('DELETE FROM apps WHERE id = $1', [app.id]);
      await c.query('INSERT INTO apps (id, domain, manifest, access, upstream, credentials, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)', appToRow(app));
      await c.query("DELETE FROM mailboxes WHERE owner_type = 'app' AND owner_id = $1", [app.id]);
      for (const address of ownedMailboxes) {
        await c.query("INSERT INTO mailboxes (address, owner_type, owner_id) VALUES ($1, 'app', $2)", [address, app.id]);
      }
    });
  }

  async deleteApp(id: string): Promise<void> {
    await this.tx(async (c) => {
      if ((await c.query('DELETE FROM apps WHERE id = $1', [id])).rowCount === 0) throw new DirectoryError(`no such app: ${id}`, 'not_found');
      await c.query("DELETE FROM mailboxes WHERE owner_type = 'app' AND owner_id = $1", [id]);
    });
  }

  async addMailbox(m: Mailbox): Promise<void> {
    await this.tx((c) => c.query('INSERT INTO mailboxes (address, owner_type, owner_id) VALUES ($1, $2, $3)', [m.address, m.ownerType, m.ownerId]));
  }

  async deleteMailbox(address: string): Promise<void> {
    await this.tx(async (c) => {
      if ((await c.query('DELETE FROM mailboxes WHERE address = $1', [address])).rowCount === 0) throw new DirectoryError(`no such mailbox: ${address}`, 'not_found');
    });
  }

  async addPasskey(p: Passkey): Promise<void> {
    await this.tx(
      (c) =>
        c.query('INSERT INTO passkeys (id, user_id, public_key, counter, transports, name, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [
          p.id, p.userId, p.publicKey, p.counter, JSON.stringify(p.transports), p.name, p.createdAt, p.lastUsedAt,
        ]),
      false,
    );
  }

  async passkeysOf(userId: string): Promise<Passkey[]> {
    return (await this.pool.query('SELECT * FROM passkeys WHERE user_id = $1 ORDER BY created_at', [userId])).rows.map(passkeyFromRow);
  }

  async findPasskey(id: string): Promise<Passkey | null> {
    const row = (await this.pool.query('SELECT * FROM passkeys WHERE id = $1', [id])).rows[0] as Row | undefined;
    return row ? passkeyFromRow(row) : null;
  }

  async usePasskey(id: string, counter: number, at: string): Promise<boolean> {
    const res = await this.pool.query('UPDATE passkeys SET counter = $1, last_used_at = $2 WHERE id = $3 AND (counter < $1 OR (counter = 0 AND $1 = 0))', [counter, at, id]);
    return res.rowCount === 1;
  }

  async deletePasskey(userId: string, id: string): Promise<void> {
    if ((await this.pool.query('DELETE FROM passkeys WHERE id = $1 AND user_id = $2', [id, userId])).rowCount === 0) throw new DirectoryError('no such passkey', 'not_found');
  }

  async deletePasskeysOf(userId: string): Promise<void> {
    await this.pool.query('DELETE FROM passkeys WHERE user_id = $1', [userId]);
  }

  async listSshKeys(userId: string): Promise<SshKey[]> {
    return (await this.pool.query('SELECT * FROM ssh_keys WHERE user_id = $1 ORDER BY created_at, id', [userId])).rows.map(sshKeyFromRow);
  }

  async addSshKey(k: SshKey): Promise<void> {
    await this.tx(
      (c) =>
        c.query('INSERT INTO ssh_keys (id, user_id, algorithm, key_data, comment, fingerprint, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
          k.id, k.userId, k.algorithm, k.keyData, k.comment, k.fingerprint, k.createdAt,
        ]),
      false,
    );
  }

  async deleteSshKey(userId: string, id: string): Promise<boolean> {
    return this.tx(async (c) => ((await c.query('DELETE FROM ssh_keys WHERE user_id = $1 AND id = $2', [userId, id])).rowCount ?? 0) > 0, false);
  }

  async appendAudit(e: AuditEvent): Promise<void> {
    await this.pool.query('INSERT INTO audit_log (at, username, protocol, app_id, remote, ok, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
      e.at,
      e.username,
      e.protocol,
      e.appId,
      e.remote,
      e.ok,
      e.detail,
    ]);
  }

  async listAudit(q: AuditQuery): Promise<AuditEvent[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (col: string, v: unknown, op = '='): void => {
      args.push(v);
      where.push(`${col} ${op} $${args.length}`);
    };
    if (q.username) add('username', q.username);
    if (q.protocol) add('protocol', q.protocol);
    if (q.appId) add('app_id', q.appId);
    // `at` is an ISO 8601 UTC string, so comparing the text compares the instants
    if (q.since) add('at', q.since, '>=');
    if (q.until) add('at', q.until, '<');
    if (q.ok !== undefined) add('ok', q.ok);
    args.push(q.limit ?? 100);
    const sql = `SELECT * FROM audit_log ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT $${args.length}`;
    return (await this.pool.query(sql, args)).rows.map((r: Row) => auditFromRow(r));
  }

  async kvGet(namespace: string, key: string): Promise<string | null> {
    const r = await this.pool.query('SELECT value FROM kv WHERE namespace = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3)', [namespace, key, Date.now()]);
    return r.rowCount ? String(r.rows[0].value) : null;
  }

  async kvSet(namespace: string, key: string, value: string, ttlSeconds: number | null): Promise<void> {
    await this.pool.query(
      'INSERT INTO kv (namespace, key, value, expires_at) VALUES ($1, $2, $3, $4) ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at',
      [namespace, key, value, ttlSeconds === null ? null : Date.now() + ttlSeconds * 1000],
    );
  }

  async kvDelete(namespace: string, key: string): Promise<void> {
    await this.pool.query('DELETE FROM kv WHERE namespace = $1 AND key = $2', [namespace, key]);
  }

  async kvIncr(namespace: string, key: string, by: number, ttlSeconds: number): Promise<number> {
    const now = Date.now();
    const r = await this.pool.query(
      `INSERT INTO kv (namespace, key, value, expires_at) VALUES ($1, $2, $3::text, $4)
       ON CONFLICT (namespace, key) DO UPDATE SET
         value = CASE WHEN kv.expires_at IS NOT NULL AND kv.expires_at <= $5 THEN $3::text ELSE (kv.value::bigint + $3::bigint)::text END,
         expires_at = CASE WHEN kv.expires_at IS NOT NULL AND kv.expires_at <= $5 THEN $4 ELSE kv.expires_at END
       RETURNING value`,
      [namespace, key, String(by), now + ttlSeconds * 1000, now],
    );
    return Number(r.rows[0].value);
  }

  async kvFindWhere(namespace: string, field: string, value: string): Promise<{ key: string; value: string }[]> {
    const r = await this.pool.query(
      'SELECT key, value FROM kv WHERE namespace = $1 AND (value::jsonb ->> $2) = $3 AND (expires_at IS NULL OR expires_at > $4)',
      [namespace, field, value, Date.now()],
    );
    return r.rows.map((row: Row) => ({ key: String(row.key), value: String(row.value) }));
  }

  async kvDeleteWhere(namespace: string, field: string, value: string): Promise<void> {
    await this.pool.query('DELETE FROM kv WHERE namespace = $1 AND (value::jsonb ->> $2) = $3', [namespace, field, value]);
  }

  async purgeExpired(): Promise<number> {
    return (await this.pool.query('DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= $1', [Date.now()])).rowCount ?? 0;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
