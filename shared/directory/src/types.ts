/** Plain records shared by every backend and every daemon. Validation happens at the edges. */

export type Role = 'owner' | 'admin' | 'user';

export interface User {
  /** stable, `uid-<uuid>` */
  id: string;
  /** lowercase [a-z0-9.-], 1–64 */
  username: string;
  /** POSIX uid number, assigned by the store at creation and never reused */
  uidNumber: number;
  email: string;
  fallbackEmail: string | null;
  displayName: string;
  role: Role;
  active: boolean;
  /** argon2id PHC string */
  passwordHash: string;
  /** base32 TOTP secret when 2FA is on */
  totpSecret: string | null;
  createdAt: string;
}

export interface Group {
  id: string;
  name: string;
  gidNumber: number;
  /** user ids */
  memberIds: string[];
}

/** null means everyone may use the app. */
export interface AccessRestriction {
  userIds: string[];
  groupIds: string[];
}

/** Credentials and options per addon, e.g. credentials.ldap.bindPassword. */
export type AddonCredentials = Record<string, Record<string, string>>;

export interface App {
  id: string;
  domain: string;
  /** the validated CloudronManifest.json */
  manifest: Manifest;
  access: AccessRestriction | null;
  upstream: string | null;
  credentials: AddonCredentials;
  createdAt: string;
}

export interface Manifest {
  id?: string;
  title?: string;
  version?: string;
  manifestVersion?: number;
  httpPort?: number;
  /** the image the app runs (from the manifest or `app install --image`) */
  dockerImage?: string;
  /** bytes */
  memoryLimit?: number;
  healthCheckPath?: string;
  addons: Record<string, Record<string, unknown>>;
  [key: string]: unknown;
}

export type MailboxOwnerType = 'user' | 'app';

export interface Mailbox {
  /** lowercase local@domain */
  address: string;
  ownerType: MailboxOwnerType;
  ownerId: string;
}

export type Protocol = 'ldap' | 'smtp' | 'imap' | 'pop3' | 'oidc' | 'proxyauth' | 'turn' | 'sieve' | 'sftp' | 'cli' | 'console';

/** An OpenSSH public key a user registered (`hearth user ssh-key add`), for SFTP logins. */
export interface SshKey {
  id: string;
  userId: string;
  /** e.g. ssh-ed25519 */
  algorithm: string;
  /** the key blob, base64, as in authorized_keys */
  keyData: string;
  comment: string;
  /** SHA256:… as ssh-keygen -l prints it */
  fingerprint: string;
  createdAt: string;
}

export interface AuditEvent {
  at: string;
  /** the login name as given, or the resolved username */
  username: string | null;
  protocol: Protocol;
  appId: string | null;
  remote: string | null;
  ok: boolean;
  detail: string | null;
}

/** Everything the daemons keep in memory. */
export interface Snapshot {
  users: User[];
  groups: Group[];
  apps: App[];
  mailboxes: Mailbox[];
}

/** A WebAuthn credential (passkey) registered by a user. */
export interface Passkey {
  /** the credential id, base64url */
  id: string;
  userId: string;
  /** COSE public key, base64url */
  publicKey: string;
  /** the authenticator's signature counter as last seen */
  counter: number;
  transports: string[];
  /** the user's label for it */
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
}
