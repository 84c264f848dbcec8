/**
 * Versioned schema, one entry per version, applied in order at start.
 * The same logical schema in both dialects; `${serial}` and friends keep them side by side.
 */
export interface Migration {
  version: number;
  description: string;
  sqlite: string;
  postgres: string;
}

const v1 = (d: { serial: string; bool: string; json: string }) => `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  email TEXT NOT NULL UNIQUE,
  fallback_email TEXT,
  display_name TEXT NOT NULL DEFAULT '',
  role TEXT NOT NULL,
  active ${d.bool} NOT NULL,
  password_hash TEXT NOT NULL,
  totp_secret TEXT,
  created_at TEXT NOT NULL
);
CREATE TABLE groups (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, gid_number INTEGER NOT NULL UNIQUE);
CREATE TABLE group_members (
  group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  PRIMARY KEY (group_id, user_id)
);
CREATE TABLE apps (
  id TEXT PRIMARY KEY,
  domain TEXT NOT NULL UNIQUE,
  manifest ${d.json} NOT NULL,
  access ${d.json},
  upstream TEXT,
  credentials ${d.json} NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE mailboxes (address TEXT PRIMARY KEY, owner_type TEXT NOT NULL, owner_id TEXT NOT NULL);
CREATE TABLE audit_log (
  id ${d.serial} PRIMARY KEY,
  at TEXT NOT NULL,
  username TEXT,
  protocol TEXT NOT NULL,
  app_id TEXT,
  remote TEXT,
  ok ${d.bool} NOT NULL,
  detail TEXT
);
INSERT INTO meta (key, value) VALUES ('change_seq', '0');
`;

const v2 = `
CREATE TABLE kv (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, expires_at BIGINT, PRIMARY KEY (namespace, key));
CREATE INDEX kv_expires ON kv (expires_at);
CREATE INDEX audit_log_username ON audit_log (username);
CREATE INDEX mailboxes_owner ON mailboxes (owner_type, owner_id);
`;

/** First POSIX uid number (uidNumber) given to a user: above Debian's local users' range start and the group gid numbers. */
export const FIRST_UID_NUMBER = 10000;
/** First POSIX gid number given to a group. */
export const FIRST_GID_NUMBER = 5000;

/** The counters in `meta` that hand out POSIX numbers; each value is the next number to give. */
export type NumberCounter = 'next_uid_number' | 'next_gid_number';

/**
 * v3: every user gets a POSIX uid number, assigned once and never reused: existing users in
 * creation order, new users from the counter meta.next_uid_number (which deletions never lower).
 */
const v3 = (setNotNull: string) => `
ALTER TABLE users ADD COLUMN uid_number INTEGER;
UPDATE users SET uid_number = n.num
  FROM (SELECT id, ${FIRST_UID_NUMBER - 1} + ROW_NUMBER() OVER (ORDER BY created_at, id) AS num FROM users) AS n
  WHERE users.id = n.id;
${setNotNull}
CREATE UNIQUE INDEX users_uid_number ON users (uid_number);
INSERT INTO meta (key, value) SELECT 'next_uid_number', CAST(COALESCE(MAX(uid_number), ${FIRST_UID_NUMBER - 1}) + 1 AS TEXT) FROM users;
`;

const v4 = `
INSERT INTO meta (key, value) SELECT 'next_gid_number', CAST(COALESCE(MAX(gid_number), ${FIRST_GID_NUMBER - 1}) + 1 AS TEXT) FROM groups;
`;

const v5 = `
CREATE TABLE passkeys (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  public_key TEXT NOT NULL,
  counter BIGINT NOT NULL,
  transports TEXT NOT NULL,
  name TEXT NOT NULL,
  created_at TEXT NOT NULL,
  last_used_at TEXT
);
CREATE INDEX passkeys_user ON passkeys (user_id);
`;

const v6 = `
CREATE TABLE ssh_keys (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  algorithm TEXT NOT NULL,
  key_data TEXT NOT NULL,
  comment TEXT NOT NULL DEFAULT '',
  fingerprint TEXT NOT NULL,
  created_at TEXT NOT NULL,
  UNIQUE (user_id, fingerprint)
);
`;

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'users, groups, apps, mailboxes, audit log',
    sqlite: v1({ serial: 'INTEGER', bool: 'INTEGER', json: 'TEXT' }),
    postgres: v1({ serial: 'BIGSERIAL', bool: 'BOOLEAN', json: 'TEXT' }),
  },
  {
    version: 2,
    description: 'expiring key/value space; audit and mailbox indexes',
    sqlite: v2,
    postgres: v2,
  },
  {
    version: 3,
    description: 'POSIX uid numbers for users',
    // SQLite cannot add NOT NULL to an existing column; every insert sets it.
    sqlite: v3(''),
    postgres: v3('ALTER TABLE users ALTER COLUMN uid_number SET NOT NULL;'),
  },
  {
    version: 4,
    // Before, a new group took the highest gid + 1, so deleting the newest group let the next one reuse its gid.
    description: 'group gid numbers from a counter, never reused',
    sqlite: v4,
    postgres: v4,
  },
  {
    version: 5,
    description: 'WebAuthn credentials (passkeys)',
    sqlite: v5,
    postgres: v5,
  },
  {
    version: 6,
    description: 'SSH public keys users register for SFTP',
    sqlite: v6,
    postgres: v6,
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
