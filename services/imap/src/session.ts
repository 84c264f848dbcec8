import type { Directory } from '@hearth/directory';
import type { Logger } from '@hearth/log';
import type { RequestResult, SessionIO } from '@hearth/lineserver';
import {
  canonicalSystemFlag,
  decodeMutf7,
  DELIMITER,
  encodeMutf7,
  isNoSpace,
  mailLogin,
  MailStoreError,
  normalizeFolderName,
  stillAllowed,
  SYSTEM_FLAGS,
  type Account,
  type AppendedMessage,
  type Folder,
  type FolderInfo,
  type MailStore,
  type MessageRecord,
  type Principal,
} from '@hearth/mailstore';
import { encodeBodyStructure, parseSection, partAt, sectionBytes, type Section } from './bodystructure.ts';
import { envelope } from './envelope.ts';
import { parseFetch } from './fetch.ts';
import { atom, compactSet, raw, continuation, encodeValue, orderedSet, status, tagged, toBuffer, untagged, type Value } from './imap-encoder.ts';
import {
  asAtom,
  asList,
  asString,
  asUtf8,
  formatDateTime,
  maxOfSet,
  parseCommand,
  parseCommandStart,
  parseDateTime,
  ParseError,
  parseNotify,
  parseNumber,
  parseSequenceSet,
  resolveSequenceSet,
  type Command,
  type CommandParts,
  type Token,
} from './imap-parser.ts';
import { decodedContent, encodeBinaryParts, header, parseMessage, toCrlf, type MimePart } from '@hearth/message';
import type { HeaderCache } from './header-cache.ts';
import { BadCharsetError, keyKinds, matches, needsContent, parseSearch, type Candidate, type SearchKey } from './search.ts';
import { refuseRecentKeys, statusItems } from './rev2.ts';
import type { ImapSettings } from './settings.ts';
import { Notifier, notifyConfig, NotifyRefused, NOTIFY_NONE, type NotifyConfig, type NotifyEvent } from './notify.ts';
import { needsHeader, parseSortCriteria, sortFields, sortItems, type SortCriterion, type SortItem } from './sort.ts';
import { formatThreads, orderedSubjectThreads, referenceThreads, refsThreads, type ThreadTree } from './thread.ts';

export interface SessionDeps {
  directory: Directory;
  store: MailStore;
  logger: Logger;
  settings: ImapSettings;
  tlsAvailable: boolean;
  headers: HeaderCache;
}

export type State = 'notauth' | 'auth' | 'selected' | 'logout';

type Status = 'OK' | 'NO' | 'BAD';
interface Reply {
  status: Status;
  text: string;
  code?: string;
}

