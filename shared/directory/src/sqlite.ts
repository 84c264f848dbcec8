import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '@hearth/config';
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

const POLL_MS = 200;

/** The embedded backend: one SQLite file in WAL mode, shared by every daemon process on the box. */
export class SqliteStore implements DirectoryStore {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  /** Prepared once per SQL text; hot paths (kv, audit) run thousands of times a second. */
  private readonly statements = new Map<string, Database.Statement>();

  private sql(text: string): Database.Statement {
    let st = this.statements.get(text);
    if (!st) {
      st = this.db.prepare(text);
      this.statements.set(text, st);
    }
    return st;
  }

  constructor(readonly file: string) {
    if (file !== ':memory:') {
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: PRIVATE_DIR_MODE });
      // Created owner-only before SQLite opens it: SQLite gives the -wal and -shm files the database file's mode.
      fs.closeSync(fs.openSync(file, 'a', PRIVATE_FILE_MODE));
    }
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
  }

  /** Runs fn in one IMMEDIATE transaction and bumps the change counter when asked. */
  private tx<T>(fn: () => T, bump = true): T {
    const run = this.db.transaction(() => {
      const out = fn();
      if (bump) this.sql("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'change_seq'").run();
      return out;
    });
    try {
      return run.immediate();
    } catch (err) {
      const conflict = conflictMessage(err);
      if (conflict && /constraint/i.test((err as Error).message)) throw new DirectoryError(conflict, 'conflict');
      throw err;
    }
  }

  async migrate(): Promise<void> {
    this.db
      .transaction(() => {
        const hasMeta = this.sql("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").get();
        let current = 0;
        if (hasMeta) {
          const row = this.sql("SELECT value FROM meta WHERE key='schema_version'").get() as Row | undefined;
          current = row ? Number(row.value) : 0;
        }
        if (current > LATEST_SCHEMA_VERSION) {
          throw new DirectoryError(
            `the store was written by a newer Hearth (schema ${current}, this version knows ${LATEST_SCHEMA_VERSION}); refusing to open it`,
            'version',
          );
        }
        for (const m of MIGRATIONS) {
          if (m.version <= current) continue;
          this.db.exec(m.sqlite);
          this.sql("INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(String(m.version));
        }
      })
      .immediate();
  }

  async loadSnapshot(): Promise<Snapshot> {
    return this.db
      .transaction(() => ({
        users: (this.sql('SELECT * FROM users').all() as Row[]).map(userFromRow),
        groups: groupsFromRows(this.sql('SELECT * FROM groups').all() as Row[], this.sql('SELECT * FROM group_members').all() as Row[]),
        apps: (this.sql('SELECT * FROM apps').all() as Row[]).map(appFromRow),
        mailboxes: (this.sql('SELECT * FROM mailboxes').all() as Row[]).map(mailboxFromRow),
      }))
      .deferred();
  }

  async changeSeq(): Promise<number> {
    const row = this.sql("SELECT value FROM meta WHERE key='change_seq'").get() as Row;
    return Number(row.value);
  }

  async installationId(): Promise<string> {
    this.sql("INSERT INTO meta (key, value) VALUES ('installation_id', ?) ON CONFLICT(key) DO NOTHING").run(randomBytes(8).toString('hex'));
    return String((this.sql("SELECT value FROM meta WHERE key='installation_id'").get() as Row).value);
  }

  async watch(onChange: () => void): Promise<() => Promise<void>> {
    // A cheap poll of the change counter: one indexed read every POLL_MS.
    let last = await this.changeSeq();
    const timer = setInterval(() => {
      try {
        const seq = Number((this.sql("SELECT value FROM meta WHERE key='change_seq'").get() as Row).value);
        if (seq !== last) {
          last = seq;
          onChange();
        }
      } catch {
        // the database may be briefly locked by a writer; try again on the next tick
      }
    }, POLL_MS);
    timer.unref();
    return async () => clearInterval(timer);
  }

  /** Takes the next number from a counter; call inside tx(). */
  private takeNumber(counter: NumberCounter): number {
    const next = this.sql('UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = ? RETURNING value').get(counter) as Row;
    return Number(next.value) - 1;
  }

  private insertUser(fields: Omit<User, 'uidNumber'>): User {
    const user: User = { ...fields, uidNumber: this.takeNumber('next_uid_number') };
    const values = userToRow(user).map((v) => (typeof v === 'boolean' ? Number(v) : v));
    this.sql(`INSERT INTO users (${USER_COLUMNS.join(',')}) VALUES (${USER_COLUMNS.map(() => '?').join(',')})`).run(...values);
    return user;
  }

  private insertGroup(group: Omit<Group, 'memberIds' | 'gidNumber'>): Group {
    const gid = this.takeNumber('next_gid_number');
    this.sql('INSERT INTO groups (id, name, gid_number) VALUES (?, ?, ?)').run(group.id, group.name, gid);
    return { id: group.id, name: group.name, gidNumber: gid, memberIds: [] };
  }

  private insertMember(groupId: string, userId: string): void {
    this.sql('INSERT INTO group_members (group_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING').run(groupId, userId);
  }

  async createUser(fields: Omit<User, 'uidNumber'>): Promise<User> {
    return this.tx(() => this.insertUser(fields));
  }

  async importBatch(batch: ImportBatch): Promise<{ users: User[]; groups: Group[] }> {
    return this.tx(() => {
      const users = batch.users.map((u) => this.insertUser(u));
      const groups = batch.groups.map((g) => this.insertGroup(g));
      for (const m of batch.members) this.insertMember(m.groupId, m.userId);
      return { users, groups };
    });
  }

  async updateUser(id: string, patch: Partial<Omit<User, 'id' | 'createdAt' | 'uidNumber'>>): Promise<void> {
    const keys = Object.keys(patch) as (keyof typeof patch)[];
    if (keys.length === 0) return;
    this.tx(() => {
      const sets = keys.map((k) => `${USER_FIELDS[k]} = ?`).join(', ');
      const values = keys.map((k) => {
        const v = patch[k];
        return typeof v === 'boolean' ? (v ? 1 : 0) : v;
      });
      const res = this.sql(`UPDATE users SET ${sets} WHERE id = ?`).run(...values, id);
      if (res.changes === 0) throw new DirectoryError('no such user', 'not_found');
    });
  }

  async deleteUser(id: string): Promise<void> {
    this.tx(() => {
      const res = this.sql('DELETE FROM users WHERE id = ?').run(id);
      if (res.changes === 0) throw new DirectoryError('no such user', 'not_found');
      this.sql("DELETE FROM mailboxes WHERE owner_type = 'user' AND owner_id = ?").run(id);
    });
  }

  async createGroup(group: Omit<Group, 'memberIds' | 'gidNumber'>): Promise<Group> {
    return this.tx(() => this.insertGroup(group));
  }

  async deleteGroup(id: string): Promise<void> {
    this.tx(() => {
      if (this.sql('DELETE FROM groups WHERE id = ?').run(id).changes === 0) throw new DirectoryError('no such group', 'not_found');
    });
  }

  async addMember(groupId: string, userId: string): Promise<void> {
    this.tx(() => this.insertMember(groupId, userId));
  }

  async removeMember(groupId: string, userId: string): Promise<void> {
    this.tx(() => {
      const res = this.sql('DELETE FROM group_members WHERE group_id = ? AND user_id = ?').run(groupId, userId);
      if (res.changes === 0) throw new DirectoryError('user is not a member of that group', 'not_found');
    });
  }

  async putApp(app: App, ownedMailboxes: string[]): Promise<void> {
    this.tx(() => {
      this.sql('DELETE FROM apps WHERE id = ?').run(app.id);
      this.sql('INSERT INTO apps (id, domain, manifest, access, upstream, credentials, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)').run(...appToRow(app));
      this.sql("DELETE FROM mailboxes WHERE owner_type = 'app' AND owner_id = ?").run(app.id);
      const insert = this.sql("INSERT INTO mailboxes (address, owner_type, owner_id) VALUES (?, 'app', ?)");
      for (const address of ownedMailboxes) insert.run(address, app.id);
    });
  }

  async deleteApp(id: string): Promise<void> {
    this.tx(() => {
      if (this.sql('DELETE FROM apps WHERE id = ?').run(id).changes === 0) throw new DirectoryError(`no such app: ${id}`, 'not_found');
      this.sql("DELETE FROM mailboxes WHERE owner_type = 'app' AND owner_id = ?").run(id);
    });
  }

  async addMailbox(mailbox: Mailbox): Promise<void> {
    this.tx(() => {
      this.sql('INSERT INTO mailboxes (address, owner_type, owner_id) VALUES (?, ?, ?)').run(mailbox.address, mailbox.ownerType, mailbox.ownerId);
    });
  }

  async deleteMailbox(address: string): Promise<void> {
    this.tx(() => {
      if (this.sql('DELETE FROM mailboxes WHERE address = ?').run(address).changes === 0) throw new DirectoryError(`no such mailbox: ${address}`, 'not_found');
    });
  }

  async addPasskey(p: Passkey): Promise<void> {
    this.tx(() => {
      this.sql('INSERT INTO passkeys (id, user_id, public_key, counter, transports, name, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
        p.id, p.userId, p.publicKey, p.counter, JSON.stringify(p.transports), p.name, p.createdAt, p.lastUsedAt,
      );
    }, false);
  }

  async passkeysOf(userId: string): Promise<Passkey[]> {
    return (this.sql('SELECT * FROM passkeys WHERE user_id = ? ORDER BY created_at').all(userId) as Row[]).map(passkeyFromRow);
  }

  async findPasskey(id: string): Promise<Passkey | null> {
    const row = this.sql('SELECT * FROM passkeys WHERE id = ?').get(id) as Row | undefined;
    return row ? passkeyFromRow(row) : null;
  }

  async usePasskey(id: string, counter: number, at: string): Promise<boolean> {
    return this.tx(() => this.sql('UPDATE passkeys SET counter = ?, last_used_at = ? WHERE id = ? AND (counter < ? OR (counter = 0 AND ? = 0))').run(counter, at, id, counter, counter).changes === 1, false);
  }

  async deletePasskey(userId: string, id: string): Promise<void> {
    this.tx(() => {
      if (this.sql('DELETE FROM passkeys WHERE id = ? AND user_id = ?').run(id, userId).changes === 0) throw new DirectoryError('no such passkey', 'not_found');
    }, false);
  }

  async deletePasskeysOf(userId: string): Promise<void> {
    this.tx(() => void this.sql('DELETE FROM passkeys WHERE user_id = ?').run(userId), false);
  }

  async listSshKeys(userId: string): Promise<SshKey[]> {
    return (this.sql('SELECT * FROM ssh_keys WHERE user_id = ? ORDER BY created_at, id').all(userId) as Row[]).map(sshKeyFromRow);
  }

  async addSshKey(k: SshKey): Promise<void> {
    this.tx(() => {
      this.sql('INSERT INTO ssh_keys (id, user_id, algorithm, key_data, comment, fingerprint, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
        k.id, k.userId, k.algorithm, k.keyData, k.comment, k.fingerprint, k.createdAt,
      );
    }, false);
  }

  async deleteSshKey(userId: string, id: string): Promise<boolean> {
    return this.tx(() => this.sql('DELETE FROM ssh_keys WHERE user_id = ? AND id = ?').run(userId, id).changes > 0, false);
  }

  async appendAudit(e: AuditEvent): Promise<void> {
    this.db
      .prepare('INSERT INTO audit_log (at, username, protocol, app_id, remote, ok, detail) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(e.at, e.username, e.protocol, e.appId, e.remote, e.ok ? 1 : 0, e.detail);
  }

  async listAudit(q: AuditQuery): Promise<AuditEvent[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    // `at` is an ISO 8601 UTC string, so comparing the text compares the instants
    const filters = [['username = ?', q.username], ['protocol = ?', q.protocol], ['app_id = ?', q.appId], ['at >= ?', q.since], ['at < ?', q.until], ['ok = ?', q.ok === undefined ? undefined : q.ok ? 1 : 0]] as const;
    for (const [condition, value] of filters) {
      if (value === undefined || value === '') continue;
      where.push(condition);
      args.push(value);
    }
    const sql = `SELECT * FROM audit_log ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
    return (this.sql(sql).all(...args, q.limit ?? 100) as Row[]).map(auditFromRow);
  }

  async kvGet(namespace: string, key: string): Promise<string | null> {
    const row = this.sql('SELECT value FROM kv WHERE namespace = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)').get(namespace, key, Date.now()) as Row | undefined;
    return row ? String(row.value) : null;
  }

  async kvSet(namespace: string, key: string, value: string, ttlSeconds: number | null): Promise<void> {
    this.db
      .prepare('INSERT INTO kv (namespace, key, value, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT(namespace, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at')
      .run(namespace, key, value, ttlSeconds === null ? null : Date.now() + ttlSeconds * 1000);
  }

  async kvDelete(namespace: string, key: string): Promise<void> {
    this.sql('DELETE FROM kv WHERE namespace = ? AND key = ?').run(namespace, key);
  }

  async kvIncr(namespace: string, key: string, by: number, ttlSeconds: number): Promise<number> {
    const now = Date.now();
    return this.db
      .transaction(() => {
        const row = this.sql('SELECT value, expires_at FROM kv WHERE namespace = ? AND key = ?').get(namespace, key) as Row | undefined;
        const live = row && (row.expires_at === null || Number(row.expires_at) > now);
        const next = (live ? Number(row.value) : 0) + by;
        const expires = live ? row.expires_at : now + ttlSeconds * 1000;
        this.db
          .prepare('INSERT INTO kv (namespace, key, value, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT(namespace, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at')
          .run(namespace, key, String(next), expires);
        return next;
      })
      .immediate();
  }

  async kvFindWhere(namespace: string, field: string, value: string): Promise<{ key: string; value: string }[]> {
    const rows = this.db
      .prepare("SELECT key, value FROM kv WHERE namespace = ? AND json_extract(value, '$.' || ?) = ? AND (expires_at IS NULL OR expires_at > ?)")
      .all(namespace, field, value, Date.now()) as Row[];
    return rows.map((r) => ({ key: String(r.key), value: String(r.value) }));
  }

  async kvDeleteWhere(namespace: string, field: string, value: string): Promise<void> {
    this.sql("DELETE FROM kv WHERE namespace = ? AND json_extract(value, '$.' || ?) = ?").run(namespace, field, value);
  }

  async purgeExpired(): Promise<number> {
    return this.sql('DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?').run(Date.now()).changes;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
