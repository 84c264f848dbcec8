import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { securePrivateDir, type HearthConfig } from '@hearth/config';
import type { Logger } from '@hearth/log';
import { PasswordHasher, secretEquals } from './password.ts';
import { connectRedis, REDIS_CHANGE_CHANNEL, RedisCounters, StoreCounters, type SharedCounters } from './shared-state.ts';
import { DirectoryError, type DirectoryStore, type ImportBatch } from './store.ts';
import { LoginThrottle, throttleAccount, type ThrottleLimits } from './throttle.ts';
import { parseSshPublicKey } from './ssh-keys.ts';
import { generateTotpSecret, otpauthUri, verifyTotp } from './totp.ts';
import type { App, AuditEvent, Group, Mailbox, Protocol, Role, Snapshot, SshKey, User } from './types.ts';
import { check, emailSchema, groupNameSchema, passwordSchema, usernameSchema } from './validate.ts';

const PURGE_INTERVAL_MS = 60_000;
/** The embedded store in the data directory: the database and its write-ahead log and shared-memory index. */
const SQLITE_FILES = ['hearth.db', 'hearth.db-wal', 'hearth.db-shm'] as const;

export interface AuthRequest {
  login: string;
  password: string;
  protocol: Protocol;
  /** the app the login is for; users outside its access list are refused */
  appId?: string | null;
  remote?: string | null;
}

export type AuthFailure = 'invalid_credentials' | 'throttled' | 'disabled' | 'not_allowed';
export type AuthResult = { ok: true; user: User } | { ok: false; reason: AuthFailure };

export interface AppAuthRequest {
  /** which addon's credentials: 'ldap' (login = app id), 'sendmail' or 'recvmail' (login = username) */
  addon: string;
  login: string;
  password: string;
  protocol: Protocol;
  remote?: string | null;
}

export interface NewUser {
  username: string;
  email: string;
  password: string;
  displayName?: string;
  fallbackEmail?: string | null;
  role?: Role;
}

interface View {
  snapshot: Snapshot;
  usersById: Map<string, User>;
  usersByUsername: Map<string, User>;
  usersByEmail: Map<string, User>;
  groupsById: Map<string, Group>;
  groupsByName: Map<string, Group>;
  groupsByUser: Map<string, Group[]>;
  appsById: Map<string, App>;
  appsByDomain: Map<string, App>;
  mailboxes: Map<string, Mailbox>;
}

function buildView(snapshot: Snapshot): View {
  const groupsByUser = new Map<string, Group[]>();
  for (const g of snapshot.groups) {
    for (const uid of g.memberIds) {
      const list = groupsByUser.get(uid);
      if (list) list.push(g);
      else groupsByUser.set(uid, [g]);
    }
  }
  return {
    snapshot,
    usersById: new Map(snapshot.users.map((u) => [u.id, u])),
    usersByUsername: new Map(snapshot.users.map((u) => [u.username, u])),
    usersByEmail: new Map(snapshot.users.map((u) => [u.email.toLowerCase(), u])),
    groupsById: new Map(snapshot.groups.map((g) => [g.id, g])),
    groupsByName: new Map(snapshot.groups.map((g) => [g.name.toLowerCase(), g])),
    groupsByUser,
    appsById: new Map(snapshot.apps.map((a) => [a.id, a])),
    appsByDomain: new Map(snapshot.apps.map((a) => [a.domain.toLowerCase(), a])),
    mailboxes: new Map(snapshot.mailboxes.map((m) => [m.address.toLowerCase(), m])),
  };
}

export interface OpenOptions {
  logger?: Logger;
  /** keep the in-memory view current as other processes write (daemons: true; one-shot CLI: false) */
  watch?: boolean;
  /** overrides of HEARTH_LOGIN_* (tests) */
  throttle?: Partial<ThrottleLimits>;
}

/**
 * The directory every daemon reads: an in-memory view of users, groups, apps and
 * mailboxes over a DirectoryStore, kept current through change notifications, plus
 * the operations with rules (password hashing, access checks, throttling, audit).
 */
export class Directory {
  private view: View;
  private readonly listeners = new Set<(d: Directory) => void>();
  private readonly auditListeners = new Set<(e: Pick<AuditEvent, 'protocol' | 'ok' | 'detail'>) => void>();
  private unwatch: (() => Promise<void>) | null = null;
  private reloading: Promise<void> | null = null;
  private reloadAgain = false;
  readonly hasher: PasswordHasher;
  readonly throttle: LoginThrottle;