class CommandError extends Error {
  constructor(
    readonly status: 'NO' | 'BAD',
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

const no = (text: string, code?: string): never => {
  throw new CommandError('NO', text, code);
};

interface View {
  folder: Folder;
  readOnly: boolean;
  /** message sequence numbers: uids[seq - 1]; may be the folder's shared array, so replaced, never changed in place */
  uids: readonly number[];
  modseqSeen: number;
  expunges: number;
  /** keywords announced in FLAGS; a new keyword means a new FLAGS response */
  keywords: number;
  /** UIDs that are \Recent in this session (RFC 3501 §2.3.2) */
  recent: Set<number>;
  dirty: boolean;
  stop: () => void;
}

const ANY = new Set(['CAPABILITY', 'NOOP', 'LOGOUT', 'ID']);
const NOTAUTH = new Set(['STARTTLS', 'AUTHENTICATE', 'LOGIN']);
const AUTH = new Set([
  'SELECT', 'EXAMINE', 'CREATE', 'DELETE', 'RENAME', 'SUBSCRIBE', 'UNSUBSCRIBE', 'LIST', 'LSUB', 'STATUS', 'APPEND',
  'NAMESPACE', 'ENABLE', 'IDLE', 'GETQUOTA', 'GETQUOTAROOT', 'SETQUOTA', 'COMPRESS', 'NOTIFY',
]);
const SELECTED = new Set([
  'CHECK', 'CLOSE', 'UNSELECT', 'EXPUNGE', 'SEARCH', 'SORT', 'THREAD', 'FETCH', 'STORE', 'COPY', 'MOVE',
  'UID FETCH', 'UID SEARCH', 'UID SORT', 'UID THREAD', 'UID STORE', 'UID COPY', 'UID MOVE', 'UID EXPUNGE', 'CANCELUPDATE',
]);
/** The request metrics' command label: a known command's name, "other" for anything else. */
const commandLabel = (name: string): string => (ANY.has(name) || NOTAUTH.has(name) || AUTH.has(name) || SELECTED.has(name) ? name.toLowerCase() : 'other');
/** Commands during which EXPUNGE responses must not be sent (RFC 3501 §7.4.1). */
const NO_EXPUNGE = new Set(['FETCH', 'STORE', 'SEARCH', 'SORT', 'THREAD']);
const MAX_BAD = 20;
/** unsent NOTIFY responses (a client that does not read, or one long command) beyond which NOTIFY stops */
const NOTIFY_BACKLOG_BYTES = 1024 * 1024;
const MAX_AUTH_FAILURES = 5;
const WRITE_CHUNK = 64 * 1024;
const READ_AHEAD = 16;
const EPOCH = new Date(0);

/**
 * One IMAP connection's state machine (RFC 3501 §3) with the extensions Hearth offers.
 * The server feeds it framed commands one at a time and it writes responses through
 * its SessionIO; it never throws to the caller.
 */
export class Session {
  state: State = 'notauth';
  principal: Principal | null = null;
  private account: Account | null = null;
  private view: View | null = null;
  private condstore = false;
  /** ENABLE UTF8=ACCEPT (RFC 6855): mailbox names in UTF-8 both ways, APPEND UTF8 (...) */
  private utf8Accept = false;
  /**
   * ENABLE IMAP4rev2 (RFC 9051): UTF-8 mailbox names, no \Recent (no RECENT response, flag, search
   * key or STATUS item), SEARCH answers ESEARCH, SELECT sends LIST and [CLOSED], unsolicited FETCH has the UID
   */
  private rev2 = false;
  /** ENABLE QRESYNC (RFC 7162): VANISHED instead of EXPUNGE, SELECT (QRESYNC ...), FETCH (VANISHED) */
  private qresync = false;
  /** COMPRESS DEFLATE (RFC 4978) is on; it stays on for the connection */
  private compressed = false;
  /** SEARCHRES (RFC 5182): the UIDs the last SEARCH RETURN (SAVE) kept, named `$` */
  private saved: ReadonlySet<number> = new Set();
  /** CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4): searches and sorts kept up to date (RETURN (UPDATE)), by their command's tag */
  private readonly contexts = new Map<string, SearchContext>();
  private badCount = 0;
  private authFailures = 0;
  /** flag changes this session already reported itself (uid → modseq) */
  private readonly reported = new Map<number, number>();
  /** a command waiting for a continuation line (IDLE's DONE, AUTHENTICATE's response) */
  /** the rest of a command that waits for a line (AUTHENTICATE's response, IDLE's DONE); resolves to its tagged status */
  private pendingLine: ((line: string) => Promise<Status>) | null = null;
  private pendingCommand = 'other';
  /** the command just handled, for the request metrics */
  private result: RequestResult | undefined;
  private out: Buffer[] = [];
  private outBytes = 0;
  private idleFlush: (() => void) | null = null;
  /** NOTIFY SET in force (RFC 5465); null: never asked, IMAP4rev1's updates at command ends */
  private notifying: NotifyConfig | null = null;
  private notifier: Notifier | null = null;
  /** a command is being handled: notifications wait for its end */
  private busy = false;
  /** notifications for other mailboxes not yet written */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** unsolicited responses being written between commands (IDLE, NOTIFY), one batch at a time */
  private pushing: Promise<void> | null = null;
  private pushQueued = false;

  constructor(
    private readonly deps: SessionDeps,
    private readonly io: SessionIO,
  ) {}

  /** re-read after awaits: a BYE may have ended the session meanwhile */
  get closed(): boolean {
    return this.state === 'logout';
  }

  get idling(): boolean {
    return this.idleFlush !== null;
  }

  greeting(): Buffer {
    return status('OK', 'Hearth IMAP ready', `CAPABILITY ${this.capabilities()}`);
  }

  capabilities(): string {
    const caps = ['IMAP4rev1', 'IMAP4rev2', 'SASL-IR', 'LITERAL+', 'ID', 'ENABLE', 'IDLE'];
    if (this.state === 'notauth') {
      if (this.deps.tlsAvailable && !this.io.secure) caps.push('STARTTLS');
      caps.push(this.loginDisabled ? 'LOGINDISABLED' : 'AUTH=PLAIN');
    } else {
      caps.push('NAMESPACE', 'UIDPLUS', 'MOVE', 'SPECIAL-USE', 'CHILDREN', 'LIST-EXTENDED', 'LIST-STATUS', 'UNSELECT', 'CONDSTORE', 'ESEARCH', 'SEARCHRES', 'WITHIN', 'SORT', 'SORT=DISPLAY', 'THREAD=ORDEREDSUBJECT', 'THREAD=REFERENCES', 'THREAD=REFS', 'ESORT', 'CONTEXT=SEARCH', 'CONTEXT=SORT', 'QUOTA', 'QUOTA=RES-STORAGE', 'QUOTA=RES-MESSAGE', 'MULTIAPPEND', 'CATENATE', 'BINARY', 'UTF8=ACCEPT', 'QRESYNC', 'STATUS=SIZE', 'NOTIFY');
      if (!this.compressed) caps.push('COMPRESS=DEFLATE');
    }
    return caps.join(' ');
  }

  /** HEARTH_IMAP_REQUIRE_TLS on a connection not yet under TLS: no password may cross it. */
  private get loginDisabled(): boolean {
    return !!this.deps.settings.requireTls && !this.io.secure;
  }

  /** A protocol error found while framing (line too long, literal too big). */
  async rejected(tag: string | null, text: string, tooBig: boolean): Promise<void> {
    await this.send(tag ? tagged(tag, 'BAD', text, tooBig ? 'TOOBIG' : undefined) : status('BAD', text));
    await this.countBad();
    await this.flush();
  }

  private async countBad(): Promise<void> {
    if (++this.badCount > MAX_BAD) await this.bye('Too many invalid commands');
  }

  async bye(text: string): Promise<void> {
    if (this.state === 'logout') return;
    this.state = 'logout';
    await this.send(status('BYE', text)).catch(() => {});
    await this.flush().catch(() => {});
    this.io.close();
  }

  /** Disconnect cleanup: stop watching the folder. */
  end(): void {
    this.state = 'logout';
    this.deselect();
    this.notifier?.stop();
    this.notifier = null;
  }

  /** Called after directory changes: a disabled user or removed app loses the session. */
  async recheck(): Promise<void> {
    if (this.principal && this.account && !stillAllowed(this.deps.directory, this.principal, this.account.address)) {
      await this.bye('Access revoked');
    }
  }

  /** Queues response bytes: they leave at the end of the command (one write for small responses) or every 64 KiB. */
  private send(data: Buffer): Promise<void> {
    this.out.push(data);
    this.outBytes += data.length;
    return this.outBytes >= WRITE_CHUNK ? this.flush() : Promise.resolve();
  }

  /** Queues text and literal pieces as they are: bodies are copied once, into the write, not first into a response buffer. */
  private sendPieces(pieces: (string | Buffer)[]): Promise<void> {
    for (const p of pieces) {
      const data = typeof p === 'string' ? Buffer.from(p, 'latin1') : p;
      this.out.push(data);
      this.outBytes += data.length;
    }
    return this.outBytes >= WRITE_CHUNK ? this.flush() : Promise.resolve();
  }

  private flush(): Promise<void> {
    if (this.out.length === 0) return Promise.resolve();
    const data = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out);
    this.out = [];
    this.outBytes = 0;
    return this.io.write(data);
  }

  async handle(parts: CommandParts): Promise<RequestResult | undefined> {
    this.result = undefined;
    // unsolicited responses already on their way finish before the command's own
    while (this.pushing) await this.pushing;
    this.busy = true;
    try {
      await this.handleCommand(parts);
    } finally {
      this.busy = false;
      await this.flush().catch(() => {});
    }
    // after NOTIFY SELECTED also an EXPUNGE that FETCH, STORE or SEARCH held back (RFC 3501 §7.4.1) goes out now
    const heldExpunge = !!this.notifying?.selected?.immediate && !!this.view && this.view.expunges !== this.view.folder.expunges;
    if (this.pending.length || this.idleFlush || (this.view?.dirty && this.notifying?.selected) || heldExpunge) this.schedulePush();
    return this.result;
  }

  /**
   * Before the continuation for a synchronizing literal: an APPEND whose CATENATE parts name a URL
   * that resolves to nothing is answered `NO [BADURL url]` now, in place of the "+", so the client
   * sends none of the rest (RFC 4469 §5, RFC 3501 §2.2.1). Returns the outcome when it answered.
   */
  async beforeLiteral(parts: CommandParts): Promise<RequestResult | undefined> {
    if ((this.state !== 'auth' && this.state !== 'selected') || this.pendingLine) return undefined;
    if (!parts.some((p) => typeof p === 'string' && /\bCATENATE \(/i.test(p))) return undefined;
    let cmd: Command;
    try {
      cmd = parseCommandStart(parts);
    } catch {
      return undefined; // the whole command will get its BAD
    }
    if (cmd.name !== 'APPEND') return undefined;
    try {
      for (let i = 0; i < cmd.args.length; i++) {
        const t = cmd.args[i]!;
        if (t.kind !== 'atom' || t.value.toUpperCase() !== 'CATENATE' || cmd.args[i + 1]?.kind !== 'list') continue;
        const catParts = asList(cmd.args[i + 1]);
        for (let j = 0; j + 1 < catParts.length; j += 2) {
          const kind = catParts[j]!;
          if (kind.kind === 'atom' && kind.value.toUpperCase() === 'URL') await this.urlContent(asString(catParts[j + 1], 'URL'));
        }
      }
      return undefined;
    } catch (err) {
      if (!(err instanceof CommandError)) return undefined;
      await this.send(tagged(cmd.tag, err.status, err.message, err.code));
      await this.flush();
      return { command: 'append', outcome: err.status.toLowerCase() };
    }
  }

  private async handleCommand(parts: CommandParts): Promise<void> {
    if (this.state === 'logout') return;
    if (this.pendingLine) {
      const fn = this.pendingLine;
      this.pendingLine = null;
      const line = typeof parts[0] === 'string' && parts.length === 1 ? parts[0] : '';
      this.result = { command: this.pendingCommand, outcome: (await fn(line)).toLowerCase() };
      return;
    }
    let tag = '*';
    let command = 'other';
    try {
      const cmd = parseCommand(parts);
      tag = cmd.tag;
      command = commandLabel(cmd.name);
      const reply = await this.dispatch(cmd.tag, cmd.name, cmd.args);
      if (reply === null) {
        // counted when its last line comes, or now (LOGOUT, STARTTLS)
        if (this.pendingLine) this.pendingCommand = command;
        else this.result = { command, outcome: 'ok' };
        return;
      }
      this.result = { command, outcome: reply.status.toLowerCase() };
      if (reply.status === 'BAD') await this.countBad();
      else this.badCount = 0;
      if (!this.closed || reply.status === 'OK') await this.send(tagged(tag, reply.status, reply.text, reply.code));
    } catch (err) {
      let reply: Reply;
      if (err instanceof ParseError) {
        tag = err.tag ?? tag;
        reply = { status: 'BAD', text: err.message };
      } else if (err instanceof CommandError) reply = { status: err.status, text: err.message, code: err.code };
      else if (err instanceof MailStoreError) reply = storeErrorReply(err);
      else if (isNoSpace(err)) {
        // RFC 5530: only what needs space fails; reading, flagging and expunging go on
        this.deps.logger.warn({ err, mailbox: this.account?.address }, 'mail storage is full; refused a command that needs space');
        reply = { status: 'NO', text: 'Not enough storage space; delete some mail', code: 'OVERQUOTA' };
      } else {
        this.deps.logger.error({ err }, 'IMAP command failed');
        reply = { status: 'NO', text: 'Internal error', code: 'SERVERBUG' };
      }
      this.result = { command, outcome: reply.status.toLowerCase() };
      if (reply.status === 'BAD') await this.countBad();
      if (!this.closed) await this.send(tag === '*' ? status('BAD', reply.text) : tagged(tag, reply.status, reply.text, reply.code));
    }
  }

  private async dispatch(tag: string, name: string, args: Token[]): Promise<Reply | null> {
    const allowed = ANY.has(name) ? true : NOTAUTH.has(name) ? this.state === 'notauth' : AUTH.has(name) ? this.state === 'auth' || this.state === 'selected' : SELECTED.has(name) ? this.state === 'selected' : null;
    if (allowed === null) throw new CommandError('BAD', `Unknown command ${name.slice(0, 30)}`);
    if (!allowed) throw new CommandError('BAD', `${name} is not valid in this state`);
    const reply = await this.run(tag, name, args);
    if (reply && this.view && this.state === 'selected') await this.flushUpdates(!NO_EXPUNGE.has(name));
    if (reply) await this.sendPending();
    return reply;
  }

  private async run(tag: string, name: string, args: Token[]): Promise<Reply | null> {
    switch (name) {
      case 'CAPABILITY':
        noArgs(args);
        await this.send(untagged(atom('CAPABILITY'), atom(this.capabilities())));
        return ok('CAPABILITY completed');
      case 'NOOP':
      case 'CHECK':
        noArgs(args);
        await this.view?.folder.refresh();
        return ok(`${name} completed`);
      case 'LOGOUT':
        noArgs(args);
        await this.send(status('BYE', 'Logging out'));
        this.state = 'logout';
        await this.send(tagged(tag, 'OK', 'LOGOUT completed'));
        await this.flush();
        this.deselect();
        this.io.close();
        return null;
      case 'ID':
        await this.send(untagged(atom('ID'), ['name', 'Hearth', 'vendor', 'Hearth']));
        return ok('ID completed');
      case 'STARTTLS':
        noArgs(args);
        if (!this.deps.tlsAvailable || this.io.secure) throw new CommandError('BAD', 'STARTTLS not available');
        await this.send(tagged(tag, 'OK', 'Begin TLS negotiation now'));
        await this.flush();
        await this.io.startTls();
        return null;
      case 'COMPRESS': {
        if (args.length !== 1) throw new ParseError('COMPRESS takes one mechanism');
        if (asAtom(args[0], 'mechanism').toUpperCase() !== 'DEFLATE') return { status: 'NO', text: 'Unknown compression mechanism', code: 'CANNOT' };
        if (this.compressed) return { status: 'NO', text: 'Compression is already on', code: 'COMPRESSIONACTIVE' };
        // The OK goes out uncompressed; everything after it, both ways, is DEFLATE (RFC 4978 §3).
        await this.send(tagged(tag, 'OK', 'DEFLATE active'));
        const written = this.flush();
        this.io.startDeflate();
        this.compressed = true;
        await written;
        return null;
      }
      case 'LOGIN':
      case 'AUTHENTICATE':
        if (this.loginDisabled) return { status: 'NO', text: 'Use STARTTLS before logging in', code: 'PRIVACYREQUIRED' };
        if (name === 'AUTHENTICATE') return this.authenticate(tag, args);
        if (args.length !== 2) throw new ParseError('LOGIN needs a user name and a password');
        return this.login(asUtf8(args[0], 'user name'), asUtf8(args[1], 'password'));
      case 'SELECT':
      case 'EXAMINE':
        return this.select(args, name === 'EXAMINE');
      case 'CREATE':
        // A trailing hierarchy delimiter only says the client means to create children (RFC 3501 §6.3.3).
        await this.acct().createFolder(this.mailboxArg(args[0], true), this);
        return ok('CREATE completed');
      case 'DELETE': {
        const n = this.mailboxArg(args[0]);
        if (this.view && this.view.folder.name === n) {
          this.deselect();
          this.state = 'auth';
        }
        // RFC 9051 §6.3.4: a \Noselect name with inferiors cannot be deleted, and §7.1 names the reason
        if (this.rev2 && !(await this.acct().exists(n)) && (await this.acct().listFolders()).some((f) => f.name === n && f.noSelect))
          no('Mailbox has children that need to be deleted first', 'HASCHILDREN');
        await this.acct().deleteFolder(n, this);
        return ok('DELETE completed');
      }
      case 'RENAME':
        await this.acct().renameFolder(this.mailboxArg(args[0]), this.mailboxArg(args[1]), this);
        return ok('RENAME completed');
      case 'SUBSCRIBE':
        await this.acct().subscribe(this.mailboxArg(args[0]), this);
        return ok('SUBSCRIBE completed');
      case 'UNSUBSCRIBE':
        await this.acct().unsubscribe(this.mailboxArg(args[0]), this);
        return ok('UNSUBSCRIBE completed');
      case 'LIST':
      case 'LSUB':
        return this.list(args, name === 'LSUB');
      case 'STATUS':
        return this.statusCmd(args);
      case 'APPEND':
        return this.append(args);
      case 'NAMESPACE':
        noArgs(args);
        await this.send(untagged(atom('NAMESPACE'), [['', DELIMITER]], null, null));
        return ok('NAMESPACE completed');
      case 'ENABLE': {
        const enabled: string[] = [];
        for (const t of args) {
          const cap = asAtom(t, 'capability').toUpperCase();
          if (enabled.includes(cap)) continue;
          if (cap === 'CONDSTORE') this.condstore = true;
          else if (cap === 'UTF8=ACCEPT') this.utf8Accept = true;
          else if (cap === 'QRESYNC') this.qresync = this.condstore = true;
          else if (cap === 'IMAP4REV2') {
            this.rev2 = true;
            // a session that enables it while selected stops reporting \Recent at once
            this.view?.recent.clear();
          } else continue;
          enabled.push(cap);
        }
        if (args.length === 0) throw new ParseError('ENABLE needs a capability');
        // named as CAPABILITY spells them
        await this.send(untagged(atom('ENABLED'), ...enabled.map((cap) => atom(cap === 'IMAP4REV2' ? 'IMAP4rev2' : cap))));
        return ok('ENABLE completed');
      }
      case 'IDLE':
        noArgs(args);
        return this.idle(tag);
      case 'NOTIFY':
        return this.notify(args);
      case 'GETQUOTAROOT': {
        const n = this.mailboxArg(args[0]);
        if (!(await this.acct().exists(n))) no('No such mailbox', 'NONEXISTENT');
        const q = this.hasQuota();
        await this.send(untagged(atom('QUOTAROOT'), this.shownName(n), ...(q ? [''] : [])));
        if (q) await this.send(await this.quotaResponse());
        return ok('GETQUOTAROOT completed');
      }
      case 'GETQUOTA':
        if (asString(args[0], 'quota root') !== '' || !this.hasQuota()) no('No such quota root', 'NONEXISTENT');
        await this.send(await this.quotaResponse());
        return ok('GETQUOTA completed');
      case 'SETQUOTA':
        return { status: 'NO', text: 'Quota is set by the administrator', code: 'NOPERM' };
      case 'CLOSE':
      case 'UNSELECT': {
        noArgs(args);
        const v = this.view!;
        this.deselect();
        this.state = 'auth';
        if (name === 'CLOSE' && !v.readOnly) await v.folder.expunge();
        return ok(`${name} completed`);
      }
      case 'EXPUNGE':
        noArgs(args);
        this.writable();
        await this.view!.folder.expunge();
        return ok('EXPUNGE completed');
      case 'UID EXPUNGE': {
        this.writable();
        const uids = this.messages(asAtom(args[0], 'UID set'), true).map((m) => m.uid);
        if (uids.length) await this.view!.folder.expunge(uids);
        return ok('UID EXPUNGE completed');
      }
      case 'SEARCH':
      case 'UID SEARCH':
        return this.search(tag, args, name === 'UID SEARCH', false);
      case 'SORT':
      case 'UID SORT':
        return this.search(tag, args, name === 'UID SORT', true);
      case 'THREAD':
      case 'UID THREAD':
        return this.thread(args, name === 'UID THREAD');
      case 'CANCELUPDATE': {
        // RFC 5267 §4.2: CANCELUPDATE "tag" …; every tag must name a search or sort kept up to date
        if (args.length === 0) throw new ParseError('CANCELUPDATE needs a tag');
        const tags = args.map((t) => asUtf8(t, 'tag'));
        if (tags.some((t) => !this.contexts.has(t))) return { status: 'NO', text: 'Unknown tag' };
        for (const t of tags) this.contexts.delete(t);
        return ok('CANCELUPDATE completed');
      }
      case 'FETCH':
      case 'UID FETCH':
        return this.fetch(args, name === 'UID FETCH');
      case 'STORE':
      case 'UID STORE':
        return this.store(args, name === 'UID STORE');
      case 'COPY':
      case 'UID COPY':
      case 'MOVE':
      case 'UID MOVE':
        return this.copy(args, name.startsWith('UID '), name.endsWith('MOVE'));
    }
    throw new CommandError('BAD', 'Unknown command');
  }

  /** Mailbox names are UTF-8 on the wire after ENABLE UTF8=ACCEPT (RFC 6855 §3) or IMAP4rev2 (RFC 9051 §5.1). */
  private get utf8Names(): boolean {
    return this.utf8Accept || this.rev2;
  }

  /**
   * A mailbox argument as the store names it: modified UTF-7, validated (8-bit names are refused),
   * or after ENABLE UTF8=ACCEPT or IMAP4rev2 UTF-8, encoded to it (RFC 6855 §3, RFC 9051 §5.1). CREATE drops one trailing delimiter.
   */
  private mailboxArg(t: Token | undefined, creating = false): string {
    let given: string;
    if (this.utf8Names) {
      const text = asUtf8(t, 'mailbox name');
      // RFC 6855 §3, RFC 9051 §5.1: Net-Unicode without control characters
      if (NOT_NET_UNICODE.test(text)) no('Mailbox names may not hold control characters', 'CANNOT');
      given = encodeMutf7(text);
    } else given = asString(t, 'mailbox name');
    const name = creating && given.length > 1 && given.endsWith(DELIMITER) ? given.slice(0, -1) : given;
    return checkedFolderName(name);
  }

  /**
   * A stored folder name as this client reads it: a UTF-8 quoted string after ENABLE UTF8=ACCEPT
   * (RFC 6855 §3) or IMAP4rev2, else as stored. A name an IMAP4rev1 client made with control
   * characters in it (`&AA0-` is CR) has no UTF-8 form and is shown as stored.
   */
  private shownName(name: string): Value {
    const text = this.utf8Text(name);
    if (text === null || /^[\x20-\x7e]*$/.test(text)) return text ?? name;
    return raw(`"${Buffer.from(text.replace(/[\\"]/g, (c) => `\\${c}`), 'utf8').toString('latin1')}"`);
  }

  /** A stored name's UTF-8 form when this client reads names in UTF-8 and it has one (see shownName). */
  private utf8Text(name: string): string | null {
    const decoded = this.utf8Names ? decodeMutf7(name) : null;
    return decoded !== null && !NOT_NET_UNICODE.test(decoded) ? decoded : null;
  }

  private acct(): Account {
    return this.account!;
  }

  private writable(): void {
    if (this.view?.readOnly) no('Mailbox is read-only', 'READ-ONLY');
  }

  // ---- authentication ----

  private async login(login: string, password: string): Promise<Reply> {
    const res = await mailLogin(this.deps.directory, { login, password, protocol: 'imap', remote: this.io.remote });
    if (!res.ok) {
      if (++this.authFailures >= MAX_AUTH_FAILURES) {
        await this.bye('Too many failed logins');
        return { status: 'NO', text: 'Authentication failed', code: 'AUTHENTICATIONFAILED' };
      }
      if (res.reason === 'throttled') return { status: 'NO', text: 'Too many failed logins, try later', code: 'UNAVAILABLE' };
      if (res.reason === 'no_mailbox') return { status: 'NO', text: 'No mailbox for this account', code: 'AUTHORIZATIONFAILED' };
      return { status: 'NO', text: 'Authentication failed', code: 'AUTHENTICATIONFAILED' };
    }
    this.account = await this.deps.store.open(res.address);
    this.principal = res.principal;
    this.state = 'auth';
    this.deps.logger.info({ login: res.principal.name, remote: this.io.remote }, 'IMAP login');
    return { status: 'OK', text: 'Logged in', code: `CAPABILITY ${this.capabilities()}` };
  }

  private async authenticate(tag: string, args: Token[]): Promise<Reply | null> {
    const mech = asAtom(args[0], 'mechanism').toUpperCase();
    if (mech !== 'PLAIN') return { status: 'NO', text: 'Unsupported mechanism', code: 'CANNOT' };
    const finish = async (b64: string): Promise<Reply> => {
      if (b64 === '*') throw new CommandError('BAD', 'AUTHENTICATE cancelled');
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new CommandError('BAD', 'Invalid base64');
      const fields = Buffer.from(b64, 'base64').toString('utf8').split('\0');
      if (fields.length !== 3) throw new CommandError('BAD', 'Invalid PLAIN response');
      const [authz, authc, password] = fields as [string, string, string];
      if (authz && authz !== authc) return { status: 'NO', text: 'Proxy authorization not allowed', code: 'AUTHORIZATIONFAILED' };
      return this.login(authc, password);
    };
    if (args[1]) return finish(args[1].kind === 'atom' && args[1].value === '=' ? '' : asAtom(args[1], 'initial response'));
    await this.send(continuation(''));
    this.pendingLine = async (line) => {
      let reply: Reply;
      try {
        reply = await finish(line);
      } catch (err) {
        reply = err instanceof CommandError ? { status: err.status, text: err.message } : { status: 'NO', text: 'Authentication failed' };
      }
      if (this.state !== 'logout') await this.send(tagged(tag, reply.status, reply.text, reply.code));
      return reply.status;
    };
    return null;
  }

  // ---- mailbox selection and updates ----

  private deselect(): void {
    this.saved = new Set();
    this.contexts.clear();
    if (!this.view) return;
    this.view.stop();
    this.notifier?.resync(this.view.folder.name);
    this.view = null;
  }

  private async select(args: Token[], readOnly: boolean): Promise<Reply> {
    const name = this.mailboxArg(args[0]);
    let resync: Resync | null = null;
    if (args[1]) {
      const params = asList(args[1], 'select parameters');
      for (let j = 0; j < params.length; j++) {
        const p = asAtom(params[j], 'select parameter').toUpperCase();
        if (p === 'CONDSTORE') this.condstore = true;
        // RFC 7162 §3.2.5: QRESYNC (uidvalidity modseq [known-uids [seq-match]]), only once enabled
        else if (p === 'QRESYNC' && this.qresync) resync = parseQresync(asList(params[++j], 'QRESYNC parameters'));
        else throw new ParseError('unknown SELECT parameter');
      }
    }
    this.saved = new Set();
    this.contexts.clear();
    const previous = this.view;
    if (previous) {
      // The old watch is released only after the new one exists, so reselecting keeps inotify set up.
      this.view = null;
      this.state = 'auth';
      this.notifier?.resync(previous.folder.name);
      // RFC 7162 §3.2.11, and RFC 9051 §6.3.2 for every IMAP4rev2 client
      if (this.condstore || this.rev2) await this.send(status('OK', 'Previous mailbox closed', 'CLOSED'));
    }
    let folder: Folder;
    let recent: number[];
    try {
      folder = await this.acct().folder(name);
      await folder.refresh();
      // SELECT takes the messages no session has seen yet; EXAMINE shows them but leaves them for the next SELECT.
      // An IMAP4rev2 session has no \Recent (RFC 9051 §2.3.2), so it leaves them to IMAP4rev1 sessions.
      recent = this.rev2 ? [] : folder.unclaimedRecent();
      if (!readOnly && recent.length) recent = await folder.claimRecent();
    } finally {
      if (previous) setImmediate(previous.stop);
    }
    const view: View = {
      folder,
      readOnly,
      uids: folder.uids,
      modseqSeen: folder.highestModseq,
      expunges: folder.expunges,
      keywords: folder.permanentKeywords.length,
      recent: new Set(recent),
      dirty: false,
      stop: () => {},
    };
    const onChange = (): void => {
      view.dirty = true;
      if (this.idleFlush) this.idleFlush();
      else if (this.notifying?.selected) this.schedulePush();
    };
    folder.on('change', onChange);
    const unwatch = folder.watch();
    view.stop = () => {
      folder.off('change', onChange);
      unwatch();
    };
    this.view = view;
    this.state = 'selected';
    const firstUnseen = folder.firstUnseen;
    await this.send(this.flagsAnnouncement(folder, readOnly));
    // RFC 9051 §6.3.2: no RECENT and no UNSEEN code, but the mailbox's LIST response, named as the client should use it
    if (this.rev2) await this.send(await this.selectedList(folder.name));
    const rev1Lines = this.rev2 ? '' : `* ${view.recent.size} RECENT\r\n${firstUnseen >= 0 ? `* OK [UNSEEN ${firstUnseen + 1}] First unseen\r\n` : ''}`;
    await this.send(
      Buffer.from(
        `* ${view.uids.length} EXISTS\r\n${rev1Lines}` +
          `* OK [UIDVALIDITY ${folder.uidValidity}] UIDs valid\r\n* OK [UIDNEXT ${folder.uidNext}] Predicted next UID\r\n* OK [HIGHESTMODSEQ ${folder.highestModseq}] Highest\r\n`,
        'latin1',
      ),
    );
    // a client that still knows the mailbox under this UIDVALIDITY learns what changed since its MODSEQ
    if (resync && resync.uidValidity === folder.uidValidity) {
      const known = resync.knownUids;
      await this.sendVanishedEarlier(folder, resync.modseq, (u) => !known || known(u));
      // the view was just made from the folder's messages, so message i is sequence number i + 1
      const msgs = folder.messages;
      let text = '';
      for (let i = 0; i < msgs.length; i++) {
        const rec = msgs[i]!;
        if (rec.modseq > resync.modseq && (!known || known(rec.uid))) text += this.flagsLine(i + 1, rec, true);
      }
      if (text) await this.send(Buffer.from(text, 'latin1'));
    }
    return { status: 'OK', text: `${readOnly ? 'EXAMINE' : 'SELECT'} completed`, code: readOnly ? 'READ-ONLY' : 'READ-WRITE' };
  }

  /** `* LIST (attributes) "." name` for the mailbox just selected, its attributes as LIST gives them. */
  private async selectedList(name: string): Promise<Buffer> {
    const info = (await this.acct().listFolders()).find((f) => f.name === name) ?? { name, specialUse: null, hasChildren: false, noSelect: false };
    return untagged(atom('LIST'), mailboxAttributes(info).map(atom), DELIMITER, this.shownName(name));
  }

  /**
   * `* VANISHED (EARLIER)` (RFC 7162 §3.2.10) for the UIDs `wanted` names that were expunged
   * after `modseq`; when the folder's history does not reach back so far, every such UID below
   * UIDNEXT that is not there now.
   */
  private async sendVanishedEarlier(folder: Folder, modseq: number, wanted: (uid: number) => boolean): Promise<void> {
    let gone = folder.vanishedSince(modseq);
    if (gone === null) {
      gone = [];
      for (let u = 1; u < folder.uidNext; u++) if (!folder.get(u)) gone.push(u);
    }
    gone = gone.filter((u) => wanted(u) && !folder.get(u));
    if (gone.length) await this.send(Buffer.from(`* VANISHED (EARLIER) ${compactSet(gone)}\r\n`, 'latin1'));
  }

  /** FLAGS and PERMANENTFLAGS for a folder (at SELECT, and again when a keyword is added); built once per keyword set. */
  private flagsAnnouncement(folder: Folder, readOnly: boolean): Buffer {
    const keywords = folder.permanentKeywords.join(' ');
    let known = announcements.get(folder);
    if (known?.keywords !== keywords) {
      const flagList = [...SYSTEM_FLAGS, ...folder.permanentKeywords].map(atom);
      const build = (permanent: Value[]): Buffer =>
        Buffer.concat([untagged(atom('FLAGS'), flagList), status('OK', 'Flags permitted', `PERMANENTFLAGS ${toBuffer(encodeValue(permanent)).toString('latin1')}`)]);
      known = { keywords, readWrite: build([...flagList, ...(folder.canAddKeywords ? [atom('\\*')] : [])]), readOnly: build([]) };
      announcements.set(folder, known);
    }
    return readOnly ? known.readOnly : known.readWrite;
  }

  /** Reports what changed in the selected folder: EXPUNGE (when allowed), EXISTS, FETCH FLAGS. */
  private async flushUpdates(allowExpunge: boolean): Promise<void> {
    const v = this.view;
    if (!v) return;
    const f = v.folder;
    if (f.gone) {
      await this.bye('Selected mailbox was deleted');
      return;
    }
    v.dirty = false;
    // After NOTIFY the client gets only the selected mailbox's events it asked for (RFC 5465: none without a SELECTED group).
    const wanted = this.notifying ? (this.notifying.selected?.events ?? new Set<NotifyEvent>()) : null;
    const wants = (e: NotifyEvent): boolean => !wanted || wanted.has(e);
    let claimed = false;
    if (!v.readOnly && !this.rev2 && f.unclaimedRecent().length) {
      const uids = await f.claimRecent().catch(() => []);
      // IDLE's flush may still run after the client has selected another mailbox.
      if (this.view !== v) return;
      for (const uid of uids) v.recent.add(uid);
      claimed = uids.length > 0;
    }
    const before = v.uids;
    const out: Buffer[] = [];
    if (f.permanentKeywords.length !== v.keywords) {
      v.keywords = f.permanentKeywords.length;
      out.push(this.flagsAnnouncement(f, v.readOnly));
    }
    if (allowExpunge && wants('MessageExpunge') && v.expunges !== f.expunges) {
      const vanished: number[] = [];
      for (let i = v.uids.length - 1; i >= 0; i--) {
        if (f.get(v.uids[i]!)) continue;
        // after ENABLE QRESYNC one VANISHED with the UIDs replaces the EXPUNGEs (RFC 7162 §3.2.10)
        if (this.qresync) vanished.push(v.uids[i]!);
        else out.push(untagged(i + 1, atom('EXPUNGE')));
        v.recent.delete(v.uids[i]!);
      }
      if (vanished.length) out.push(Buffer.from(`* VANISHED ${compactSet(vanished.reverse())}\r\n`, 'latin1'));
      v.uids = v.uids.filter((u) => f.get(u));
      v.expunges = f.expunges;
    }
    const last = v.uids[v.uids.length - 1] ?? 0;
    const msgs = f.messages;
    let lo = 0;
    let hi = msgs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (msgs[mid]!.uid <= last) lo = mid + 1;
      else hi = mid;
    }
    if (f.highestModseq > v.modseqSeen) {
      for (let i = 0; i < v.uids.length && wants('FlagChange'); i++) {
        // with nothing expunged since the view was made, message i of the folder is still sequence i + 1; else by UID
        const rec = msgs[i]?.uid === v.uids[i] ? msgs[i] : f.get(v.uids[i]!);
        if (!rec || rec.modseq <= v.modseqSeen || this.reported.get(rec.uid) === rec.modseq) continue;
        // after ENABLE QRESYNC (RFC 7162 §3.2.4) or IMAP4rev2 (RFC 9051 §7.5.2) unsolicited FETCH carries the UID
        out.push(this.flagsResponse(i + 1, rec, this.qresync || this.rev2));
      }
      v.modseqSeen = f.highestModseq;
    }
    const arrived: number[] = [];
    if (lo < msgs.length && wants('MessageNew')) {
      const grown = [...v.uids];
      for (let i = lo; i < msgs.length; i++) {
        const uid = msgs[i]!.uid;
        grown.push(uid);
        arrived.push(uid);
        if (v.readOnly && !this.rev2 && uid >= f.firstRecentUid) v.recent.add(uid);
      }
      v.uids = grown;
      out.push(untagged(v.uids.length, atom('EXISTS')));
    }
    // Also after a claim alone: a concurrent flush (IDLE's, then DONE's) may have sent the EXISTS already.
    if ((arrived.length || (claimed && wants('MessageNew'))) && !this.rev2) out.push(untagged(v.recent.size, atom('RECENT')));
    this.reported.clear();
    if (this.contexts.size) {
      // REMOVEFROM in the numbers before this flush's EXPUNGEs, ADDTO in those after its EXISTS
      const { removals, additions } = await this.contextUpdates(before, allowExpunge);
      if (this.view !== v) return;
      out.unshift(...removals);
      out.push(...additions);
    }
    if (out.length) await this.send(Buffer.concat(out));
    // NOTIFY's MessageNew (fetch-att): the new messages' FETCH follows their EXISTS (RFC 5465 §5)
    const fetchAtt = this.notifying?.selected?.fetch;
    if (fetchAtt && arrived.length && this.view === v) await this.fetch([{ kind: 'atom', value: compactSet(arrived) }, { kind: 'list', items: fetchAtt }], true);
  }

  /**
   * CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4.3): each kept search run again where the messages
   * changed since, and `* ESEARCH (TAG …) [UID] REMOVEFROM/ADDTO (position set …)` for what left or
   * joined its result: position 0 for a SEARCH (its result has no order), for a SORT the position
   * in the sorted result (§4.3.3, §4.3.4). While EXPUNGE may not be sent, an expunged message
   * stays in the result, as it stays in the numbering.
   */
  private async contextUpdates(before: readonly number[], allowExpunge: boolean): Promise<{ removals: Buffer[]; additions: Buffer[] }> {
    const v = this.view!;
    const removals: Buffer[] = [];
    const additions: Buffer[] = [];
    const stamp = contextStamp(v);
    let oldSeq: Map<number, number> | null = null;
    let newSeq: Map<number, number> | null = null;
    for (const [tag, ctx] of this.contexts) {
      if (ctx.stamp === stamp) continue;
      const { seqs } = await this.matching(ctx.key, ctx.saved);
      const sortedSeqs = ctx.sort ? await this.sorted(seqs, ctx.sort.criteria) : null;
      if (this.view !== v) break;
      ctx.stamp = stamp;
      const now = new Set(seqs.map((seq) => v.uids[seq - 1]!));
      const gone = [...ctx.members].filter((u) => !now.has(u) && (allowExpunge || v.folder.get(u)));
      const added = [...now].filter((u) => !ctx.members.has(u));
      for (const u of gone) ctx.members.delete(u);
      for (const u of added) ctx.members.add(u);
      const line = (what: string, nums: number[]): Buffer => Buffer.from(`* ESEARCH (TAG "${tag}")${ctx.uid ? ' UID' : ''} ${what} (0 ${compactSet(nums)})\r\n`, 'latin1');
      // expunged ones before the EXPUNGEs (old numbers); flag changes and new messages after (new numbers), as Dovecot orders them
      const expunged = gone.filter((u) => !v.folder.get(u));
      const unflagged = gone.filter((u) => v.folder.get(u));
      if (ctx.sort) {
        oldSeq ??= new Map(before.map((u, i) => [u, i + 1]));
        newSeq ??= new Map(v.uids.map((u, i) => [u, i + 1]));
        const sortLine = (what: string, runs: PositionedRun[], seqOf: Map<number, number>): Buffer => {
          const pairs = runs.map((r) => `${r.position} ${orderedSet(ctx.uid ? r.uids : r.uids.map((u) => seqOf.get(u)!))}`);
          return Buffer.from(`* ESEARCH (TAG "${tag}")${ctx.uid ? ' UID' : ''} ${what} (${pairs.join(' ')})\r\n`, 'latin1');
        };
        // each line's positions count in the result as the lines before it left it (§4.3.2: processed in order)
        let order = ctx.sort.order;
        if (expunged.length) {
          const out = removeRuns(order, new Set(expunged));
          order = out.rest;
          removals.push(sortLine('REMOVEFROM', out.runs, oldSeq));
        }
        if (unflagged.length) {
          const out = removeRuns(order, new Set(unflagged));
          order = out.rest;
          additions.push(sortLine('REMOVEFROM', out.runs, newSeq));
        }
        if (added.length) {
          const out = insertRuns(order, sortedSeqs!.map((seq) => v.uids[seq - 1]!), new Set(added));
          order = out.merged;
          additions.push(sortLine('ADDTO', out.runs, newSeq));
        }
        ctx.sort.order = order;
        continue;
      }
      if (expunged.length) {
        oldSeq ??= new Map(before.map((u, i) => [u, i + 1]));
        removals.push(line('REMOVEFROM', ctx.uid ? expunged : expunged.map((u) => oldSeq!.get(u)!)));
      }
      if (unflagged.length || added.length) newSeq ??= new Map(v.uids.map((u, i) => [u, i + 1]));
      if (unflagged.length) additions.push(line('REMOVEFROM', ctx.uid ? unflagged : unflagged.map((u) => newSeq!.get(u)!)));
      if (added.length) additions.push(line('ADDTO', ctx.uid ? added : added.map((u) => newSeq!.get(u)!)));
    }
    return { removals, additions };
  }

  /** A message's flags as this session sees them: the stored ones, plus \Recent when it is recent here. */
  private flagsOf(rec: MessageRecord): readonly string[] {
    return this.view?.recent.has(rec.uid) ? [...rec.flags, '\\Recent'] : rec.flags;
  }

  /** `(flags)` as FETCH sends it; a message's stored flags are formatted once and kept with them. */
  private flagsText(rec: MessageRecord): string {
    if (this.view?.recent.has(rec.uid)) return `(${[...rec.flags, '\\Recent'].join(' ')})`;
    let text = flagTexts.get(rec.flags);
    if (text === undefined) flagTexts.set(rec.flags, (text = `(${rec.flags.join(' ')})`));
    return text;
  }

  private flagsResponse(seq: number, rec: MessageRecord, withUid: boolean): Buffer {
    return Buffer.from(this.flagsLine(seq, rec, withUid), 'latin1');
  }

  /** `* seq FETCH (FLAGS (...) [UID u] [MODSEQ (m)])`: flags are atoms, so the kept flag text is the encoding */
  private flagsLine(seq: number, rec: MessageRecord, withUid: boolean): string {
    return `* ${seq} FETCH (FLAGS ${this.flagsText(rec)}${withUid ? ` UID ${rec.uid}` : ''}${this.condstore ? ` MODSEQ (${rec.modseq})` : ''})\r\n`;
  }

  private async idle(tag: string): Promise<Reply | null> {
    await this.view?.folder.refresh();
    if (this.view) await this.flushUpdates(true);
    await this.send(continuation('idling'));
    this.idleFlush = () => this.schedulePush();
    this.pendingLine = async (line) => {
      this.idleFlush = null;
      if (line.toUpperCase() !== 'DONE') {
        await this.send(tagged(tag, 'BAD', 'Expected DONE'));
        await this.countBad();
        return 'BAD';
      }
      await this.flushUpdates(true);
      await this.send(tagged(tag, 'OK', 'IDLE terminated'));
      return 'OK';
    };
    return null;
  }

  /**
   * Writes what changed while no command runs: during IDLE, and after NOTIFY (which lifts IMAP4rev1's
   * wait for a command) the selected mailbox's updates (SELECTED-DELAYED keeps expunges for a command)
   * and the other mailboxes' notifications. One batch at a time; a command waits for it.
   */
  private schedulePush(): void {
    if (this.busy || this.closed || this.pushQueued) return;
    this.pushQueued = true;
    const run = (this.pushing ?? Promise.resolve()).then(async () => {
      this.pushQueued = false;
      if (this.busy || this.closed) return;
      const v = this.view;
      const sel = this.notifying?.selected;
      if (v && this.state === 'selected' && (this.idleFlush || sel)) await this.flushUpdates(!!this.idleFlush || !!sel?.immediate).catch(() => {});
      await this.sendPending().catch(() => {});
      await this.flush().catch(() => {});
    }).catch((err: unknown) => this.deps.logger.warn({ err }, 'IMAP unsolicited update failed'));
    this.pushing = run;
    void run.finally(() => {
      if (this.pushing === run) this.pushing = null;
    });
  }

  /** Queues notifications for other mailboxes (NotifyHost.deliver); too many unsent ones end NOTIFY. */
  private deliver(responses: Buffer[]): void {
    if (!this.notifier) return;
    for (const r of responses) {
      this.pending.push(r);
      this.pendingBytes += r.length;
    }
    if (this.pendingBytes > (this.deps.settings.notifyBacklogBytes ?? NOTIFY_BACKLOG_BYTES)) {
      // RFC 5465 NOTIFICATIONOVERFLOW: the server gives up and acts as after NOTIFY NONE; the client must resynchronize
      this.pending = [status('OK', 'Too many notifications; NOTIFY is now off', 'NOTIFICATIONOVERFLOW')];
      this.pendingBytes = 0;
      this.notifier.stop();
      this.notifier = null;
      this.notifying = NOTIFY_NONE;
    }
    this.schedulePush();
  }

  private async sendPending(): Promise<void> {
    if (!this.pending.length) return;
    const out = Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    await this.send(out);
  }

  /** NOTIFY SET / NOTIFY NONE (RFC 5465): replaces what was asked before. */
  private async notify(args: Token[]): Promise<Reply> {
    let config: NotifyConfig;
    try {
      config = notifyConfig(parseNotify(args), (t) => this.mailboxArg(t));
    } catch (err) {
      if (err instanceof NotifyRefused) return { status: 'NO', text: err.message, code: err.code };
      throw err;
    }
    this.notifier?.stop();
    this.notifier = null;
    this.pending = [];
    this.pendingBytes = 0;
    const notifier = new Notifier(
      config,
      {
        account: this.acct(),
        selectedName: () => this.view?.folder.name ?? null,
        condstore: () => this.condstore,
        shownName: (name) => this.shownName(name),
        deliver: (responses) => {
          if (this.notifier === notifier) this.deliver(responses);
        },
      },
      this,
    );
    let statuses: Buffer[];
    try {
      statuses = await notifier.start();
    } catch (err) {
      notifier.stop();
      if (err instanceof NotifyRefused) return { status: 'NO', text: err.message, code: err.code };
      throw err;
    }
    this.notifier = config.groups.length ? notifier : null;
    if (!this.notifier) notifier.stop();
    this.notifying = config;
    if (statuses.length) await this.send(Buffer.concat(statuses));
    return ok('NOTIFY completed');
  }

  /**
   * The selected messages a set names, in sequence order, with their sequence numbers.
   * `expunged` counts those this session still numbers but another one has expunged.
   */
  private messages(set: string, uid: boolean, expunged = { count: 0 }): { seq: number; rec: MessageRecord; uid: number }[] {
    const v = this.view!;
    const out: { seq: number; rec: MessageRecord; uid: number }[] = [];
    if (set === '$') {
      // the saved result, whether or not the command is a UID one; expunged messages drop out
      v.uids.forEach((u, i) => {
        const rec = this.saved.has(u) ? v.folder.get(u) : undefined;
        if (rec) out.push({ seq: i + 1, rec, uid: u });
      });
      return out;
    }
    const parsed = parseSequenceSet(set);
    if (uid) {
      const test = resolveSequenceSet(parsed, v.uids[v.uids.length - 1] ?? 0);
      v.uids.forEach((u, i) => {
        const rec = v.folder.get(u);
        if (rec && test(u)) out.push({ seq: i + 1, rec, uid: u });
      });
      return out;
    }
    if (maxOfSet(parsed, v.uids.length) > v.uids.length) throw new CommandError('BAD', 'Invalid message sequence number');
    const test = resolveSequenceSet(parsed, v.uids.length);
    v.uids.forEach((u, i) => {
      if (!test(i + 1)) return;
      const rec = v.folder.get(u);
      if (rec) out.push({ seq: i + 1, rec, uid: u });
      else expunged.count++;
    });
    return out;
  }

  // ---- mailbox management ----

  private async list(args: Token[], lsub: boolean): Promise<Reply> {
    let i = 0;
    const selection = new Set<string>();
    if (!lsub && args[0]?.kind === 'list') {
      for (const t of args[0].items) selection.add(asAtom(t, 'selection option').toUpperCase());
      // RFC 5258 §3: unknown options are BAD, and RECURSIVEMATCH only refines another one
      for (const o of selection) if (!LIST_SELECTION.has(o)) throw new ParseError(`unknown LIST selection option ${o.slice(0, 30)}`);
      if (selection.has('RECURSIVEMATCH') && !selection.has('SUBSCRIBED') && !selection.has('SPECIAL-USE')) throw new ParseError('RECURSIVEMATCH needs another selection option');
      i = 1;
    }
    const ref = asString(args[i], 'reference');
    const patTok = args[i + 1];
    const patterns = patTok?.kind === 'list' && !lsub ? patTok.items.map((t) => asString(t, 'pattern')) : [asString(patTok, 'pattern')];
    const returns = new Set<string>();
    // RETURN (STATUS (items)) of LIST-STATUS (RFC 5819)
    let statusOf: string[] | null = null;
    if (args[i + 2]) {
      if (lsub || asAtom(args[i + 2], 'RETURN').toUpperCase() !== 'RETURN') throw new ParseError('unexpected LIST argument');
      const opts = asList(args[i + 3], 'return options');
      for (let j = 0; j < opts.length; j++) {
        const opt = asAtom(opts[j], 'return option').toUpperCase();
        if (opt === 'STATUS') statusOf = statusItems(opts[++j], this.rev2);
        else if (LIST_RETURN.has(opt)) returns.add(opt);
        else throw new ParseError(`unknown LIST return option ${opt.slice(0, 30)}`);
      }
    }
    const cmd = lsub ? 'LSUB' : 'LIST';
    if (patterns.length === 1 && patterns[0] === '' && !lsub) {
      await this.send(untagged(atom('LIST'), [atom('\\Noselect')], DELIMITER, ''));
      return ok('LIST completed');
    }
    const acct = this.acct();
    const folders = await acct.listFolders();
    const subs = new Set(await acct.subscriptions());
    const onlySubscribed = lsub || selection.has('SUBSCRIBED');
    const showSubscribed = returns.has('SUBSCRIBED') || selection.has('SUBSCRIBED');
    // After ENABLE UTF8=ACCEPT or IMAP4rev2 patterns are UTF-8 and match the decoded names (a modified UTF-7 prefix is no prefix of the name's).
    const res = patterns.map((p) => patternRegex(this.utf8Names ? Buffer.from(ref + p, 'latin1').toString('utf8') : ref + p));
    const matching = (name: string): boolean => {
      const shown = this.utf8Text(name) ?? name;
      return res.some((re) => re.test(shown));
    };
    const out: Buffer[] = [];
    // LIST (SUBSCRIBED) also names subscriptions whose mailbox is gone, as \NonExistent (RFC 5258 §3).
    const candidates: (FolderInfo & { nonExistent?: boolean })[] = [...folders];
    if (selection.has('SUBSCRIBED') && !lsub) {
      const known = new Set(folders.map((f) => f.name));
      for (const name of subs) if (!known.has(name)) candidates.push({ name, specialUse: null, hasChildren: false, noSelect: true, nonExistent: true });
      candidates.sort((a, b) => (a.name === 'INBOX' ? -1 : b.name === 'INBOX' ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    }
    const recursive = selection.has('RECURSIVEMATCH') && !lsub;
    // An extended LIST (selection options, several patterns or RETURN; RFC 5258 §3) says a level that only
    // exists because a mailbox below it does is \NonExistent (which implies \Noselect; Dovecot answers so too);
    // a plain LIST keeps RFC 3501 §6.3.8's \Noselect.
    const extended = !lsub && (args[0]?.kind === 'list' || patTok?.kind === 'list' || args[i + 2] !== undefined);
    for (const c of candidates) {
      const f = extended && c.noSelect ? { ...c, nonExistent: true } : c;
      if (!matching(f.name)) continue;
      const subscribed = f.name === 'INBOX' || subs.has(f.name);
      // RECURSIVEMATCH: a name that does not qualify itself but has a descendant that does (CHILDINFO).
      const childInfo = recursive && selection.has('SUBSCRIBED') && [...subs].some((n) => n.startsWith(f.name + DELIMITER));
      if (onlySubscribed && !subscribed && !childInfo) continue;
      if (selection.has('SPECIAL-USE') && !f.specialUse) continue;
      const attrs = mailboxAttributes(f);
      if (showSubscribed && subscribed) attrs.push('\\Subscribed');
      out.push(untagged(atom(cmd), attrs.map(atom), DELIMITER, this.shownName(f.name), ...(childInfo ? [['CHILDINFO', ['SUBSCRIBED']]] : [])));
      // RFC 5819 §2: a mailbox whose status cannot be read (deleted meanwhile) just has no STATUS line.
      const st = statusOf && !f.noSelect ? await this.statusResponse(f.name, statusOf).catch(() => null) : null;
      if (st) out.push(st);
    }
    // LSUB with "%": an unsubscribed level above a subscribed mailbox the pattern does not reach is listed \Noselect (RFC 3501 §6.3.9).
    if (lsub) {
      const shown = new Set<string>();
      for (const sub of subs) {
        if (matching(sub)) continue;
        const levels = sub.split(DELIMITER);
        for (let k = 1; k < levels.length; k++) {
          const parent = levels.slice(0, k).join(DELIMITER);
          if (subs.has(parent) || shown.has(parent) || !matching(parent)) continue;
          shown.add(parent);
          out.push(untagged(atom(cmd), [atom('\\Noselect')], DELIMITER, this.shownName(parent)));
        }
      }
    }
    if (out.length) await this.send(Buffer.concat(out));
    return ok(`${cmd} completed`);
  }

  private async statusCmd(args: Token[]): Promise<Reply> {
    const name = this.mailboxArg(args[0]);
    const items = statusItems(args[1], this.rev2);
    await this.send(await this.statusResponse(name, items));
    return ok('STATUS completed');
  }

  /** `* STATUS` for a mailbox (STATUS, and LIST-STATUS after each LIST line). */
  private async statusResponse(name: string, items: string[]): Promise<Buffer> {
    const folder = await this.acct().folder(name);
    await folder.refresh();
    const out: Value[] = [];
    for (const item of items) {
      out.push(atom(item));
      if (item === 'MESSAGES') out.push(folder.messages.length);
      else if (item === 'RECENT') out.push(folder.unclaimedRecent().length);
      else if (item === 'UIDNEXT') out.push(folder.uidNext);
      else if (item === 'UIDVALIDITY') out.push(folder.uidValidity);
      else if (item === 'UNSEEN') out.push(folder.messages.filter((m) => !m.flags.includes('\\Seen')).length);
      else if (item === 'DELETED') out.push(folder.messages.filter((m) => m.flags.includes('\\Deleted')).length);
      else if (item === 'SIZE') out.push(await mailboxSize(folder));
      else out.push(folder.highestModseq);
    }
    return untagged(atom('STATUS'), this.shownName(folder.name), out);
  }

  private hasQuota(): boolean {
    const q = this.deps.store.quota;
    return q.bytes > 0 || q.messages > 0;
  }

  /** RFC 9208: the resources that have a limit, usage against it (STORAGE in KiB). */
  private async quotaResponse(): Promise<Buffer> {
    const usage = await this.acct().usage();
    const q = this.deps.store.quota;
    const resources: Value[] = [];
    if (q.bytes) resources.push(atom('STORAGE'), Math.ceil(usage.bytes / 1024), Math.floor(q.bytes / 1024));
    if (q.messages) resources.push(atom('MESSAGE'), usage.messages, q.messages);
    return untagged(atom('QUOTA'), '', resources);
  }

  /**
   * APPEND of one message or several (MULTIAPPEND, RFC 3502: all or none are added), each given
   * as a literal or literal8 (RFC 3516), as CATENATE parts (RFC 4469) or as UTF8 (literal8) (RFC 6855).
   */
  private async append(args: Token[]): Promise<Reply> {
    const name = this.mailboxArg(args[0]);
    const messages: AppendedMessage[] = [];
    let i = 1;
    do {
      let flags: string[] = [];
      let date: Date | undefined;
      if (args[i]?.kind === 'list') flags = parseFlags(asList(args[i++]));
      const maybeDate = args[i];
      if (maybeDate?.kind === 'string' && !maybeDate.literal && args[i + 1]) {
        date = parseDateTime(maybeDate.value.toString('latin1'));
        i++;
      }
      const { raw, next } = await this.appendData(args, i);
      i = next;
      if (raw.length === 0) no('Empty message');
      if (raw.length > this.deps.settings.maxMessageBytes) no('Message too large', 'TOOBIG');
      // binary content with bare LFs would come back altered (the store serves a bare LF as CRLF): it is kept in base64
      messages.push({ raw: encodeBinaryParts(raw), flags, internalDate: date });
    } while (i < args.length);
    const acct = this.acct();
    if (!(await acct.exists(name))) no('No such mailbox', 'TRYCREATE');
    const added = await this.deps.store.appendAll(acct.address, name, messages);
    return { status: 'OK', text: 'APPEND completed', code: `APPENDUID ${added[0]!.uidValidity} ${compactSet(added.map((a) => a.uid!))}` };
  }

  /** One message's data at args[i]: a literal, `CATENATE (...)` or `UTF8 (literal8)`; with the index after it. */
  private async appendData(args: Token[], i: number): Promise<{ raw: Buffer; next: number }> {
    const t = args[i];
    if (t?.kind === 'string' && t.literal) return { raw: t.value, next: i + 1 };
    const ext = t?.kind === 'atom' ? t.value.toUpperCase() : '';
    if (ext === 'UTF8') {
      // RFC 6855 §4: only once UTF8=ACCEPT is enabled
      if (!this.utf8Accept) throw new ParseError('APPEND UTF8 needs ENABLE UTF8=ACCEPT');
      const inner = asList(args[i + 1], 'UTF8 message');
      if (inner.length !== 1 || inner[0]!.kind !== 'string' || !inner[0]!.literal) throw new ParseError('UTF8 takes one literal8');
      return { raw: inner[0]!.value, next: i + 2 };
    }
    if (ext !== 'CATENATE') throw new ParseError('APPEND needs a message literal');
    const parts = asList(args[i + 1], 'CATENATE parts');
    if (parts.length === 0 || parts.length % 2) throw new ParseError('CATENATE parts are TEXT literal or URL url pairs');
    const pieces: Buffer[] = [];
    let size = 0;
    for (let j = 0; j < parts.length; j += 2) {
      const kind = asAtom(parts[j], 'CATENATE part').toUpperCase();
      const value = parts[j + 1];
      let piece: Buffer;
      if (kind === 'TEXT' && value?.kind === 'string' && value.literal) piece = value.value;
      else if (kind === 'URL') piece = await this.urlContent(asString(value, 'URL'));
      else throw new ParseError('CATENATE parts are TEXT literal or URL url pairs');
      size += piece.length;
      // RFC 4469 §5: a result over the limit is TOOBIG
      if (size > this.deps.settings.maxMessageBytes) no('Message too large', 'TOOBIG');
      pieces.push(piece);
    }
    return { raw: Buffer.concat(pieces), next: i + 2 };
  }

  /**
   * The bytes an IMAP URL (RFC 5092) names, for CATENATE: a message, or a section or range of
   * one, in this account (`/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]`); an
   * absolute URL, one to another account or one to nothing is BADURL (RFC 4469 §5).
   */
  private async urlContent(url: string): Promise<Buffer> {
    const bad = (): never => no('URL does not name a message here', `BADURL ${url.replace(/[\]\r\n]/g, '')}`);
    const m = IMAP_URL_PATH.exec(url);
    if (!m) return bad();
    let name: string;
    let section: Section | null = null;
    try {
      name = normalizeFolderName(encodeMutf7(percentDecode(m[1]!)));
      if (m[4] !== undefined) section = parseSection(percentDecode(m[4]));
    } catch {
      return bad();
    }
    const acct = this.acct();
    if (!(await acct.exists(name))) return bad();
    const folder = await acct.folder(name);
    await folder.refresh();
    if (m[2] !== undefined && Number(m[2]) !== folder.uidValidity) return bad();
    const rec = folder.get(Number(m[3]));
    if (!rec) return bad();
    const raw = toCrlf(await folder.read(rec).catch(() => bad()));
    let bytes = section ? sectionBytes(raw, parseMessage(raw), section) : raw;
    if (m[5] !== undefined) {
      const start = Number(m[5]);
      bytes = bytes.subarray(Math.min(start, bytes.length), m[6] !== undefined ? Math.min(start + Number(m[6]), bytes.length) : bytes.length);
    }
    return bytes;
  }

  // ---- message commands ----

  /**
   * SEARCH, and SORT (RFC 5256) when `sorted`: ESEARCH/ESORT (RFC 4731, RFC 5267 §3) RETURN
   * (MIN MAX COUNT ALL SAVE PARTIAL) before the criteria; RETURN () means ALL. MIN, MAX, ALL and
   * PARTIAL follow the order of the answer (for SORT, the sort order).
   */
  private async search(tag: string, args: Token[], uid: boolean, sorted: boolean): Promise<Reply> {
    const command = sorted ? 'SORT' : 'SEARCH';
    let returns: Set<string> | null = null;
    let partial: [number, number] | null = null;
    if (args[0]?.kind === 'atom' && args[0].value.toUpperCase() === 'RETURN') {
      returns = new Set();
      const opts = asList(args[1], 'return options');
      for (let i = 0; i < opts.length; i++) {
        const r = asAtom(opts[i], 'return option').toUpperCase();
        if (!ESEARCH_RETURNS.has(r)) throw new ParseError(`unknown ${command} return option ${r.slice(0, 30)}`);
        // PARTIAL low:high (RFC 5267 §4.4): positions in the answer, 1-based
        if (r === 'PARTIAL') partial = parsePartialRange(asAtom(opts[++i], 'partial range'));
        returns.add(r);
      }
      if (returns.has('PARTIAL') && returns.has('ALL')) throw new ParseError('PARTIAL and ALL exclude each other');
      if (returns.has('UPDATE') && this.contexts.has(tag)) throw new ParseError('Duplicate search update tag');
      if (returns.size === 0) returns.add('ALL');
      args = args.slice(2);
    } else if (this.rev2 && !sorted) returns = new Set(['ALL']); // RFC 9051 §6.4.4: ESEARCH, ALL when no RETURN
    const criteria = sorted ? parseSortCriteria(args[0]) : null;
    // SORT names its charset without the CHARSET word SEARCH uses
    if (sorted) args = [{ kind: 'atom', value: 'CHARSET' }, ...args.slice(1)];
    // RFC 5182 §2.1: `$` is empty unless this search succeeds.
    const save = returns?.delete('SAVE') ?? false;
    // UPDATE (RFC 5267 §4) keeps the SEARCH or SORT up to date
    const update = returns?.delete('UPDATE') ?? false;
    if (save) this.saved = new Set();
    const saved = this.saved;
    let key;
    try {
      key = parseSearch(args);
    } catch (err) {
      if (err instanceof BadCharsetError) return { status: 'NO', text: 'Unsupported charset', code: 'BADCHARSET (UTF-8 US-ASCII)' };
      throw err;
    }
    if (this.rev2) refuseRecentKeys(key);
    const v = this.view!;
    const found = await this.matching(key, saved);
    let seqs = found.seqs;
    if (criteria) seqs = await this.sorted(seqs, criteria);
    if (update && this.contexts.size >= MAX_CONTEXTS) {
      // RFC 5267 §4.3.1: only the updates are refused (untagged NO [NOUPDATE "tag"]); the answer is still given
      await this.send(status('NO', 'Too many searches and sorts kept up to date', `NOUPDATE "${tag}"`));
    } else if (update) {
      const sort = criteria ? { criteria, order: seqs.map((seq) => v.uids[seq - 1]!) } : null;
      this.contexts.set(tag, { key, uid, saved, members: new Set(found.seqs.map((seq) => v.uids[seq - 1]!)), stamp: contextStamp(v), sort });
    }
    const hits = uid ? seqs.map((seq) => v.uids[seq - 1]!) : seqs;
    const { maxModseq } = found;
    if (save) {
      // With MIN or MAX (and no ALL), only those are kept (RFC 5182 §2.4).
      const minMax = !returns!.has('ALL') && (returns!.has('MIN') || returns!.has('MAX'));
      const kept = minMax ? [...(returns!.has('MIN') ? hits.slice(0, 1) : []), ...(returns!.has('MAX') ? hits.slice(-1) : [])] : hits;
      this.saved = new Set(uid ? kept : kept.map((seq) => v.uids[seq - 1]!));
      // SAVE alone answers no ESEARCH.
      if (returns!.size === 0 && !update) return ok(`${command} completed, result saved`);
    }
    const set = sorted ? orderedSet : compactSet;
    let line: string;
    if (returns) {
      // a tag never holds `"` or `\` (the parser refuses them), so it quotes as it is
      line = `* ESEARCH (TAG "${tag}")${uid ? ' UID' : ''}`;
      if (hits.length && returns.has('MIN')) line += ` MIN ${hits[0]}`;
      if (hits.length && returns.has('MAX')) line += ` MAX ${hits[hits.length - 1]}`;
      // in Dovecot's order
      if (hits.length && returns.has('ALL')) line += ` ALL ${set(hits)}`;
      if (partial) {
        const part = hits.slice(partial[0] - 1, partial[1]);
        line += ` PARTIAL (${partial[0]}:${partial[1]} ${part.length ? set(part) : 'NIL'})`;
      }
      if (returns.has('COUNT')) line += ` COUNT ${hits.length}`;
      if (maxModseq !== null && hits.length) line += ` MODSEQ ${maxModseq}`;
      line += '\r\n';
    } else line = `* ${command}${hits.length ? ' ' + hits.join(' ') : ''}${maxModseq !== null && hits.length ? ` (MODSEQ ${maxModseq})` : ''}\r\n`;
    await this.send(Buffer.from(line, 'latin1'));
    return ok(`${command} completed`);
  }

  /** THREAD / UID THREAD (RFC 5256): `algorithm charset criteria`. */
  private async thread(args: Token[], uid: boolean): Promise<Reply> {
    const algorithm = asAtom(args[0], 'thread algorithm').toUpperCase();
    const threader = THREADERS[algorithm];
    if (!threader) throw new ParseError(`unknown thread algorithm ${algorithm.slice(0, 30)}`);
    let key;
    try {
      key = parseSearch([{ kind: 'atom', value: 'CHARSET' }, ...args.slice(1)]);
    } catch (err) {
      if (err instanceof BadCharsetError) return { status: 'NO', text: 'Unsupported charset', code: 'BADCHARSET (UTF-8 US-ASCII)' };
      throw err;
    }
    if (this.rev2) refuseRecentKeys(key);
    const v = this.view!;
    const { seqs } = await this.matching(key);
    // the threads of the whole folder are kept until its messages change (as Dovecot keeps its thread cache)
    const whole = seqs.length === v.uids.length;
    const memo = `THREAD ${algorithm}${uid ? ' UID' : ''}`;
    let text = whole ? memoOf(v.uids).get(memo) : undefined;
    if (text === undefined) {
      const items = await this.sortItems(seqs, [{ key: 'DATE', reverse: false }]);
      text = formatThreads(threader(items, uid));
      if (whole) memoOf(v.uids).set(memo, text);
    }
    await this.send(Buffer.from(`* THREAD ${text}\r\n`, 'latin1'));
    return ok('THREAD completed');
  }

  /**
   * `seqs` in sort order. When they are most of the folder (or it was sorted so before), the whole
   * folder's order is computed once and kept until its messages change, as Dovecot keeps sort
   * keys in its index; a search result then only picks its messages out of that order.
   */
  private async sorted(seqs: readonly number[], criteria: readonly SortCriterion[]): Promise<number[]> {
    const v = this.view!;
    const memo = `SORT ${criteria.map((c) => `${c.reverse ? 'REVERSE ' : ''}${c.key}`).join(' ')}`;
    const kept = memoOf(v.uids);
    let order = kept.get(memo) as Int32Array | undefined;
    if (!order && seqs.length * 2 < v.uids.length) return sortItems(await this.sortItems(seqs, criteria), criteria).map((m) => m.seq);
    if (!order) {
      const all = sortItems(await this.sortItems(v.uids.map((_, i) => i + 1), criteria), criteria);
      order = Int32Array.from(all, (m) => m.seq);
      kept.set(memo, order);
    }
    if (seqs.length === v.uids.length) return Array.from(order);
    const hit = new Uint8Array(v.uids.length + 1);
    for (const seq of seqs) hit[seq] = 1;
    const out: number[] = [];
    for (const seq of order) if (hit[seq]) out.push(seq);
    return out;
  }

  /** What sorting `seqs` by `criteria` reads of each message: the header's sort fields, INTERNALDATE, size. */
  private async sortItems(seqs: readonly number[], criteria: readonly SortCriterion[]): Promise<SortItem[]> {
    const v = this.view!;
    const header = needsHeader(criteria);
    const wantsSize = criteria.some((c) => c.key === 'SIZE');
    const wantsArrival = criteria.some((c) => c.key === 'ARRIVAL');
    // DATE falls back to INTERNALDATE where the Date field is missing or unreadable
    const wantsSent = criteria.some((c) => c.key === 'DATE');
    const items: SortItem[] = [];
    for (const seq of seqs) {
      const rec = v.folder.get(v.uids[seq - 1]!);
      if (!rec) continue;
      const headers = header ? (this.deps.headers.peek(v.folder, rec) ?? (await this.deps.headers.get(v.folder, rec))) : null;
      const fields = headers ? sortFields(headers) : null;
      let arrival = 0;
      if (wantsArrival || (wantsSent && !fields?.sent)) {
        const ms = v.folder.knownInternalDate(rec) ?? (await v.folder.internalDate(rec).catch(() => EPOCH)).getTime();
        arrival = Math.floor(ms / 1000);
      }
      const size = wantsSize ? (v.folder.knownSize(rec) ?? (await v.folder.size(rec).catch(() => 0))) : 0;
      items.push({ seq, uid: rec.uid, arrival, size, fields });
    }
    return items;
  }

  /** Sequence numbers of the selected messages a search key matches, ascending; with the highest MODSEQ among them when the key uses MODSEQ. */
  private async matching(key: SearchKey, saved = this.saved): Promise<{ seqs: number[]; maxModseq: number | null }> {
    const v = this.view!;
    const content = needsContent(key);
    const kinds = keyKinds(key);
    const seqs: number[] = [];
    let maxModseq = 0;
    const maxUid = v.uids[v.uids.length - 1] ?? 0;
    const wantsSize = kinds.has('size');
    const wantsDate = kinds.has('internaldate');
    // one candidate, refilled per message: a search of a big folder allocates nothing per message
    const c: Candidate = { seq: 0, uid: 0, flags: [], modseq: 0, size: 0, internalDate: EPOCH, raw: null, headers: null, maxSeq: v.uids.length, maxUid, saved };
    for (let i = 0; i < v.uids.length; i++) {
      const rec = v.folder.get(v.uids[i]!);
      if (!rec) continue;
      c.raw = null;
      c.headers = null;
      if (content === 'body') {
        c.raw = await v.folder.read(rec).catch(() => null);
        if (!c.raw) continue;
      } else if (content === 'header') {
        c.headers = this.deps.headers.peek(v.folder, rec) ?? (await this.deps.headers.get(v.folder, rec));
        if (!c.headers) continue;
      }
      c.seq = i + 1;
      c.uid = rec.uid;
      c.flags = this.flagsOf(rec);
      c.modseq = rec.modseq;
      if (wantsSize) c.size = await v.folder.size(rec).catch(() => 0);
      if (wantsDate) c.internalDate = await v.folder.internalDate(rec).catch(() => EPOCH);
      if (matches(key, c)) {
        seqs.push(i + 1);
        if (rec.modseq > maxModseq) maxModseq = rec.modseq;
      }
    }
    if (kinds.has('modseq')) this.condstore = true;
    return { seqs, maxModseq: kinds.has('modseq') ? maxModseq : null };
  }

  private async fetch(args: Token[], uid: boolean): Promise<Reply> {
    const set = asAtom(args[0], 'sequence set');
    const req = parseFetch(args.slice(1));
    const v = this.view!;
    let items = req.items;
    if (uid && !items.some((x) => x.k === 'UID')) items = [{ k: 'UID' }, ...items];
    if (req.changedSince !== null || items.some((x) => x.k === 'MODSEQ')) this.condstore = true;
    if (req.changedSince !== null && !items.some((x) => x.k === 'MODSEQ')) items = [...items, { k: 'MODSEQ' }];
    const expunged = { count: 0 };
    let targets = this.messages(set, uid, expunged);
    if (req.vanished) {
      // RFC 7162 §3.2.6: only UID FETCH, with CHANGEDSINCE, once QRESYNC is enabled
      if (!uid || req.changedSince === null || !this.qresync) throw new ParseError('VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC');
      const inSet = resolveSequenceSet(parseSequenceSet(set), v.folder.uidNext - 1);
      await this.sendVanishedEarlier(v.folder, req.changedSince, inSet);
    }
    if (req.changedSince !== null) targets = targets.filter((t) => t.rec.modseq > req.changedSince!);
    // Reading a body without PEEK sets \Seen (and the response then carries FLAGS).
    const setsSeen = !v.readOnly && items.some((x) => (x.k === 'SECTION' || x.k === 'BINARY') && !x.peek);
    const seenNow = new Set<number>();
    if (setsSeen) {
      const unseen = targets.filter((t) => !t.rec.flags.includes('\\Seen')).map((t) => t.uid);
      if (unseen.length) {
        const { changed } = await v.folder.store(unseen, 'add', ['\\Seen']);
        for (const r of changed) {
          seenNow.add(r.uid);
          this.reported.set(r.uid, r.modseq);
        }
        targets = targets.map((t) => ({ ...t, rec: v.folder.get(t.uid) ?? t.rec }));
      }
    }
    const needsBody = items.some((x) => x.k === 'SECTION' || x.k === 'BINARY' || x.k === 'BINARY.SIZE' || x.k === 'ENVELOPE' || x.k === 'BODY' || x.k === 'BODYSTRUCTURE');
    const needsTree = items.some(
      (x) =>
        x.k === 'ENVELOPE' ||
        x.k === 'BODY' ||
        x.k === 'BODYSTRUCTURE' ||
        (x.k === 'SECTION' && (x.section.specifier !== '' || x.section.path.length > 0)) ||
        ((x.k === 'BINARY' || x.k === 'BINARY.SIZE') && x.path.length > 0),
    );
    // Text accumulates in one string and literals as Buffers; written in ~64 KiB chunks.
    const chunks: (string | Buffer)[] = [];
    let text = '';
    let size = 0;
    const flush = async (): Promise<void> => {
      if (text) chunks.push(text);
      text = '';
      size = 0;
      if (chunks.length) await this.sendPieces(chunks.splice(0));
    };
    const literal = (bytes: Buffer, binary = false): void => {
      // decoded content with a NUL in it goes as a literal8 (RFC 3516 §4.2)
      text += `${binary && bytes.includes(0) ? '~' : ''}{${bytes.length}}\r\n`;
      chunks.push(text, bytes);
      text = '';
      size += bytes.length;
    };
    const wantsFlags = items.some((x) => x.k === 'FLAGS');
    // each item's name and the space before its value (and before the name, after the first)
    const names = items.map((item, j) => `${j ? ' ' : ''}${item.k === 'SECTION' || item.k === 'BINARY' || item.k === 'BINARY.SIZE' ? item.label + (item.partial ? `<${item.partial[0]}>` : '') : item.k} `);
    const wantsDate = items.some((x) => x.k === 'INTERNALDATE');
    const wantsSize = items.some((x) => x.k === 'RFC822.SIZE');
    let missing = expunged.count > 0;
    // Bodies are read a few messages ahead so the disk and the encoder overlap.
    const reads: (Promise<Buffer | null> | undefined)[] = [];
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i]!;
      let raw: Buffer | null = null;
      let tree: MimePart | null = null;
      if (needsBody) {
        for (let j = i; j < Math.min(targets.length, i + READ_AHEAD); j++)
          reads[j] ??= v.folder.read(targets[j]!.rec).then(toCrlf, () => null);
        raw = await reads[i]!;
        reads[i] = undefined;
        if (!raw) {
          missing = true;
          continue;
        }
        if (needsTree) tree = parseMessage(raw);
      }
      // What needs the file is looked up before the response starts: a message whose file is
      // gone (expunged by another process) is left out whole, and reported below.
      let date: Date | null = null;
      let msgSize = 0;
      try {
        if (wantsDate) date = await v.folder.internalDate(t.rec);
        if (wantsSize) msgSize = v.folder.knownSize(t.rec) ?? (await v.folder.size(t.rec));
      } catch (err) {
        if (!(err instanceof MailStoreError && err.code === 'nonexistent')) throw err;
        missing = true;
        continue;
      }
      text += `* ${t.seq} FETCH (`;
      for (let j = 0; j < items.length; j++) {
        const item = items[j]!;
        text += names[j]!;
        switch (item.k) {
          case 'UID':
            text += t.uid;
            break;
          case 'FLAGS':
            text += this.flagsText(t.rec);
            break;
          case 'MODSEQ':
            text += `(${t.rec.modseq})`;
            break;
          case 'INTERNALDATE':
            text += `"${formatDateTime(date!)}"`;
            break;
          case 'RFC822.SIZE':
            text += msgSize;
            break;
          case 'ENVELOPE':
          case 'BODY':
          case 'BODYSTRUCTURE': {
            const pieces = item.k === 'ENVELOPE' ? encodeValue(envelope(tree!)) : encodeBodyStructure(raw!, tree!, item.k === 'BODYSTRUCTURE');
            for (const p of pieces) {
              if (typeof p === 'string') text += p;
              else {
                chunks.push(text, p);
                text = '';
                size += p.length;
              }
            }
            break;
          }
          case 'SECTION': {
            let bytes = tree ? sectionBytes(raw!, tree, item.section) : raw!;
            if (item.partial) {
              const [start, count] = item.partial;
              bytes = bytes.subarray(Math.min(start, bytes.length), Math.min(start + count, bytes.length));
            }
            literal(bytes);
            break;
          }
          case 'BINARY':
          case 'BINARY.SIZE': {
            let bytes = binaryContent(raw!, tree, item.path);
            if (item.k === 'BINARY.SIZE') {
              text += bytes.length;
              break;
            }
            if (item.partial) {
              const [start, count] = item.partial;
              bytes = bytes.subarray(Math.min(start, bytes.length), Math.min(start + count, bytes.length));
            }
            literal(bytes, true);
            break;
          }
        }
      }
      if (seenNow.has(t.uid) && !wantsFlags) text += ` FLAGS ${this.flagsText(t.rec)}`;
      text += ')\r\n';
      if (size + text.length >= WRITE_CHUNK) await flush();
    }
    await flush();
    // RFC 2180 §4.1.3: the others are returned; EXPUNGE responses wait for a command that allows them.
    if (missing && !uid) return { status: 'NO', text: 'Some messages were expunged meanwhile', code: 'EXPUNGEISSUED' };
    return ok('FETCH completed');
  }

  private async store(args: Token[], uid: boolean): Promise<Reply> {
    this.writable();
    const set = asAtom(args[0], 'sequence set');
    let i = 1;
    let unchangedSince: number | undefined;
    if (args[1]?.kind === 'list') {
      const mods = args[1].items;
      for (let j = 0; j < mods.length; j += 2) {
        if (asAtom(mods[j], 'modifier').toUpperCase() !== 'UNCHANGEDSINCE') throw new ParseError('unknown STORE modifier');
        unchangedSince = parseNumber(asAtom(mods[j + 1], 'mod-sequence'), { allowZero: true, max: Number.MAX_SAFE_INTEGER });
      }
      this.condstore = true;
      i = 2;
    }
    const m = /^([+-]?)FLAGS(\.SILENT)?$/i.exec(asAtom(args[i], 'STORE item'));
    if (!m) throw new ParseError('STORE item must be FLAGS, +FLAGS or -FLAGS');
    const rest = args.slice(i + 1);
    const flags = parseFlags(rest.length === 1 && rest[0]!.kind === 'list' ? rest[0]!.items : rest);
    const mode = m[1] === '+' ? 'add' : m[1] === '-' ? 'remove' : 'set';
    const silent = !!m[2];
    const targets = this.messages(set, uid);
    const { changed, failed } = await this.view!.folder.store(
      targets.map((t) => t.uid),
      mode,
      flags,
      unchangedSince,
    );
    for (const r of changed) this.reported.set(r.uid, r.modseq);
    const failedSet = new Set(failed);
    const changedSet = new Set(changed.map((r) => r.uid));
    const out: Buffer[] = [];
    // A new keyword is announced in FLAGS before any FETCH that carries it.
    const v = this.view!;
    if (v.folder.permanentKeywords.length !== v.keywords) {
      v.keywords = v.folder.permanentKeywords.length;
      out.push(this.flagsAnnouncement(v.folder, v.readOnly));
    }
    for (const t of targets) {
      if (failedSet.has(t.uid)) continue;
      // .SILENT still reports MODSEQ changes to CONDSTORE clients (RFC 7162 §3.2).
      if (silent && !(unchangedSince !== undefined && changedSet.has(t.uid))) continue;
      const rec = this.view!.folder.get(t.uid);
      if (rec) out.push(this.flagsResponse(t.seq, rec, uid));
    }
    if (out.length) await this.send(Buffer.concat(out));
    if (failed.length) {
      const ids = uid ? failed : targets.filter((t) => failedSet.has(t.uid)).map((t) => t.seq);
      return { status: 'OK', text: 'Conditional STORE failed for some messages', code: `MODIFIED ${compactSet(ids)}` };
    }
    return ok('STORE completed');
  }

  private async copy(args: Token[], uid: boolean, move: boolean): Promise<Reply> {
    if (move) this.writable();
    const set = asAtom(args[0], 'sequence set');
    const dest = this.mailboxArg(args[1]);
    if (args.length > 2) throw new ParseError('too many arguments');
    const targets = this.messages(set, uid);
    const acct = this.acct();
    if (!(await acct.exists(dest))) no('No such mailbox', 'TRYCREATE');
    const target = await acct.folder(dest);
    const v = this.view!;
    // A move leaves the account's usage as it was; a copy adds to it.
    const bytes = move ? 0 : (await Promise.all(targets.map((t) => v.folder.size(t.rec).catch(() => 0)))).reduce((a, b) => a + b, 0);
    if (!move) await this.deps.store.checkQuota(acct, bytes, targets.length);
    const uids = targets.map((t) => t.uid);
    const pairs = move ? await v.folder.moveTo(uids, target) : await v.folder.copyTo(uids, target);
    if (!move) acct.added(bytes, pairs.length);
    const code = pairs.length ? `COPYUID ${target.uidValidity} ${orderedSet(pairs.map((p) => p[0]))} ${orderedSet(pairs.map((p) => p[1]))}` : undefined;
    if (!move) return { status: 'OK', text: 'COPY completed', code };
    if (code) await this.send(status('OK', 'Moved', code));
    return ok('MOVE completed');
  }
}

/**
 * BINARY[part] (RFC 3516 §4.2): a leaf part's content with its transfer encoding undone, a
 * multipart's or message's body as it is, the whole message for no part; an encoding it
 * cannot undo fails the FETCH with UNKNOWN-CTE.
 */
/** Content-Transfer-Encodings BINARY can undo or serve as they are (none given is 7bit) */
const KNOWN_CTE = new Set(['', '7bit', '8bit', 'binary', 'base64', 'quoted-printable']);

function binaryContent(raw: Buffer, tree: MimePart | null, path: readonly number[]): Buffer {
  if (path.length === 0) return raw;
  const part = partAt(tree!, path);
  if (!part) return Buffer.alloc(0);
  if (part.parts.length || part.message) return raw.subarray(part.bodyStart, part.end);
  const cte = (header(part, 'content-transfer-encoding') ?? '').trim().toLowerCase();
  if (!KNOWN_CTE.has(cte)) no('Unknown Content-Transfer-Encoding', 'UNKNOWN-CTE');
  // "textual line-oriented sections are always transmitted using the IMAP4 CRLF line termination" (§4.2)
  return part.type === 'text' ? toCrlf(decodedContent(raw, part)) : decodedContent(raw, part);
}

/**
 * STATUS SIZE (RFC 8438 §3): the mailbox's size in octets, the sum of its messages' RFC822.SIZE; a
 * message whose file another process removed meanwhile counts nothing.
 */
async function mailboxSize(folder: Folder): Promise<number> {
  let total = 0;
  for (const rec of folder.messages) total += folder.knownSize(rec) ?? (await folder.size(rec).catch(() => 0));
  return total;
}

/** What a UTF-8 mailbox name may not hold (RFC 5198 §2's control characters, line and paragraph separators). */
const NOT_NET_UNICODE = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/;

/** A mailbox's LIST attributes: \\NonExistent or \\Noselect, children (RFC 5258 §4), special use (RFC 6154). */
function mailboxAttributes(f: FolderInfo & { nonExistent?: boolean }): string[] {
  // a name that does not exist is not said to have no children (RFC 5258 §5's examples), but one with some is
  const attrs = f.nonExistent ? ['\\NonExistent', ...(f.hasChildren ? ['\\HasChildren'] : [])] : [f.hasChildren ? '\\HasChildren' : '\\HasNoChildren'];
  if (f.noSelect && !f.nonExistent) attrs.unshift('\\Noselect');
  if (f.specialUse) attrs.push(f.specialUse);
  return attrs;
}

/** FETCH's `(flags)` text by a record's flag array (records never change; a flag change makes a new one). */
const flagTexts = new WeakMap<readonly string[], string>();

/** Each folder's FLAGS/PERMANENTFLAGS lines for its current keywords (SELECT sends them every time). */
const announcements = new WeakMap<Folder, { keywords: string; readWrite: Buffer; readOnly: Buffer }>();

const LIST_SELECTION = new Set(['SUBSCRIBED', 'REMOTE', 'RECURSIVEMATCH', 'SPECIAL-USE']);
const LIST_RETURN = new Set(['SUBSCRIBED', 'CHILDREN', 'SPECIAL-USE']);
const ESEARCH_RETURNS = new Set(['MIN', 'MAX', 'COUNT', 'ALL', 'SAVE', 'PARTIAL', 'UPDATE']);

function ok(text: string): Reply {
  return { status: 'OK', text };
}

/**
 * SORT orders and THREAD answers of a whole folder, by the view's UID array: a folder gives out a
 * new array whenever its messages (or their flags) change, and a view copies it on EXPUNGE, so an
 * entry is only ever read while the messages it was made from are exactly those numbered.
 */
const memos = new WeakMap<readonly number[], Map<string, Int32Array | string>>();

/** Kept answers per UID array: a client cycling through many criteria starts the list over rather than growing it. */
const MAX_MEMOS = 16;

function memoOf(uids: readonly number[]): Map<string, Int32Array | string> {
  let m = memos.get(uids);
  if (!m) memos.set(uids, (m = new Map()));
  else if (m.size >= MAX_MEMOS) m.clear();
  return m;
}

const THREADERS: Record<string, ((items: SortItem[], uid: boolean) => ThreadTree[]) | undefined> = { ORDEREDSUBJECT: orderedSubjectThreads, REFERENCES: referenceThreads, REFS: refsThreads };

/** A SEARCH or SORT kept up to date (RETURN (UPDATE), RFC 5267 §4). */
interface SearchContext {
  key: SearchKey;
  uid: boolean;
  /** `$` as it was when the search was made */
  saved: ReadonlySet<number>;
  /** UIDs in the result as last reported */
  members: Set<number>;
  /** the view's state the members were computed for (contextStamp) */
  stamp: string;
  /** a SORT's: its criteria, and the members' UIDs in the order the client holds them */
  sort: { criteria: readonly SortCriterion[]; order: number[] } | null;
}

/** Consecutive results of a kept SORT and the context position (1-based) of the first (RFC 5267 §4.3.3–4.3.4). */
interface PositionedRun {
  position: number;
  uids: number[];
}

/**
 * REMOVEFROM's pairs for taking `remove` out of `order`: one pair per run of consecutive results,
 * each positioned in the result as the pairs before it left it (the client applies them in turn).
 */
function removeRuns(order: readonly number[], remove: ReadonlySet<number>): { rest: number[]; runs: PositionedRun[] } {
  const rest: number[] = [];
  const runs: PositionedRun[] = [];
  let run: PositionedRun | null = null;
  for (const uid of order) {
    if (!remove.has(uid)) {
      rest.push(uid);
      run = null;
    } else if (run) run.uids.push(uid);
    else runs.push((run = { position: rest.length + 1, uids: [uid] }));
  }
  return { rest, runs };
}

/**
 * ADDTO's pairs for putting `added` into `order` where `sorted` (the new sorted result) has them.
 * Sort keys never change, so the kept results are in `sorted`'s order already; results `sorted`
 * lacks (expunged, not yet reported) keep their place. Runs go front to back, so each position is
 * the run's final one.
 */
function insertRuns(order: readonly number[], sorted: readonly number[], added: ReadonlySet<number>): { merged: number[]; runs: PositionedRun[] } {
  const inSorted = new Set(sorted);
  const merged: number[] = [];
  let next = 0;
  const takeAddedUntil = (stop: number | undefined): void => {
    for (; next < sorted.length && sorted[next] !== stop; next++) if (added.has(sorted[next]!)) merged.push(sorted[next]!);
    if (next < sorted.length) next++;
  };
  for (const uid of order) {
    if (inSorted.has(uid)) takeAddedUntil(uid);
    merged.push(uid);
  }
  takeAddedUntil(undefined);
  const runs: PositionedRun[] = [];
  for (let i = 0; i < merged.length; i++) {
    if (!added.has(merged[i]!)) continue;
    const run: PositionedRun = { position: i + 1, uids: [] };
    while (i < merged.length && added.has(merged[i]!)) run.uids.push(merged[i++]!);
    runs.push(run);
  }
  return { merged, runs };
}

/** Searches one session may keep up to date at once (each runs again when the messages change). */
const MAX_CONTEXTS = 32;

/** What a kept search's result can depend on: the messages numbered, their flags (modseq), expunges. */
function contextStamp(v: View): string {
  return `${v.uids.length}/${v.uids[v.uids.length - 1] ?? 0}/${v.folder.highestModseq}/${v.folder.expunges}`;
}

/** `low:high` of RETURN (PARTIAL …), either way round (RFC 5267 §4.4). */
function parsePartialRange(text: string): [number, number] {
  const m = /^(\d+):(\d+)$/.exec(text);
  const [a, b] = m ? [parseNumber(m[1]!), parseNumber(m[2]!)] : [0, 0];
  if (!m) throw new ParseError('partial range expected');
  return a <= b ? [a, b] : [b, a];
}

function noArgs(args: Token[]): void {
  if (args.length) throw new ParseError('unexpected arguments');
}

function storeErrorReply(err: MailStoreError): Reply {
  const code = { nonexistent: 'NONEXISTENT', exists: 'ALREADYEXISTS', invalid: 'CANNOT', cannot: 'CANNOT', overquota: 'OVERQUOTA' }[err.code];
  return { status: 'NO', text: err.message, code };
}

/** A folder name as the store keeps it (modified UTF-7), or NO [CANNOT]. */
function checkedFolderName(name: string): string {
  try {
    return normalizeFolderName(name);
  } catch (err) {
    if (err instanceof MailStoreError) throw new CommandError('NO', err.message, 'CANNOT');
    throw err;
  }
}

/** SELECT's QRESYNC parameters; known-uids as a membership test, seq-match (only a hint) left out */
interface Resync {
  uidValidity: number;
  modseq: number;
  knownUids: ((uid: number) => boolean) | null;
}

function parseQresync(items: Token[]): Resync {
  if (items.length < 2 || items.length > 4) throw new ParseError('QRESYNC takes (uidvalidity modseq [known-uids [seq-match]])');
  const uidValidity = parseNumber(asAtom(items[0], 'UIDVALIDITY'));
  const modseq = parseNumber(asAtom(items[1], 'mod-sequence'), { max: Number.MAX_SAFE_INTEGER });
  if (items[3]) asList(items[3], 'sequence match data');
  const known = items[2] ? parseSequenceSet(asAtom(items[2], 'known UIDs')) : null;
  if (known?.some(([a, b]) => a === -1 || b === -1)) throw new ParseError('known UIDs cannot use *');
  return { uidValidity, modseq, knownUids: known ? resolveSequenceSet(known, 0) : null };
}

/** A relative IMAP URL to a message of this account (RFC 5092 §6: imessagepart with its optional partial). */
const IMAP_URL_PATH = /^\/([^;?#/][^;?#]*?)(?:;UIDVALIDITY=([1-9]\d{0,9}))?\/;UID=([1-9]\d{0,9})(?:\/;SECTION=([^/;]+))?(?:\/;PARTIAL=(\d{1,10})(?:\.([1-9]\d{0,9}))?)?$/i;

/** %XX escapes of a URL part as UTF-8 text (RFC 5092 §3: mailbox names and sections are UTF-8, %-escaped). */
function percentDecode(s: string): string {
  const bytes = Buffer.from(s.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}

const KEYWORD_RE = /^[^\s(){%*"\\\]\x00-\x1f\x7f-\xff]+$/;

function parseFlags(tokens: Token[]): string[] {
  return tokens.map((t) => {
    const f = asAtom(t, 'flag');
    if (f.startsWith('\\')) {
      const canon = canonicalSystemFlag(f);
      if (!canon) throw new ParseError(`cannot store ${f.slice(0, 30)}`);
      return canon;
    }
    if (!KEYWORD_RE.test(f) || f.length > 100) throw new ParseError('invalid keyword');
    return f;
  });
}

/** LIST wildcards: `*` matches anything, `%` anything but the hierarchy delimiter. INBOX is case-insensitive. */
function patternRegex(pattern: string): RegExp {
  let re = '';
  for (const ch of pattern) {
    if (ch === '*') re += '.*';
    else if (ch === '%') re += `[^${DELIMITER.replace(/[.\\]/g, '\\$&')}]*`;
    else re += ch.replace(/[\\^$.|?+()[\]{}]/g, '\\$&');
  }
  const inbox = /^inbox/i.test(pattern) ? `(?:INBOX${re.slice(5)})|` : '';
  return new RegExp(`^(?:${inbox}${re})$`);
}

