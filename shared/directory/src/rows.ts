import type { App, AuditEvent, Group, Mailbox, Passkey, Role, SshKey, User } from './types.ts';

/** Row <-> record mapping shared by the SQL backends (column names are the same in both). */

export type Row = Record<string, unknown>;

const str = (v: unknown): string => String(v);
const optStr = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const bool = (v: unknown): boolean => v === true || v === 1 || v === '1';

export function userFromRow(r: Row): User {
  return {
    id: str(r.id),
    username: str(r.username),
    uidNumber: Number(r.uid_number),
    email: str(r.email),
    fallbackEmail: optStr(r.fallback_email),
    displayName: str(r.display_name ?? ''),
    role: str(r.role) as Role,
    active: bool(r.active),
    passwordHash: str(r.password_hash),
    totpSecret: optStr(r.totp_secret),
    createdAt: str(r.created_at),
  };
}

/** User field -> column; the one place the two namings meet. */
export const USER_FIELDS = {
  id: 'id',
  username: 'username',
  uidNumber: 'uid_number',
  email: 'email',
  fallbackEmail: 'fallback_email',
  displayName: 'display_name',
  role: 'role',
  active: 'active',
  passwordHash: 'password_hash',
  totpSecret: 'totp_secret',
  createdAt: 'created_at',
} as const satisfies Record<keyof User, string>;

export const USER_COLUMNS = Object.values(USER_FIELDS);

/** A user's values in USER_COLUMNS order. */
export function userToRow(u: User): unknown[] {
  return (Object.keys(USER_FIELDS) as (keyof User)[]).map((k) => u[k]);
}

export function groupsFromRows(groupRows: Row[], memberRows: Row[]): Group[] {
  const byId = new Map<string, Group>();
  for (const r of groupRows) byId.set(str(r.id), { id: str(r.id), name: str(r.name), gidNumber: Number(r.gid_number), memberIds: [] });
  for (const m of memberRows) byId.get(str(m.group_id))?.memberIds.push(str(m.user_id));
  return [...byId.values()];
}

export function appFromRow(r: Row): App {
  return {
    id: str(r.id),
    domain: str(r.domain),
    manifest: JSON.parse(str(r.manifest)),
    access: r.access === null || r.access === undefined ? null : JSON.parse(str(r.access)),
    upstream: optStr(r.upstream),
    credentials: JSON.parse(str(r.credentials)),
    createdAt: str(r.created_at),
  };
}

export function appToRow(a: App): unknown[] {
  return [a.id, a.domain, JSON.stringify(a.manifest), a.access ? JSON.stringify(a.access) : null, a.upstream, JSON.stringify(a.credentials), a.createdAt];
}

export function mailboxFromRow(r: Row): Mailbox {
  return { address: str(r.address), ownerType: str(r.owner_type) as Mailbox['ownerType'], ownerId: str(r.owner_id) };
}

export function auditFromRow(r: Row): AuditEvent {
  return {
    at: str(r.at),
    username: optStr(r.username),
    protocol: str(r.protocol) as AuditEvent['protocol'],
    appId: optStr(r.app_id),
    remote: optStr(r.remote),
    ok: bool(r.ok),
    detail: optStr(r.detail),
  };
}

/** Turns a unique-constraint violation into the one clear line the CLI prints. */
export function conflictMessage(err: unknown): string | null {
  const msg = err instanceof Error ? err.message : String(err);
  const detail = (err as { detail?: string; constraint?: string }).constraint ?? msg;
  if (!/unique|duplicate/i.test(msg) && !/_key|_pkey/.test(detail)) return null;
  if (/users\.username|users_username/.test(detail)) return 'username already exists';
  if (/users\.email|users_email/.test(detail)) return 'email already in use';
  if (/groups\.name|groups_name/.test(detail)) return 'group already exists';
  if (/apps\.domain|apps_domain/.test(detail)) return 'domain already used by another app';
  if (/apps\.id|apps_pkey/.test(detail)) return 'app id already exists';
  if (/mailboxes\.address|mailboxes_pkey/.test(detail)) return 'mailbox already exists';
  return 'already exists';
}

export function passkeyFromRow(r: Row): Passkey {
  return {
    id: str(r.id),
    userId: str(r.user_id),
    publicKey: str(r.public_key),
    counter: Number(r.counter),
    transports: JSON.parse(str(r.transports)) as string[],
    name: str(r.name),
    createdAt: str(r.created_at),
    lastUsedAt: optStr(r.last_used_at),
  };
}

export function sshKeyFromRow(r: Row): SshKey {
  return {
    id: String(r.id),
    userId: String(r.user_id),
    algorithm: String(r.algorithm),
    keyData: String(r.key_data),
    comment: String(r.comment),
    fingerprint: String(r.fingerprint),
    createdAt: String(r.created_at),
  };
}
