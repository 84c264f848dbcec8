import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { ValidationError, type Directory } from '@hearth/directory';
import { loadConnectionLimits, serveLines, type ConnectionLimits, type Framer, type LineSession, type RequestResult, type SessionIO } from '@hearth/lineserver';
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

/** Result codes by name, for the request metrics' outcome label. */
const RESULT_NAMES = new Map<number, string>(Object.entries(RESULT).map(([name, code]) => [code, name]));

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
  /** default: HEARTH_LDAP_MAX_CONNECTIONS, _MAX_CONNECTIONS_PER_ADDRESS, _IDLE_TIMEOUT, _MAX_LIFETIME */
  connections?: ConnectionLimits;
  /** argon2 verifications in flight at once (default: one per CPU) */
  maxPasswordChecks?: number;
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
/**
 * Responses are batched over pipelined requests and written at about this size (or when no request
 * waits); the next request is read only once the client has taken the batch (backpressure).
 */
const FLUSH_BYTES = 256 * 1024;
/** requests read ahead of the one being answered; beyond it the socket stops reading */
const MAX_QUEUED = 64;
export const LDAP_CONNECTION_DEFAULTS: ConnectionLimits = { maxConnections: 4096, maxPerAddress: 512, idleTimeoutMs: 10 * 60_000, maxLifetimeMs: 0 };
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

/** The shared part of the server: the current tree and which apps have bound from which source address. */
export class LdapService {
  private treeCache: Tree;
  /** remote address → app id → last app bind (ms) */
  private readonly appSources = new Map<string, Map<string, number>>();
  private passwordChecks = 0;
  private readonly passwordQueue: (() => void)[] = [];
  private readonly maxPasswordChecks: number;

