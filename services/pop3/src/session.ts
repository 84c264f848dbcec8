import type { Directory } from '@hearth/directory';
import type { LineSession, RequestResult, SessionIO } from '@hearth/lineserver';
import type { Logger } from '@hearth/log';
import { mailLogin, stillAllowed, type Account, type Folder, type MailStore, type MessageRecord, type Principal } from '@hearth/mailstore';
import { err, multiline, ok, parseLine, parseMsgNumber, topOf, uidl } from './pop3-codec.ts';

export interface Pop3Deps {
  directory: Directory;
  store: MailStore;
  logger: Logger;
  tlsAvailable: boolean;
}

interface Entry {
  rec: MessageRecord;
  size: number;
  deleted: boolean;
  retrieved: boolean;
}

/** POP3 commands (RFC 1939, 2449, 2595, 5034): the request metrics' command labels; anything else is "other". */
const COMMANDS = new Set(['USER', 'PASS', 'AUTH', 'STLS', 'CAPA', 'QUIT', 'NOOP', 'STAT', 'LIST', 'UIDL', 'RETR', 'TOP', 'DELE', 'RSET', 'APOP']);
const MAX_ERRORS = 10;
const MAX_AUTH_FAILURES = 3;

/** One POP3 connection: AUTHORIZATION → TRANSACTION → UPDATE (RFC 1939 §3). */
export class Pop3Session implements LineSession<string | null> {
  state: 'auth' | 'transaction' | 'closed' = 'auth';
  private principal: Principal | null = null;
  private account: Account | null = null;
  private folder: Folder | null = null;
  private entries: Entry[] = [];
  private user: string | null = null;
  private errors = 0;
  private authFailures = 0;
  private pendingAuth = false;
  /** the first status a command's response carried (+OK or -ERR), for the request metrics */
  private status: 'ok' | 'err' | null = null;
  private releaseMaildrop: (() => Promise<void>) | null = null;

  constructor(
    private readonly deps: Pop3Deps,
    private readonly io: SessionIO,
  ) {}

  get closed(): boolean {
    return this.state === 'closed';
  }

  greeting(): Buffer {
    return ok('Hearth POP3 ready');
  }

  private send(b: Buffer): Promise<void> {
    this.status ??= b[0] === 0x2d ? 'err' : 'ok';
    return this.io.write(b);
  }

