import { randomBytes } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import { ValidationError, type Directory } from '@hearth/directory';
import type { Logger } from '@hearth/log';
import { BerError, pduLength } from './ber.ts';
import { escapeDnValue, parseDn } from './dn.ts';
import { APPS_DN, selection, Tree, USERS_DN, type Entry, type Selection, type Viewer } from './entries.ts';
import { assertionValue, matches, type Filter } from './filter.ts';
import {
  decodeMessage,
  decodePagedControl,
  decodePasswordModify,
  encodeEntry,
  encodeNoticeOfDisconnection,
  encodePagedControl,
  encodeResult,
  OID,
  OP,
  OperationError,
  RESULT,
  SCOPE,
  type Control,
  type Message,
  type SearchRequest,
} from './protocol.ts';

export interface LdapOptions {
  directory: Directory;
  logger: Logger;
  host: string;
  /** plain LDAP with StartTLS; 0 picks a free port */
  port: number;
  /** implicit TLS; null for none */
  ldapsPort?: number | null;
  /** certificate for StartTLS and LDAPS; without it neither is offered */
  tls?: { cert: string; key: string } | null;
  maxConnections?: number;
  maxConnectionsPerAddress?: number;
  /** argon2 verifications in flight at once (default: one per CPU) */
  maxPasswordChecks?: number;
  idleTimeoutMs?: number;
}

export interface LdapServer {
  port: number;
  ldapsPort: number | null;
  endpoints: string[];
  close(): Promise<void>;
}

/** How long an app bind from an address makes that app the context for user binds from it. */
const APP_SOURCE_TTL_MS = 60 * 60 * 1000;
const MAX_TRACKED_SOURCES = 10_000;
const MAX_PAGED_SEARCHES = 8;
/** Output a slow reader may leave unread before we drop it. */
const MAX_PENDING_OUTPUT = 64 * 1024 * 1024;
/** Responses are written in batches of about this size... */
const FLUSH_BYTES = 256 * 1024;
/** ...and request processing waits while this much is still unsent (pipelined searches). */
const HIGH_WATER_BYTES = 4 * 1024 * 1024;
const KNOWN_CONTROLS = new Set<string>([OID.pagedResults, OID.manageDsaIT]);
const INVALID = 'invalid credentials';

type Identity = Viewer | null;

interface PagedSearch {
  entries: Entry[];
  offset: number;
  sel: Selection;
  typesOnly: boolean;
  finalCode: number;
}

/**
 * The shared part of the server: the current tree, which apps have bound from which
 * source address, and the open connections.
 */
class LdapService {
  private treeCache: Tree;
  /** remote address → app id → last app bind (ms) */
  private readonly appSources = new Map<string, Map<string, number>>();
  readonly connections = new Set<Connection>();
  readonly perAddress = new Map<string, number>();
  readonly secureContext: tls.SecureContext | null;
  private passwordChecks = 0;
  private readonly passwordQueue: (() => void)[] = [];
  private readonly maxPasswordChecks: number;

  constructor(
    readonly opts: LdapOptions,
    readonly directory: Directory,
    readonly logger: Logger,
  ) {
    this.treeCache = new Tree(directory);
    this.secureContext = opts.tls ? tls.createSecureContext({ cert: opts.tls.cert, key: opts.tls.key }) : null;
    this.maxPasswordChecks = opts.maxPasswordChecks ?? Math.max(2, os.availableParallelism());
  }

  /**
   * Runs a password check (or hash) when a slot is free. argon2 is CPU- and memory-bound:
   * more in flight than cores adds no throughput, only memory (19 MiB each by default).
   * Every bind outcome waits the same way, so the queue reveals nothing.
   */
  async withPasswordSlot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.passwordChecks >= this.maxPasswordChecks) await new Promise<void>((r) => this.passwordQueue.push(r));
    else this.passwordChecks++;
    try {
      return await fn();
    } finally {
      const next = this.passwordQueue.shift();
      if (next) next();
      else this.passwordChecks--;
    }
  }

  /** The tree for the directory's current view (rebuilt at most once per reload). */
  get tree(): Tree {
    if (this.treeCache.snapshot !== this.directory.snapshot) this.treeCache = new Tree(this.directory);
    return this.treeCache;
  }

  /** Builds the tree for a new directory view right away, so the next request does not wait for it. */
  rebuild(): void {
    try {
      void this.tree;
    } catch (err) {
      this.logger.warn({ err }, 'rebuilding the LDAP tree failed');
    }
  }

  noteAppBind(remote: string, appId: string): void {
    let apps = this.appSources.get(remote);
    if (!apps) {
      if (this.appSources.size >= MAX_TRACKED_SOURCES) this.appSources.delete(this.appSources.keys().next().value!);
      apps = new Map();
      this.appSources.set(remote, apps);
    }
    apps.set(appId, Date.now());
  }

  /** Apps that bound from this address within the TTL. */
  recentApps(remote: string): string[] {
    const apps = this.appSources.get(remote);
    if (!apps) return [];
    const now = Date.now();
    for (const [id, at] of apps) if (now - at > APP_SOURCE_TTL_MS) apps.delete(id);
    return [...apps.keys()];
  }
}