  private constructor(
    readonly store: DirectoryStore,
    readonly config: HearthConfig,
    snapshot: Snapshot,
    readonly counters: SharedCounters,
    private readonly redis: Redis | null,
    private readonly logger: Logger | undefined,
    throttle: ThrottleLimits,
  ) {
    this.view = buildView(snapshot);
    this.hasher = new PasswordHasher(config.argon2);
    this.throttle = new LoginThrottle(counters, throttle, (err) => logger?.warn({ err }, 'could not remember the address of a successful login'));
  }

  static async open(config: HearthConfig, opts: OpenOptions = {}): Promise<Directory> {
    const tightened = securePrivateDir(config.dataDir, config.databaseUrl ? [] : SQLITE_FILES);
    if (tightened.length) opts.logger?.warn({ dataDir: config.dataDir, tightened }, 'tightened permissions: the data directory and the store were readable by other users');
    // Each backend's driver (and Redis's) loads only when configured: a daemon's footprint and start time.
    const store: DirectoryStore = config.databaseUrl
      ? new (await import('./postgres.ts')).PostgresStore(config.databaseUrl)
      : new (await import('./sqlite.ts')).SqliteStore(path.join(config.dataDir, SQLITE_FILES[0]));
    try {
      await store.migrate();
    } catch (err) {
      await store.close().catch(() => {});
      throw err;
    }
    const redis = config.redisUrl ? await connectRedis(config.redisUrl) : null;
    const counters = redis ? new RedisCounters(redis) : new StoreCounters(store);
    const throttle = { ...config.loginThrottle, ...opts.throttle };
    const dir = new Directory(store, config, await store.loadSnapshot(), counters, redis, opts.logger, throttle);
    if (opts.watch) await dir.startWatching();
    return dir;
  }

  private async startWatching(): Promise<void> {
    const stops: (() => Promise<void>)[] = [await this.store.watch(() => this.scheduleReload())];
    if (this.redis) {
      const sub = this.redis.duplicate();
      sub.on('error', () => {});
      await sub.subscribe(REDIS_CHANGE_CHANNEL);
      sub.on('message', () => this.scheduleReload());
      stops.push(async () => void sub.disconnect());
    }
    // Expired sessions, tokens and counters are dead weight in kv scans; sweep them now and then.
    const sweep = setInterval(() => {
      this.store.purgeExpired().catch((err) => this.logger?.warn({ err }, 'kv purge failed'));
    }, PURGE_INTERVAL_MS);
    sweep.unref();
    stops.push(async () => clearInterval(sweep));
    this.unwatch = async () => {
      await Promise.all(stops.map((s) => s()));
    };
  }

  /** Coalesces bursts of change events into one reload at a time. */
  private scheduleReload(): void {
    if (this.reloading) {
      this.reloadAgain = true;
      return;
    }
    this.reloading = (async () => {
      do {
        this.reloadAgain = false;
        try {
          this.view = buildView(await this.store.loadSnapshot());
          for (const l of this.listeners) l(this);
        } catch (err) {
          this.logger?.warn({ err }, 'directory reload failed; keeping the previous view');
        }
      } while (this.reloadAgain);
      this.reloading = null;
    })();
  }

  private installation: Promise<string> | null = null;

  /** This installation's id (see DirectoryStore.installationId); read once. */
  installationId(): Promise<string> {
    this.installation ??= this.store.installationId().catch((err: unknown) => {
      this.installation = null;
      throw err;
    });
    return this.installation;
  }

  /** Reloads now (after a local write, so the caller reads its own change). */
  async refresh(): Promise<void> {
    this.view = buildView(await this.store.loadSnapshot());
    for (const l of this.listeners) l(this);
  }

  /** Called after each reload with the new view. */
  /** Called for every login or token event audit() records (metrics count them). */
  onAudit(listener: (e: Pick<AuditEvent, 'protocol' | 'ok' | 'detail'>) => void): () => void {
    this.auditListeners.add(listener);
    return () => this.auditListeners.delete(listener);
  }

