import type { App, AuditEvent, Group, Mailbox, Passkey, SshKey, Protocol, Snapshot, User } from './types.ts';

export interface ImportBatch {
  users: Omit<User, 'uidNumber'>[];
  groups: Omit<Group, 'memberIds' | 'gidNumber'>[];
  members: { groupId: string; userId: string }[];
}

export interface AuditQuery {
  username?: string;
  protocol?: Protocol;
  appId?: string;
  /** only events at or after this instant (ISO 8601, UTC, as `at` is stored) */
  since?: string;
  /** only events before this instant */
  until?: string;
  /** only successes (true) or only failures (false) */
  ok?: boolean;
  limit?: number;
}

/**
 * An audit filter's time as the log stores it (ISO 8601 UTC), from what an admin typed: a date
 * ("2026-12-08", midnight UTC) or a date and time with or without a zone (without one: UTC). Null
 * when it is not a time.
 */
export function auditInstant(text: string): string | null {
  const t = text.trim();
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i.test(t)) return null;
  const zoned = /[T ]/.test(t) && !/(Z|[+-]\d{2}:?\d{2})$/i.test(t) ? `${t.replace(' ', 'T')}Z` : t.replace(' ', 'T');
  const ms = Date.parse(zoned);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

/**
 * One storage interface, several backends (SQLite, PostgreSQL). Every method is a
 * single transaction: it either applies completely or leaves the store unchanged.
 * Writes bump a change counter and notify watchers so every daemon reloads its view.
 */
export interface DirectoryStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Runs pending migrations; refuses a store written by a newer Hearth. */
  migrate(): Promise<void>;
  loadSnapshot(): Promise<Snapshot>;
  /** Monotonic counter bumped by every write. */
  changeSeq(): Promise<number>;
  /**
   * This installation's id: random, stored on first use and never changed (kept by backups), so
   * names Hearth makes on servers other installations may share (app databases) never collide.
   */
  installationId(): Promise<string>;
  /** Called (at least) once for every committed change made by any process. */
  watch(onChange: () => void): Promise<() => Promise<void>>;

  /** Stores a new user with the next uid number (see migrations v3) and returns it. */
  createUser(user: Omit<User, 'uidNumber'>): Promise<User>;
  updateUser(id: string, patch: Partial<Omit<User, 'id' | 'createdAt' | 'uidNumber'>>): Promise<void>;
  deleteUser(id: string): Promise<void>;
  /** Stores many new users and groups (numbers assigned in order) and memberships in one transaction: all or nothing. */
  importBatch(batch: ImportBatch): Promise<{ users: User[]; groups: Group[] }>;

  /** Stores a new group with the next gid number (see migrations v4) and returns it. */
  createGroup(group: Omit<Group, 'memberIds' | 'gidNumber'>): Promise<Group>;
  deleteGroup(id: string): Promise<void>;
  addMember(groupId: string, userId: string): Promise<void>;
  removeMember(groupId: string, userId: string): Promise<void>;

  /** Insert or replace an app together with the mailboxes it owns. */
  putApp(app: App, ownedMailboxes: string[]): Promise<void>;
  /** Removes the app and every mailbox it owns. */
  deleteApp(id: string): Promise<void>;

  addMailbox(mailbox: Mailbox): Promise<void>;
  deleteMailbox(address: string): Promise<void>;

  /** Passkeys are read from the store when used, not kept in the snapshot; their writes notify no one. */
  addPasskey(passkey: Passkey): Promise<void>;
  passkeysOf(userId: string): Promise<Passkey[]>;
  findPasskey(id: string): Promise<Passkey | null>;
  /**
   * Records a sign-in with the passkey. Atomic: false (and nothing written) when the stored
   * counter is not below `counter`, unless both are 0 (authenticators without a counter).
   */
  usePasskey(id: string, counter: number, at: string): Promise<boolean>;
  deletePasskey(userId: string, id: string): Promise<void>;
  deletePasskeysOf(userId: string): Promise<void>;

  /** SSH keys (SFTP) likewise: read when a client presents one, writes notify no one. */
  listSshKeys(userId: string): Promise<SshKey[]>;
  addSshKey(key: SshKey): Promise<void>;
  /** false when the user has no key with that id */
  deleteSshKey(userId: string, id: string): Promise<boolean>;

  appendAudit(event: AuditEvent): Promise<void>;
  listAudit(query: AuditQuery): Promise<AuditEvent[]>;

  /** Small expiring key/value space for sessions, tokens, throttles. */
  kvGet(namespace: string, key: string): Promise<string | null>;
  kvSet(namespace: string, key: string, value: string, ttlSeconds: number | null): Promise<void>;
  kvDelete(namespace: string, key: string): Promise<void>;
  /** Atomically add `by` to an integer counter, creating it with the ttl when absent; returns the new value. */
  kvIncr(namespace: string, key: string, by: number, ttlSeconds: number): Promise<number>;
  /** Entries whose value is a JSON object with `field` equal to `value`. */
  kvFindWhere(namespace: string, field: string, value: string): Promise<{ key: string; value: string }[]>;
  kvDeleteWhere(namespace: string, field: string, value: string): Promise<void>;

  /** Deletes expired key/value entries; returns how many. */
  purgeExpired(): Promise<number>;

  close(): Promise<void>;
}

/** Raised for a user-facing failure (duplicate name, unknown user...); the message is one clear line. */
export class DirectoryError extends Error {
  constructor(
    message: string,
    readonly code: 'conflict' | 'not_found' | 'invalid' | 'version' = 'invalid',
  ) {
    super(message);
  }
}