function rdnIs(r: { type: string; value: string } | undefined, type: string, value: string): boolean {
  return r !== undefined && r.type === type && r.value.toLowerCase() === value;
}

/** One client connection: framing, sequential request handling, one write per batch. */
class Connection {
  private input: Buffer = Buffer.alloc(0);
  private out: Buffer[] = [];
  private outBytes = 0;
  private busy = false;
  /** the socket closed */
  private closed = false;
  /** we are hanging up; read nothing more */
  private ending = false;
  private identity: Identity = null;
  /** the app that last bound on this connection; it scopes later user binds */
  private appContext: string | null = null;
  private readonly pages = new Map<string, PagedSearch>();
  private upgradeAfterFlush = false;
  readonly remote: string;

  constructor(
    private readonly svc: LdapService,
    private socket: net.Socket,
    private secure: boolean,
  ) {
    this.remote = socket.remoteAddress ?? 'unknown';
    this.attach(socket);
  }

  private attach(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.setTimeout(this.svc.opts.idleTimeoutMs ?? 10 * 60 * 1000, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {});
    socket.on('close', () => this.onClose());
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.pages.clear();
    this.svc.connections.delete(this);
    const n = (this.svc.perAddress.get(this.remote) ?? 1) - 1;
    if (n <= 0) this.svc.perAddress.delete(this.remote);
    else this.svc.perAddress.set(this.remote, n);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.ending) return;
    this.input = this.input.length ? Buffer.concat([this.input, chunk]) : chunk;
    if (!this.busy) void this.pump();
  }

  private flush(): void {
    if (this.out.length === 0 || this.closed || this.socket.destroyed) {
      this.out = [];
      this.outBytes = 0;
      return;
    }
    const data = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    this.socket.write(data);
    if (this.socket.writableLength > MAX_PENDING_OUTPUT) this.socket.destroy();
  }

  /** Waits until the client has read most of what we sent (or went away). */
  private drained(): Promise<void> {
    this.socket.pause();
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        if (!this.closed) this.socket.resume();
        resolve();
      };
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
  }

  /** Undecodable input: tell the client why (RFC 4511 4.4.1) and hang up. */
  private fail(message: string): void {
    this.push(encodeNoticeOfDisconnection(RESULT.protocolError, message));
    this.flush();
    this.input = Buffer.alloc(0);
    this.hangUp();
  }

  private hangUp(): void {
    this.ending = true;
    const socket = this.socket;
    socket.end();
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  /** Handles every complete PDU in the input, in order; async operations pause reading. */
  private async pump(): Promise<void> {
    this.busy = true;
    try {
      while (!this.closed && !this.ending && !this.upgradeAfterFlush) {
        let len: number;
        try {
          len = pduLength(this.input);
        } catch (err) {
          this.fail((err as Error).message);
          return;
        }
        if (len === 0) break;
        const pdu = this.input.subarray(0, len);
        this.input = this.input.subarray(len);
        let msg: Message;
        try {
          msg = decodeMessage(pdu);
        } catch (err) {
          if (err instanceof OperationError) {
            this.push(encodeResult(err.id, err.responseTag, RESULT.protocolError, { message: err.message }));
            continue;
          }
          this.fail(err instanceof BerError ? err.message : 'malformed message');
          return;
        }
        const pending = this.handle(msg);
        if (pending) {
          this.flush();
          this.socket.pause();
          await pending;
          if (!this.closed) this.socket.resume();
        } else if (this.outBytes > FLUSH_BYTES) this.flush();
        if (this.socket.writableLength > HIGH_WATER_BYTES) await this.drained();
      }
    } catch (err) {
      this.svc.logger.warn({ err, remote: this.remote }, 'LDAP connection failed');
      this.socket.destroy();
    } finally {
      this.busy = false;
      this.flush();
      if (this.upgradeAfterFlush) {
        try {
          this.upgrade();
        } catch (err) {
          this.svc.logger.warn({ err, remote: this.remote }, 'StartTLS failed');
          this.socket.destroy();
        }
      }
    }
  }

  private push(data: Buffer): void {
    this.out.push(data);
    this.outBytes += data.length;
  }

  private respond(id: number, tag: number, code: number, message?: string, extra?: { controls?: Control[]; responseName?: string; responseValue?: Buffer }): void {
    this.push(encodeResult(id, tag, code, { message, ...extra }));
  }

  /** Returns a promise only for operations that wait (binds, password changes). */
  private handle(msg: Message): Promise<void> | void {
    const { id, req } = msg;
    if (req.op === 'unbind') {
      this.flush();
      this.hangUp();
      return;
    }
    if (req.op === 'abandon') {
      // Requests run to completion before the next is read; only paged searches outlive one.
      return;
    }
    const responseTag = req.op === 'write' ? req.responseTag : RESPONSE_TAG[req.op];
    const unknownCritical = msg.controls.find((c) => c.critical && !KNOWN_CONTROLS.has(c.oid));
    if (unknownCritical) return this.respond(id, responseTag, RESULT.unavailableCriticalExtension, `unsupported critical control ${unknownCritical.oid}`);
    switch (req.op) {
      case 'bind':
        return this.bind(id, req.version, req.name, req.password, req.saslMechanism);
      case 'search':
        return this.search(id, req, msg.controls);
      case 'compare':
        return this.compare(id, req.dn, req.attr, req.value);
      case 'extended':
        return this.extended(id, req.oid, req.value);
      case 'write':
        return this.respond(id, req.responseTag, RESULT.unwillingToPerform, 'the directory is read-only over LDAP (manage it with the hearth CLI)');
    }
  }

  // ---- bind ----

  private async bind(id: number, version: number, name: string, password: Buffer | null, sasl: string | null): Promise<void> {
    const reply = (code: number, message?: string): void => {
      this.respond(id, OP.bindResponse, code, message);
    };
    this.identity = null;
    // Paged results belong to the identity that searched.
    this.pages.clear();
    if (version !== 3) return reply(RESULT.protocolError, 'only LDAPv3 is supported');
    if (sasl !== null || password === null) return reply(RESULT.authMethodNotSupported, 'only simple binds are supported');
    const { directory } = this.svc;
    if (name === '' && password.length === 0) return reply(RESULT.success);
    if (password.length === 0) {
      await directory.audit({ username: name, protocol: 'ldap', remote: this.remote, ok: false, detail: 'unauthenticated bind' });
      return reply(RESULT.unwillingToPerform, 'unauthenticated binds are not allowed');
    }
    const pw = password.toString('utf8');
    const rdns = parseDn(name);
    if (rdns?.length === 3 && rdns[0]!.type === 'cn' && rdnIs(rdns[1], 'ou', 'apps') && rdnIs(rdns[2], 'dc', 'cloudron')) {
      const app = await directory.authenticateApp({ addon: 'ldap', login: rdns[0]!.value, password: pw, protocol: 'ldap', remote: this.remote });
      if (!app) return reply(RESULT.invalidCredentials, INVALID);
      this.identity = { kind: 'app', appId: app.id };
      this.appContext = app.id;
      this.svc.noteAppBind(this.remote, app.id);
      return reply(RESULT.success);
    }
    let login = name;
    if (rdns?.length === 3 && (rdns[0]!.type === 'cn' || rdns[0]!.type === 'mail') && rdnIs(rdns[1], 'ou', 'users') && rdnIs(rdns[2], 'dc', 'cloudron')) {
      login = rdns[0]!.value;
      if (rdns[0]!.type === 'mail' && !login.includes('@')) login = name;
    }
    // Per-user throttling counts one account however its DN was spelled.
    const known = directory.findUser(login);
    if (known) login = known.username;
    const contexts = (this.appContext ? [this.appContext] : this.svc.recentApps(this.remote)).filter((appId) => directory.app(appId));
    const result = await this.svc.withPasswordSlot(() => directory.authenticate({ login, password: pw, protocol: 'ldap', appId: contexts[0] ?? null, remote: this.remote }));
    if (!result.ok) return reply(RESULT.invalidCredentials, INVALID);
    for (const appId of contexts.slice(1)) {
      const app = directory.app(appId);
      if (app && !directory.canUseApp(app, result.user)) {
        await directory.audit({ username: result.user.username, protocol: 'ldap', appId, remote: this.remote, ok: false, detail: 'not_allowed' });
        return reply(RESULT.invalidCredentials, INVALID);
      }
    }
    if (this.closed) return;
    this.identity = { kind: 'user', userId: result.user.id };
    return reply(RESULT.success);
  }

  // ---- search ----

  /** The entry a DN names, as this viewer may see it; null when absent or hidden. */
  private resolve(tree: Tree, viewer: Viewer | null, dn: string): Entry | null | 'invalid' {
    const rdns = parseDn(dn);
    if (!rdns) return 'invalid';
    if (rdns.length === 0) return tree.root;
    if (rdns.length === 1 && rdnIs(rdns[0], 'cn', 'subschema')) return tree.subschema;
    if (!viewer) return null;
    const n = rdns.length;
    if (!rdnIs(rdns[n - 1], 'dc', 'cloudron')) return null;
    if (n === 1) return tree.base;
    const ou = rdns[n - 2]!;
    const isUsers = rdnIs(ou, 'ou', 'users');
    const isGroups = rdnIs(ou, 'ou', 'groups');
    if (n === 2) return isUsers ? tree.usersOu : isGroups ? tree.groupsOu : null;
    if (n !== 3) return null;
    const leaf = rdns[0]!;
    if (isUsers && (leaf.type === 'cn' || (leaf.type === 'mail' && leaf.value.includes('@')) || leaf.type === 'uid')) {
      const user = leaf.type === 'cn' ? this.svc.directory.findUser(leaf.value) : leaf.type === 'mail' ? this.svc.directory.userByEmail(leaf.value) : this.svc.directory.userById(leaf.value);
      if (!user || !tree.canSeeUser(viewer, user.id)) return null;
      return tree.userEntry(user.id) ?? null;
    }
    if (isGroups && leaf.type === 'cn') {
      const want = leaf.value.toLowerCase();
      return tree.groupsFor(viewer).find((g) => g.values('cn')?.[0] === want) ?? null;
    }
    return null;
  }

  private children(tree: Tree, viewer: Viewer, e: Entry, filter: Filter | null): Entry[] {
    if (e === tree.root) return [tree.base];
    if (e === tree.base) return [tree.usersOu, tree.groupsOu];
    if (e === tree.usersOu) return tree.usersFor(viewer, filter);
    if (e === tree.groupsOu) return tree.groupsFor(viewer);
    return [];
  }

  private subtree(tree: Tree, viewer: Viewer, e: Entry, filter: Filter, out: Entry[]): void {
    out.push(e);
    for (const c of this.children(tree, viewer, e, filter)) this.subtree(tree, viewer, c, filter, out);
  }

  private search(id: number, req: SearchRequest, controls: Control[]): void {
    const done = (code: number, message?: string, resControls?: Control[]): void => {
      this.respond(id, OP.searchResultDone, code, message, { controls: resControls });
    };
    const pagedCtl = controls.find((c) => c.oid === OID.pagedResults);
    let paged: { size: number; cookie: Buffer } | null = null;
    if (pagedCtl) {
      try {
        paged = decodePagedControl(pagedCtl.value);
      } catch (err) {
        return done(RESULT.protocolError, (err as Error).message);
      }
    }
    const sel = selection(req.attributes);
    if (paged && paged.cookie.length > 0) {
      const key = paged.cookie.toString('hex');
      const state = this.pages.get(key);
      if (!state) return done(RESULT.unwillingToPerform, 'unknown paged results cookie');
      this.pages.delete(key);
      if (paged.size === 0) return done(RESULT.success, undefined, [encodePagedControl(Buffer.alloc(0))]);
      return this.sendPage(id, state, paged.size);
    }

    const tree = this.svc.tree;
    const viewer = this.identity;
    const base = this.resolve(tree, viewer, req.base);
    if (base === 'invalid') return done(RESULT.invalidDNSyntax, 'invalid base DN');
    if (!viewer && base !== tree.root && base !== tree.subschema) return done(RESULT.insufficientAccessRights, 'bind first');
    if (!base) return done(RESULT.noSuchObject, 'no such entry');

    let scoped: Entry[];
    if (req.scope === SCOPE.base) scoped = [base];
    else if (!viewer) scoped = [];
    else if (req.scope === SCOPE.one) scoped = this.children(tree, viewer, base, req.filter);
    else {
      scoped = [];
      // The root DSE is not part of any subtree (RFC 4512 5.1).
      this.subtree(tree, viewer, base === tree.root ? tree.base : base, req.filter, scoped);
      if (req.scope === SCOPE.children && base !== tree.root) scoped.shift();
    }

    const deadline = req.timeLimit > 0 ? Date.now() + req.timeLimit * 1000 : Infinity;
    const found: Entry[] = [];
    let code: number = RESULT.success;
    for (let i = 0; i < scoped.length; i++) {
      const e = scoped[i]!;
      if (!matches(req.filter, e)) continue;
      if (req.sizeLimit > 0 && found.length >= req.sizeLimit) {
        code = RESULT.sizeLimitExceeded;
        break;
      }
      found.push(e);
      if ((i & 255) === 255 && Date.now() > deadline) {
        code = RESULT.timeLimitExceeded;
        break;
      }
    }
    const state: PagedSearch = { entries: found, offset: 0, sel, typesOnly: req.typesOnly, finalCode: code };
    if (!paged) {
      this.sendEntries(id, state, found.length);
      return done(code);
    }
    if (paged.size === 0) return done(RESULT.success, undefined, [encodePagedControl(Buffer.alloc(0), found.length)]);
    this.sendPage(id, state, paged.size);
  }

  private sendEntries(id: number, state: PagedSearch, count: number): void {
    const end = Math.min(state.entries.length, state.offset + count);
    for (let i = state.offset; i < end; i++) {
      const e = state.entries[i]!;
      this.push(encodeEntry(id, e.dnTlv, state.typesOnly ? e.selectTypesOnly(state.sel) : e.select(state.sel)));
    }
    state.offset = end;
  }

  private sendPage(id: number, state: PagedSearch, size: number): void {
    this.sendEntries(id, state, size);
    let cookie = Buffer.alloc(0);
    if (state.offset < state.entries.length) {
      cookie = randomBytes(8);
      if (this.pages.size >= MAX_PAGED_SEARCHES) this.pages.delete(this.pages.keys().next().value!);
      this.pages.set(cookie.toString('hex'), state);
    }
    const code = cookie.length ? RESULT.success : state.finalCode;
    this.respond(id, OP.searchResultDone, code, undefined, { controls: [encodePagedControl(cookie, state.entries.length)] });
  }

  // ---- compare ----

  private compare(id: number, dn: string, attr: string, value: string): void {
    const reply = (code: number, message?: string): void => this.respond(id, OP.compareResponse, code, message);
    if (!this.identity) return reply(RESULT.insufficientAccessRights, 'bind first');
    const entry = this.resolve(this.svc.tree, this.identity, dn);
    if (entry === 'invalid') return reply(RESULT.invalidDNSyntax, 'invalid DN');
    if (!entry) return reply(RESULT.noSuchObject, 'no such entry');
    const values = entry.values(attr);
    if (!values) return reply(RESULT.noSuchAttribute, 'no such attribute');
    return reply(values.includes(assertionValue(attr, value)) ? RESULT.compareTrue : RESULT.compareFalse);
  }

  // ---- extended ----

  private extended(id: number, oid: string, value: Buffer | null): Promise<void> | void {
    const reply = (code: number, message?: string, extra?: { responseName?: string; responseValue?: Buffer }): void =>
      this.respond(id, OP.extendedResponse, code, message, extra);
    switch (oid) {
      case OID.whoAmI:
        return reply(RESULT.success, undefined, { responseValue: Buffer.from(this.authzId()) });
      case OID.startTls:
        if (this.secure) return reply(RESULT.operationsError, 'TLS is already active');
        if (!this.svc.secureContext) return reply(RESULT.unavailable, 'TLS is not configured');
        if (this.input.length) return reply(RESULT.operationsError, 'requests pending after StartTLS');
        reply(RESULT.success, undefined, { responseName: OID.startTls });
        this.upgradeAfterFlush = true;
        return;
      case OID.passwordModify:
        return this.passwordModify(id, value);
      default:
        return reply(RESULT.protocolError, `unsupported extended operation ${oid}`);
    }
  }

  private authzId(): string {
    if (!this.identity) return '';
    if (this.identity.kind === 'app') return `dn:cn=${escapeDnValue(this.identity.appId)},${APPS_DN}`;
    return `dn:cn=${escapeDnValue(this.identity.userId)},${USERS_DN}`;
  }

  /** Switches the socket to TLS after the StartTLS response has been written. */
  private upgrade(): void {
    this.upgradeAfterFlush = false;
    if (this.closed) return;
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('timeout');
    raw.setTimeout(0);
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: this.svc.secureContext! });
    this.socket = secure;
    this.secure = true;
    this.attach(secure);
    secure.on('close', () => raw.destroy());
  }

  private async passwordModify(id: number, value: Buffer | null): Promise<void> {
    const reply = (code: number, message?: string): void => this.respond(id, OP.extendedResponse, code, message);
    const { directory } = this.svc;
    if (this.identity?.kind !== 'user') return reply(RESULT.insufficientAccessRights, 'bind as the user whose password changes');
    const self = directory.userById(this.identity.userId);
    if (!self || !self.active) return reply(RESULT.insufficientAccessRights, 'bind as the user whose password changes');
    let fields: ReturnType<typeof decodePasswordModify>;
    try {
      fields = decodePasswordModify(value);
    } catch (err) {
      return reply(RESULT.protocolError, (err as Error).message);
    }
    if (fields.userIdentity !== null) {
      const ident = fields.userIdentity.replace(/^(dn:|u:)/i, '');
      const entry = this.resolve(this.svc.tree, this.identity, ident);
      const byLogin = directory.findUser(ident);
      const target = entry && entry !== 'invalid' && entry.kind === 'user' ? entry.ref : byLogin?.id;
      if (target !== self.id) return reply(RESULT.insufficientAccessRights, 'users may only change their own password');
    }
    if (!fields.newPassword) return reply(RESULT.unwillingToPerform, 'a new password is required');
    if (fields.oldPassword !== null) {
      const check = await this.svc.withPasswordSlot(() =>
        directory.authenticate({ login: self.username, password: fields.oldPassword!, protocol: 'ldap', appId: this.appContext, remote: this.remote }),
      );
      if (!check.ok || check.user.id !== self.id) return reply(RESULT.invalidCredentials, INVALID);
    }
    try {
      await this.svc.withPasswordSlot(() => directory.setPassword(self.id, fields.newPassword!));
    } catch (err) {
      if (err instanceof ValidationError) return reply(RESULT.constraintViolation, err.message);
      this.svc.logger.warn({ err }, 'password change failed');
      return reply(RESULT.other, 'password change failed');
    }
    await directory.audit({ username: self.username, protocol: 'ldap', appId: this.appContext, remote: this.remote, ok: true, detail: 'password changed' });
    return reply(RESULT.success);
  }
}