  onChange(listener: (d: Directory) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async changed(): Promise<void> {
    if (this.redis) await this.redis.publish(REDIS_CHANGE_CHANNEL, '1').catch(() => 0);
    await this.refresh();
  }

  async close(): Promise<void> {
    await this.unwatch?.();
    this.redis?.disconnect();
    await this.store.close();
  }

  // ---- reads from the in-memory view ----

  get snapshot(): Snapshot {
    return this.view.snapshot;
  }
  users(): User[] {
    return this.view.snapshot.users;
  }
  groups(): Group[] {
    return this.view.snapshot.groups;
  }
  apps(): App[] {
    return this.view.snapshot.apps;
  }
  mailboxes(): Mailbox[] {
    return this.view.snapshot.mailboxes;
  }
  userById(id: string): User | undefined {
    return this.view.usersById.get(id);
  }
  userByUsername(username: string): User | undefined {
    return this.view.usersByUsername.get(username.toLowerCase());
  }
  userByEmail(email: string): User | undefined {
    return this.view.usersByEmail.get(email.toLowerCase());
  }
  /** A login as people type it: username, email or id. */
  findUser(login: string): User | undefined {
    const l = login.trim();
    return this.userByUsername(l) ?? (l.includes('@') ? this.userByEmail(l) : this.userById(l));
  }
  groupById(id: string): Group | undefined {
    return this.view.groupsById.get(id);
  }
  groupByName(name: string): Group | undefined {
    return this.view.groupsByName.get(name.toLowerCase());
  }
  groupsOf(userId: string): Group[] {
    return this.view.groupsByUser.get(userId) ?? [];
  }
  app(id: string): App | undefined {
    return this.view.appsById.get(id);
  }
  appByDomain(domain: string): App | undefined {
    return this.view.appsByDomain.get(domain.toLowerCase());
  }
  mailbox(address: string): Mailbox | undefined {
    return this.view.mailboxes.get(address.toLowerCase());
  }
  /** Mailboxes owned by a user or an app. */
  mailboxesOf(ownerType: Mailbox['ownerType'], ownerId: string): Mailbox[] {
    return this.view.snapshot.mailboxes.filter((m) => m.ownerType === ownerType && m.ownerId === ownerId);
  }
  /** The app whose addon credentials carry this username (sendmail/recvmail logins). */
  appByCredential(addon: string, username: string): App | undefined {
    const u = username.toLowerCase();
    return this.view.snapshot.apps.find((a) => a.credentials[addon]?.username?.toLowerCase() === u);
  }
  /** Whether the user is on the app's access list (null list = everyone). Inactive users never are. */
  canUseApp(app: App, user: User): boolean {
    if (!user.active) return false;
    if (!app.access) return true;
    if (app.access.userIds.includes(user.id)) return true;
    return this.groupsOf(user.id).some((g) => app.access!.groupIds.includes(g.id));
  }

  // ---- authentication ----

  /** Records a login or token event; a refused one is also one info log line (protocol, login, address, reason; never a secret). */
  async audit(e: Omit<AuditEvent, 'at' | 'detail' | 'appId' | 'remote'> & Partial<Pick<AuditEvent, 'detail' | 'appId' | 'remote'>>): Promise<void> {
    if (!e.ok) this.logger?.info({ protocol: e.protocol, login: e.username, remote: e.remote ?? null, appId: e.appId ?? null, reason: e.detail ?? null }, 'login refused');
    for (const listener of this.auditListeners) listener({ protocol: e.protocol, ok: e.ok, detail: e.detail ?? null });
    await this.store
      .appendAudit({ at: new Date().toISOString(), detail: null, appId: null, remote: null, ...e })
      .catch((err) => this.logger?.warn({ err }, 'audit write failed'));
  }

  /**
   * Checks a user's password for a protocol, and the app's access list when an app is
   * named. Every outcome costs one argon2 verification, so failures all look alike.
   */
  async authenticate(req: AuthRequest): Promise<AuthResult> {
    const remote = req.remote ?? null;
    const appId = req.appId ?? null;
    const user = this.findUser(req.login);
    const attempt = await this.throttle.begin(throttleAccount('user', user?.id ?? null, req.login), remote);
    const fail = async (reason: AuthFailure, username: string): Promise<AuthResult> => {
      if (reason !== 'throttled') await attempt.failed();
      await this.audit({ username, protocol: req.protocol, appId, remote, ok: false, detail: reason });
      return { ok: false, reason };
    };
    if (attempt.blocked) return fail('throttled', user?.username ?? req.login);
    if (!user) {
      await this.hasher.verifyDummy(req.password);
      return fail('invalid_credentials', req.login);
    }
    const good = await this.hasher.verify(user.passwordHash, req.password);
    // Re-read after the await: a disable that landed meanwhile must win.
    const current = this.userById(user.id);
    if (!good) return fail('invalid_credentials', user.username);
    if (!current || !current.active) return fail('disabled', user.username);
    if (appId) {
      const app = this.app(appId);
      if (!app || !this.canUseApp(app, current)) return fail('not_allowed', user.username);
    }
    await attempt.succeeded();
    await this.audit({ username: current.username, protocol: req.protocol, appId, remote, ok: true });
    return { ok: true, user: current };
  }

  /** An app logging in with the credentials one of its addons was given. */
  async authenticateApp(req: AppAuthRequest): Promise<App | null> {
    const remote = req.remote ?? null;
    const app = req.addon === 'ldap' ? this.app(req.login) : this.appByCredential(req.addon, req.login);
    const attempt = await this.throttle.begin(throttleAccount('app', app?.id ?? null, req.login), remote);
    if (attempt.blocked) {
      await this.audit({ username: req.login, protocol: req.protocol, appId: app?.id ?? null, remote, ok: false, detail: 'throttled' });
      return null;
    }
    const expected = app?.credentials[req.addon]?.[req.addon === 'ldap' ? 'bindPassword' : 'password'];
    const ok = expected !== undefined && secretEquals(expected, req.password);
    await this.audit({ username: req.login, protocol: req.protocol, appId: app?.id ?? null, remote, ok, detail: ok ? `app ${req.addon}` : 'invalid_credentials' });
    if (!ok) {
      await attempt.failed();
      return null;
    }
    await attempt.succeeded();
    return app!;
  }

  verifyTotp(user: User, code: string): boolean {
    return user.totpSecret !== null && verifyTotp(user.totpSecret, code);
  }

  // ---- writes (CLI, tests); each is one store transaction ----

  private requireUser(login: string): User {
    const u = this.findUser(login);
    if (!u) throw new DirectoryError(`no such user: ${login}`, 'not_found');
    return u;
  }

  private requireGroup(name: string): Group {
    const g = this.groupByName(name);
    if (!g) throw new DirectoryError(`no such group: ${name}`, 'not_found');
    return g;
  }

  /**
   * Checks a new user's fields against the rules and the current directory without writing
   * (the password is checked and hashed by the caller); throws the first problem as one line.
   */
  checkNewUser(input: Omit<NewUser, 'password'>): Omit<User, 'uidNumber' | 'passwordHash'> {
    const username = check(usernameSchema, input.username);
    const email = check(emailSchema, input.email);
    const fallbackEmail = input.fallbackEmail ? check(emailSchema, input.fallbackEmail) : null;
    if (this.userByUsername(username)) throw new DirectoryError('username already exists', 'conflict');
    if (this.userByEmail(email)) throw new DirectoryError('email already in use', 'conflict');
    return {
      id: `uid-${randomUUID()}`,
      username,
      email,
      fallbackEmail,
      displayName: input.displayName || username,
      role: input.role ?? 'user',
      active: true,
      totpSecret: null,
      createdAt: new Date().toISOString(),
    };
  }

  async addUser(input: NewUser): Promise<User> {
    const fields = this.checkNewUser(input);
    const password = check(passwordSchema, input.password);
    const user = await this.store.createUser({ ...fields, passwordHash: await this.hasher.hash(password) });
    await this.changed();
    return user;
  }

  /** Stores checked users, groups and memberships (see checkNewUser, checkNewGroup) in one transaction. */
  async importBatch(batch: ImportBatch): Promise<{ users: User[]; groups: Group[] }> {
    const created = await this.store.importBatch(batch);
    await this.changed();
    return created;
  }

  async updateUser(login: string, patch: { email?: string; displayName?: string; fallbackEmail?: string | null; role?: Role }): Promise<User> {
    const user = this.requireUser(login);
    const clean: Partial<User> = {};
    if (patch.email !== undefined) {
      clean.email = check(emailSchema, patch.email);
      const other = this.userByEmail(clean.email);
      if (other && other.id !== user.id) throw new DirectoryError('email already in use', 'conflict');
    }
    if (patch.displayName !== undefined) clean.displayName = patch.displayName;
    if (patch.fallbackEmail !== undefined) clean.fallbackEmail = patch.fallbackEmail ? check(emailSchema, patch.fallbackEmail) : null;
    if (patch.role !== undefined) clean.role = patch.role;
    await this.store.updateUser(user.id, clean);
    await this.changed();
    return this.userById(user.id)!;
  }

  async setPassword(login: string, password: string): Promise<void> {
    const user = this.requireUser(login);
    const hash = await this.hasher.hash(check(passwordSchema, password));
    await this.store.updateUser(user.id, { passwordHash: hash });
    await this.changed();
  }

  async setActive(login: string, active: boolean): Promise<void> {
    const user = this.requireUser(login);
    await this.store.updateUser(user.id, { active });
    await this.changed();
  }

  async deleteUser(login: string): Promise<void> {
    const user = this.requireUser(login);
    await this.store.deleteUser(user.id);
    await this.changed();
  }

  async enableTotp(login: string): Promise<{ secret: string; uri: string }> {
    const user = this.requireUser(login);
    const secret = generateTotpSecret();
    await this.setTotpSecret(user.id, secret);
    return { secret, uri: otpauthUri(secret, user.email) };
  }

  /** Stores a TOTP secret the user has already proven to hold (console enrolment: QR code, then a code). */
  async setTotpSecret(login: string, secret: string): Promise<void> {
    const user = this.requireUser(login);
    await this.store.updateUser(user.id, { totpSecret: secret });
    await this.changed();
  }

  async disableTotp(login: string): Promise<void> {
    const user = this.requireUser(login);
    await this.store.updateUser(user.id, { totpSecret: null });
    await this.changed();
  }

  /** Checks a new group's name against the rules and the current directory without writing. */
  checkNewGroup(name: string): Omit<Group, 'memberIds' | 'gidNumber'> {
    const clean = check(groupNameSchema, name);
    if (this.groupByName(clean)) throw new DirectoryError('group already exists', 'conflict');
    return { id: `gid-${randomUUID()}`, name: clean };
  }

  async addGroup(name: string): Promise<Group> {
    const g = await this.store.createGroup(this.checkNewGroup(name));
    await this.changed();
    return g;
  }

  async deleteGroup(name: string): Promise<void> {
    await this.store.deleteGroup(this.requireGroup(name).id);
    await this.changed();
  }

  async addMember(group: string, login: string): Promise<void> {
    const g = this.requireGroup(group);
    const u = this.requireUser(login);
    await this.store.addMember(g.id, u.id);
    await this.changed();
  }

  async removeMember(group: string, login: string): Promise<void> {
    const g = this.requireGroup(group);
    const u = this.requireUser(login);
    await this.store.removeMember(g.id, u.id);
    await this.changed();
  }

  async addMailbox(address: string, ownerLogin: string): Promise<Mailbox> {
    const clean = check(emailSchema, address);
    if (this.mailbox(clean)) throw new DirectoryError(`mailbox already exists: ${clean}`, 'conflict');
    const user = this.findUser(ownerLogin);
    const app = user ? undefined : this.app(ownerLogin);
    if (!user && !app) throw new DirectoryError(`no such user or app: ${ownerLogin}`, 'not_found');
    const mailbox: Mailbox = { address: clean, ownerType: user ? 'user' : 'app', ownerId: user ? user.id : app!.id };
    await this.store.addMailbox(mailbox);
    await this.changed();
    return mailbox;
  }

  async deleteMailbox(address: string): Promise<void> {
    await this.store.deleteMailbox(address.toLowerCase());
    await this.changed();
  }

  // ---- SSH public keys (SFTP) ----

  async sshKeys(login: string): Promise<SshKey[]> {
    return this.store.listSshKeys(this.requireUser(login).id);
  }

  async addSshKey(login: string, line: string): Promise<SshKey> {
    const user = this.requireUser(login);
    const parsed = parseSshPublicKey(line);
    if ((await this.store.listSshKeys(user.id)).some((k) => k.fingerprint === parsed.fingerprint)) {
      throw new DirectoryError(`${user.username} already has the key ${parsed.fingerprint}`, 'conflict');
    }
    const key: SshKey = { id: `key-${randomUUID().slice(0, 8)}`, userId: user.id, ...parsed, createdAt: new Date().toISOString() };
    await this.store.addSshKey(key);
    return key;
  }

  /** Removes a key by its id or fingerprint. */
  async deleteSshKey(login: string, idOrFingerprint: string): Promise<void> {
    const user = this.requireUser(login);
    const key = (await this.store.listSshKeys(user.id)).find((k) => k.id === idOrFingerprint || k.fingerprint === idOrFingerprint);
    if (!key || !(await this.store.deleteSshKey(user.id, key.id))) throw new DirectoryError(`${user.username} has no key ${idOrFingerprint}`, 'not_found');
  }

  /** Installs or replaces an app record; provisioning (shared/provisioning) decides its contents. */
  async putApp(app: App, ownedMailboxes: string[]): Promise<void> {
    await this.store.putApp(app, ownedMailboxes);
    await this.changed();
  }

  async deleteApp(id: string): Promise<void> {
    await this.store.deleteApp(id);
    await this.changed();
  }
}