  async close(text: string): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    await this.send(err(text)).catch(() => {});
    this.io.close();
  }

  async recheck(): Promise<void> {
    if (this.principal && this.account && !stillAllowed(this.deps.directory, this.principal, this.account.address)) await this.close('Access revoked');
  }

  idle(): Promise<void> {
    return this.close('Autologout');
  }

  private async lineTooLong(): Promise<void> {
    await this.send(err('Line too long'));
    await this.fail();
  }

  private async fail(): Promise<void> {
    if (++this.errors > MAX_ERRORS) await this.close('Too many errors');
  }

  /** one command line; null: the line was too long */
  async handle(line: string | null): Promise<RequestResult | undefined> {
    // AUTH's response line counts as AUTH; AUTH itself, answered "+ ", is counted then
    const name = this.pendingAuth ? 'AUTH' : (line?.split(' ', 1)[0]?.toUpperCase() ?? '');
    this.status = null;
    await this.handleLine(line);
    if (this.pendingAuth) return undefined;
    return { command: COMMANDS.has(name) ? name.toLowerCase() : 'other', outcome: this.status ?? 'ok' };
  }

  private async handleLine(line: string | null): Promise<void> {
    if (this.state === 'closed') return;
    if (line === null) return this.lineTooLong();
    if (this.pendingAuth) {
      this.pendingAuth = false;
      if (line === '*') return this.send(err('AUTH cancelled'));
      return this.authPlain(line);
    }
    const cmd = parseLine(line);
    if (!cmd) {
      await this.send(err('Invalid command'));
      return this.fail();
    }
    try {
      await this.dispatch(cmd.name, cmd.args, cmd.rest);
    } catch (e) {
      this.deps.logger.error({ err: e }, 'POP3 command failed');
      await this.send(err('Internal error'));
    }
  }

  private capa(): Buffer {
    const caps = ['USER', 'UIDL', 'TOP', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'SASL PLAIN'];
    if (this.state === 'auth' && this.deps.tlsAvailable && !this.io.secure) caps.push('STLS');
    caps.push('IMPLEMENTATION Hearth');
    return Buffer.from(`+OK Capability list follows\r\n${caps.join('\r\n')}\r\n.\r\n`);
  }

  private async dispatch(name: string, args: string[], rest: string): Promise<void> {
    if (name === 'CAPA') return this.send(this.capa());
    if (name === 'QUIT') return this.quit();
    if (name === 'NOOP' && this.state === 'transaction') return this.send(ok());
    if (this.state === 'auth') {
      switch (name) {
        case 'USER':
          if (!rest) return this.send(err('USER needs a name'));
          this.user = rest;
          return this.send(ok());
        case 'PASS':
          if (this.user === null) return this.send(err('USER first'));
          return this.login(this.user, rest);
        case 'AUTH':
          if (args.length === 0) return this.send(Buffer.from('+OK\r\nPLAIN\r\n.\r\n'));
          if (args[0]!.toUpperCase() !== 'PLAIN') return this.send(err('Unsupported mechanism'));
          if (args[1]) return this.authPlain(args[1] === '=' ? '' : args[1]);
          this.pendingAuth = true;
          return this.send(Buffer.from('+ \r\n'));
        case 'STLS':
          if (!this.deps.tlsAvailable || this.io.secure) return this.send(err('STLS not available'));
          await this.send(ok('Begin TLS negotiation'));
          return this.io.startTls();
      }
      await this.send(err('Command not valid in this state'));
      return this.fail();
    }
    switch (name) {
      case 'STAT': {
        const live = this.entries.filter((e) => !e.deleted);
        return this.send(ok(`${live.length} ${live.reduce((a, e) => a + e.size, 0)}`));
      }
      case 'LIST':
      case 'UIDL': {
        const line = (i: number, e: Entry): string => `${i + 1} ${name === 'LIST' ? e.size : uidl(e.rec.uid, this.folder!.uidValidity)}`;
        if (args[0] !== undefined) {
          const e = this.entry(args[0]);
          if (!e) return this.send(err('No such message'));
          return this.send(ok(line(Number(args[0]) - 1, e)));
        }
        const lines = this.entries.map((e, i) => (e.deleted ? null : line(i, e))).filter((l) => l !== null);
        return this.send(Buffer.from(`+OK\r\n${lines.map((l) => `${l}\r\n`).join('')}.\r\n`));
      }
      case 'RETR':
      case 'TOP': {
        const e = this.entry(args[0]);
        if (!e) return this.send(err('No such message'));
        let lines = -1;
        if (name === 'TOP') {
          if (!args[1] || !/^\d{1,9}$/.test(args[1])) return this.send(err('TOP needs a line count'));
          lines = Number(args[1]);
        }
        const raw = await this.folder!.read(e.rec).catch(() => null);
        if (!raw) return this.send(err('Message was removed by another session'));
        if (name === 'RETR') e.retrieved = true;
        return this.send(Buffer.concat([ok(name === 'RETR' ? `${e.size} octets` : ''), multiline(lines < 0 ? raw : topOf(raw, lines))]));
      }
      case 'DELE': {
        const e = this.entry(args[0]);
        if (!e) return this.send(err('No such message'));
        e.deleted = true;
        return this.send(ok('Deleted'));
      }
      case 'RSET':
        for (const e of this.entries) e.deleted = false;
        return this.send(ok());
    }
    await this.send(err('Unknown command'));
    return this.fail();
  }

  private entry(arg: string | undefined): Entry | null {
    const n = parseMsgNumber(arg, this.entries.length);
    const e = n === null ? null : this.entries[n - 1]!;
    return e && !e.deleted ? e : null;
  }

  private async authPlain(b64: string): Promise<void> {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) return this.send(err('Invalid base64'));
    const fields = Buffer.from(b64, 'base64').toString('utf8').split('\0');
    if (fields.length !== 3) return this.send(err('Invalid PLAIN response'));
    const [authz, authc, password] = fields as [string, string, string];
    if (authz && authz !== authc) return this.send(err('Proxy authorization not allowed', 'AUTH'));
    return this.login(authc, password);
  }

  private async login(login: string, password: string): Promise<void> {
    this.user = null;
    const res = await mailLogin(this.deps.directory, { login, password, protocol: 'pop3', remote: this.io.remote });
    if (!res.ok) {
      await this.send(err(res.reason === 'throttled' ? 'Too many failed logins, try later' : 'Authentication failed', res.reason === 'throttled' ? 'LOGIN-DELAY' : 'AUTH'));
      if (++this.authFailures >= MAX_AUTH_FAILURES) await this.close('Too many failed logins');
      return;
    }
    const account = await this.deps.store.open(res.address);
    // Two sessions on one maildrop could both delete the same messages: the second one waits (RFC 2449 IN-USE).
    const release = await account.lockMaildrop();
    if (!release) {
      this.deps.logger.info({ login: res.principal.name, remote: this.io.remote }, 'POP3 login refused: maildrop in use by another session');
      return this.send(err('Mailbox is in use by another POP3 session', 'IN-USE'));
    }
    this.releaseMaildrop = release;
    this.account = account;
    this.folder = await this.account.folder('INBOX');
    await this.folder.refresh();
    this.entries = [];
    for (const rec of this.folder.messages) this.entries.push({ rec, size: await this.folder.size(rec).catch(() => 0), deleted: false, retrieved: false });
    this.principal = res.principal;
    this.state = 'transaction';
    this.deps.logger.info({ login: res.principal.name, remote: this.io.remote }, 'POP3 login');
    await this.send(ok(`Logged in, ${this.entries.length} messages`));
  }

  /** UPDATE state: remove what was deleted and mark what was retrieved as seen (as Dovecot does). */
  private async quit(): Promise<void> {
    if (this.state === 'transaction' && this.folder) {
      const deleted = this.entries.filter((e) => e.deleted).map((e) => e.rec.uid);
      const seen = this.entries.filter((e) => e.retrieved && !e.deleted && !e.rec.flags.includes('\\Seen')).map((e) => e.rec.uid);
      try {
        if (seen.length) await this.folder.store(seen, 'add', ['\\Seen']);
        if (deleted.length) await this.folder.expunge(deleted, true);
      } catch (e) {
        this.deps.logger.error({ err: e }, 'POP3 update failed');
        this.state = 'closed';
        await this.unlock();
        await this.send(err('Some deleted messages were not removed'));
        this.io.close();
        return;
      }
    }
    this.state = 'closed';
    await this.unlock();
    await this.send(ok('Bye'));
    this.io.close();
  }

  /** The connection closed (also without QUIT: nothing is deleted then, RFC 1939 §6). */
  end(): void {
    this.state = 'closed';
    void this.unlock();
  }

  private async unlock(): Promise<void> {
    const release = this.releaseMaildrop;
    this.releaseMaildrop = null;
    await release?.();
  }
}