  constructor(
    readonly opts: LdapOptions,
    readonly directory: Directory,
    readonly logger: Logger,
  ) {
    this.treeCache = new Tree(directory);
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

/** One LDAP message off the wire, or why the input cannot be framed (then nothing more is read). */
type LdapFrame = { pdu: Buffer } | { malformed: string };

/** Cuts the input into BER PDUs. */
export class PduFramer implements Framer<LdapFrame> {
  #input: Buffer = Buffer.alloc(0);
  #broken = false;

  push(data: Buffer): LdapFrame[] {
    if (this.#broken) return [];
    let input = this.#input.length ? Buffer.concat([this.#input, data]) : data;
    const out: LdapFrame[] = [];
    for (;;) {
      let len: number;
      try {
        len = pduLength(input);
      } catch (err) {
        this.#broken = true;
        input = Buffer.alloc(0);
        out.push({ malformed: (err as Error).message });
        break;
      }
      if (len === 0) break;
      out.push({ pdu: input.subarray(0, len) });
      input = input.subarray(len);
    }
    this.#input = input;
    return out;
  }

  reset(): void {
    this.#input = Buffer.alloc(0);
  }
}

/** One client connection's LDAP state: PDUs in, responses out through its SessionIO, batched. */
export class LdapSession implements LineSession<LdapFrame> {
  private out: Buffer[] = [];
  private outBytes = 0;
  /** we are hanging up, or the connection is gone: handle nothing more */
  closed = false;
  private identity: Identity = null;
  /** the app that last bound on this connection; it scopes later user binds */
  private appContext: string | null = null;
  private readonly pages = new Map<string, PagedSearch>();
  readonly remote: string;
  /** the operation being handled and the result code it got, for the request metrics */
  private operation = 'other';
  private resultCode: number | null = null;

  constructor(
    private readonly svc: LdapService,
    private readonly io: SessionIO,
    private readonly tlsAvailable: boolean,
  ) {
    this.remote = io.remote ?? 'unknown';
  }

  greeting(): null {
    return null;
  }

  end(): void {
    this.closed = true;
    this.pages.clear();
  }

  /** idle too long: just close, as LDAP servers do */
  async idle(): Promise<void> {
    this.closed = true;
  }

  async shutdown(): Promise<void> {
    this.push(encodeNoticeOfDisconnection(RESULT.unavailable, 'the server is shutting down'));
    await this.hangUp();
  }

  /** writes what is batched; resolves once the client has taken it (or went away) */
  flush(): Promise<void> {
    if (this.out.length === 0) return Promise.resolve();
    const data = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    return this.io.write(data);
  }

  private async hangUp(): Promise<void> {
    this.closed = true;
    await this.flush();
    this.io.close();
  }

  async handle(frame: LdapFrame): Promise<RequestResult | undefined> {
    this.operation = 'other';
    this.resultCode = null;
    await this.handleFrame(frame);
    return this.resultCode === null ? undefined : { command: this.operation, outcome: RESULT_NAMES.get(this.resultCode) ?? 'other' };
  }

  private async handleFrame(frame: LdapFrame): Promise<void> {
    // Undecodable input: tell the client why (RFC 4511 4.4.1) and hang up.
    if ('malformed' in frame) {
      this.push(encodeNoticeOfDisconnection(RESULT.protocolError, frame.malformed));
      return this.hangUp();
    }
    let msg: Message;
    try {
      msg = decodeMessage(frame.pdu);
    } catch (err) {
      if (err instanceof OperationError) return this.push(encodeResult(err.id, err.responseTag, RESULT.protocolError, { message: err.message }));
      this.push(encodeNoticeOfDisconnection(RESULT.protocolError, err instanceof BerError ? err.message : 'malformed message'));
      return this.hangUp();
    }
    const pending = this.dispatch(msg);
    if (pending) {
      // a bind or password change waits: what is batched goes out first
      await this.flush();
      await pending;
    }
    if (this.outBytes > FLUSH_BYTES) await this.flush();
  }

  private push(data: Buffer): void {
    this.out.push(data);
    this.outBytes += data.length;
  }

  private respond(id: number, tag: number, code: number, message?: string, extra?: { controls?: Control[]; responseName?: string; responseValue?: Buffer }): void {
    this.resultCode = code;
    this.push(encodeResult(id, tag, code, { message, ...extra }));
  }

  /** Returns a promise only for operations that wait (binds, password changes, StartTLS). */
  private dispatch(msg: Message): Promise<void> | void {
    const { id, req } = msg;
    this.operation = req.op;
    if (req.op === 'unbind') return this.hangUp();
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
        if (this.io.secure) return reply(RESULT.operationsError, 'TLS is already active');
        if (!this.tlsAvailable) return reply(RESULT.unavailable, 'TLS is not configured');
        reply(RESULT.success, undefined, { responseName: OID.startTls });
        // requests pipelined behind StartTLS came in clear text: the layer drops them (RFC 4511 4.14.1)
        return this.flush().then(() => this.io.startTls());
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

/** Starts LDAP (with StartTLS) and, when a port and certificate are given, LDAPS. */
export async function startLdap(opts: LdapOptions): Promise<LdapServer> {
  const svc = new LdapService(opts, opts.directory, opts.logger);
  const offChange = opts.directory.onChange(() => svc.rebuild());
  const tls = opts.tls ?? null;
  const withLdaps = opts.ldapsPort !== undefined && opts.ldapsPort !== null && tls !== null;
  const server = await serveLines<LdapFrame, LdapSession>({
    host: opts.host,
    tls,
    listeners: [{ scheme: 'ldap', port: opts.port, implicitTls: false }, ...(withLdaps ? [{ scheme: 'ldaps', port: opts.ldapsPort!, implicitTls: true }] : [])],
    limits: opts.connections ?? loadConnectionLimits('LDAP', LDAP_CONNECTION_DEFAULTS),
    logger: opts.logger,
    protocol: {
      name: 'LDAP',
      refusal: (reason) => encodeNoticeOfDisconnection(RESULT.busy, reason === 'address' ? 'too many connections from your address' : 'too many connections'),
      framer: () => new PduFramer(),
      maxQueued: MAX_QUEUED,
      session: (io) => new LdapSession(svc, io, tls !== null),
    },
  });
  return {
    port: server.ports[0]!,
    ldapsPort: withLdaps ? server.ports[1]! : null,
    endpoints: server.endpoints,
    close: async () => {
      offChange();
      await server.close();
    },
  };
}