const RESPONSE_TAG = {
  bind: OP.bindResponse,
  search: OP.searchResultDone,
  compare: OP.compareResponse,
  extended: OP.extendedResponse,
} as const;

function listen(server: net.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/** Starts LDAP (with StartTLS) and, when a port and certificate are given, LDAPS. */
export async function startLdap(opts: LdapOptions): Promise<LdapServer> {
  const svc = new LdapService(opts, opts.directory, opts.logger);
  const offChange = opts.directory.onChange(() => svc.rebuild());
  const maxConnections = opts.maxConnections ?? 4096;
  const maxPerAddress = opts.maxConnectionsPerAddress ?? 512;

  const accept = (socket: net.Socket, secure: boolean): void => {
    socket.on('error', () => {});
    const remote = socket.remoteAddress ?? 'unknown';
    const n = svc.perAddress.get(remote) ?? 0;
    if (svc.connections.size >= maxConnections || n >= maxPerAddress) {
      socket.destroy();
      return;
    }
    svc.perAddress.set(remote, n + 1);
    svc.connections.add(new Connection(svc, socket, secure));
  };

  const plain = net.createServer((s) => accept(s, false));
  plain.on('error', (err) => opts.logger.error({ err }, 'LDAP listener error'));
  const port = await listen(plain, opts.port, opts.host);
  const servers: net.Server[] = [plain];
  const endpoints = [`ldap://${opts.host}:${port}`];

  let ldapsPort: number | null = null;
  if (opts.ldapsPort !== undefined && opts.ldapsPort !== null && opts.tls) {
    const secure = tls.createServer({ cert: opts.tls.cert, key: opts.tls.key, handshakeTimeout: 10_000 }, (s) => accept(s, true));
    // Failed handshakes are the client's problem, not the server's.
    secure.on('tlsClientError', () => {});
    secure.on('error', (err) => opts.logger.error({ err }, 'LDAPS listener error'));
    ldapsPort = await listen(secure, opts.ldapsPort, opts.host);
    servers.push(secure);
    endpoints.push(`ldaps://${opts.host}:${ldapsPort}`);
  }

  return {
    port,
    ldapsPort,
    endpoints,
    close: async () => {
      offChange();
      for (const c of svc.connections) c.destroy();
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}
