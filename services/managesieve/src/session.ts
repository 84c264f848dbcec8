import type { Directory } from '@hearth/directory';
import type { LineSession, RequestResult, SessionIO } from '@hearth/lineserver';
import type { Logger } from '@hearth/log';
import { mailLogin, stillAllowed, type MailStore, type Principal } from '@hearth/mailstore';
import { compileScript, EXTENSIONS, ScriptStore, ScriptStoreError, SieveSyntaxError, type ScriptLimits } from '@hearth/sieve';
import { response, sieveString, type SieveRequest } from './sieve-codec.ts';

export interface SieveDeps {
  directory: Directory;
  store: MailStore;
  logger: Logger;
  limits: ScriptLimits;
  tlsAvailable: boolean;
}

/** RFC 5804 commands: the request metrics' command labels; anything else is "other". */
const COMMANDS = new Set(['CAPABILITY', 'LOGOUT', 'NOOP', 'STARTTLS', 'AUTHENTICATE', 'UNAUTHENTICATE', 'LISTSCRIPTS', 'HAVESPACE', 'CHECKSCRIPT', 'PUTSCRIPT', 'GETSCRIPT', 'SETACTIVE', 'DELETESCRIPT', 'RENAMESCRIPT']);
const MAX_ERRORS = 10;
const MAX_AUTH_FAILURES = 3;

type Sasl = { mech: 'PLAIN' } | { mech: 'LOGIN'; user: string | null };

/** One ManageSieve connection (RFC 5804): non-authenticated → authenticated → logout. */
export class SieveSession implements LineSession<SieveRequest> {
  private state: 'nonauth' | 'auth' | 'logout' = 'nonauth';
  private principal: Principal | null = null;
  private address: string | null = null;
  private scripts: ScriptStore | null = null;
  private sasl: Sasl | null = null;
  private errors = 0;
  private authFailures = 0;
  /** the status of the last response line sent (OK, NO, BYE), for the request metrics */
  private status: string | null = null;

  constructor(
    private readonly deps: SieveDeps,
    private readonly io: SessionIO,
  ) {}

  get closed(): boolean {
    return this.state === 'logout';
  }

  greeting(): Buffer {
    return this.capabilities();
  }

  /** RFC 5804 §1.7; SASL only where a password may be sent (after TLS), STARTTLS only before it. */
  private capabilities(): Buffer {
    const lines = [`"IMPLEMENTATION" "Hearth"`, `"SIEVE" ${sieveString(EXTENSIONS.join(' '))}`];
    if (this.io.secure && this.state === 'nonauth') lines.push('"SASL" "PLAIN LOGIN"');
    if (!this.io.secure && this.deps.tlsAvailable) lines.push('"STARTTLS"');
    lines.push(`"MAXREDIRECTS" "0"`, `"VERSION" "1.0"`);
    return Buffer.concat([Buffer.from(lines.map((l) => `${l}\r\n`).join('')), response('OK', 'Hearth ManageSieve ready')]);
  }

  private send(b: Buffer): Promise<void> {
    const i = b.lastIndexOf('\r\n', b.length - 3);
    const lastLine = i < 0 ? 0 : i + 2;
    const word = /^(OK|NO|BYE)\b/i.exec(b.toString('latin1', lastLine, lastLine + 4));
    if (word) this.status = word[1]!.toLowerCase();
    return this.io.write(b);
  }

  private async bye(text: string): Promise<void> {
    if (this.state === 'logout') return;
    this.state = 'logout';
    await this.send(response('BYE', text)).catch(() => {});
    this.io.close();
  }

  idle(): Promise<void> {
    return this.bye('Idle timeout');
  }

  shutdown(): Promise<void> {
    return this.bye('Server shutting down');
  }

  async recheck(): Promise<void> {
    if (this.principal && this.address && !stillAllowed(this.deps.directory, this.principal, this.address)) await this.bye('Access revoked');
  }

  private async fail(reply: Buffer): Promise<void> {
    await this.send(reply);
    if (++this.errors > MAX_ERRORS) await this.bye('Too many errors');
  }

  async handle(req: SieveRequest): Promise<RequestResult | undefined> {
    const verb = this.sasl ? 'AUTHENTICATE' : 'words' in req ? (req.words[0]?.toUpperCase() ?? '') : '';
    this.status = null;
    await this.handleRequest(req);
    // a SASL exchange is counted once, with its last step
    if (this.sasl) return undefined;
    return { command: COMMANDS.has(verb) ? verb.toLowerCase() : 'other', outcome: this.status ?? 'ok' };
  }

  private async handleRequest(req: SieveRequest): Promise<void> {
    if (this.state === 'logout') return;
    if ('error' in req) {
      if (req.fatal) return this.bye(req.error);
      return this.fail(response('NO', req.error));
    }
    try {
      if (this.sasl) return await this.saslStep(req.words);
      const [verb, ...args] = req.words;
      if (!verb) return await this.fail(response('NO', 'Empty command'));
      await this.dispatch(verb.toUpperCase(), args);
    } catch (err) {
      if (err instanceof ScriptStoreError) return this.send(response('NO', err.message, err.code === 'BADNAME' ? undefined : err.code));
      this.deps.logger.error({ err }, 'ManageSieve command failed');
      await this.send(response('NO', 'Internal error', 'TRYLATER'));
    }
  }

  private async dispatch(verb: string, args: string[]): Promise<void> {
    const want = async (n: number): Promise<boolean> => {
      if (args.length === n) return true;
      await this.fail(response('NO', `${verb} takes ${n} argument${n === 1 ? '' : 's'}`));
      return false;
    };
    switch (verb) {
      case 'CAPABILITY':
        return this.send(this.capabilities());
      case 'LOGOUT':
        this.state = 'logout';
        await this.send(response('OK', 'Logout completed'));
        this.io.close();
        return;
      case 'NOOP':
        return this.send(args[0] !== undefined ? response('OK', 'Done', `TAG ${sieveString(args[0])}`) : response('OK', 'Done'));
      case 'STARTTLS':
        if (this.io.secure || !this.deps.tlsAvailable || this.state !== 'nonauth') return this.fail(response('NO', 'STARTTLS not available'));
        await this.send(response('OK', 'Begin TLS negotiation'));
        await this.io.startTls();
        // RFC 5804 §2.2: the capabilities again, now with SASL
        return this.send(this.capabilities());
      case 'AUTHENTICATE':
        return this.authenticate(args);
    }
    if (this.state !== 'auth') return this.fail(response('NO', 'Authenticate first'));
    const scripts = this.scripts!;
    switch (verb) {
      case 'UNAUTHENTICATE':
        this.state = 'nonauth';
        this.principal = this.address = this.scripts = null;
        return this.send(response('OK', 'Unauthenticate completed'));
      case 'LISTSCRIPTS': {
        const list = await scripts.list();
        return this.send(Buffer.concat([Buffer.from(list.map((s) => `${sieveString(s.name)}${s.active ? ' ACTIVE' : ''}\r\n`).join('')), response('OK', 'Listscripts completed')]));
      }
      case 'HAVESPACE': {
        if (!(await want(2))) return;
        if (!/^\d{1,12}$/.test(args[1]!)) return this.fail(response('NO', 'HAVESPACE needs a size'));
        await scripts.checkSpace(args[0]!, Number(args[1]));
        return this.send(response('OK', 'Putscript would succeed'));
      }
      case 'CHECKSCRIPT':
        if (!(await want(1))) return;
        return this.check(args[0]!, () => this.send(response('OK', 'Script is valid')));
      case 'PUTSCRIPT':
        if (!(await want(2))) return;
        ScriptStore.checkName(args[0]!);
        return this.check(args[1]!, async () => {
          await scripts.put(args[0]!, args[1]!);
          this.deps.logger.info({ address: this.address, script: args[0], size: Buffer.byteLength(args[1]!) }, 'sieve script stored');
          await this.send(response('OK', 'Putscript completed'));
        });
      case 'GETSCRIPT': {
        if (!(await want(1))) return;
        const text = await scripts.get(args[0]!);
        if (text === null) return this.send(response('NO', 'No such script', 'NONEXISTENT'));
        return this.send(Buffer.concat([Buffer.from(`{${Buffer.byteLength(text)}}\r\n${text}\r\n`), response('OK', 'Getscript completed')]));
      }
      case 'SETACTIVE':
        if (!(await want(1))) return;
        await scripts.setActive(args[0]!);
        this.deps.logger.info({ address: this.address, script: args[0] || null }, 'sieve script activated');
        return this.send(response('OK', 'Setactive completed'));
      case 'DELETESCRIPT':
        if (!(await want(1))) return;
        await scripts.delete(args[0]!);
        return this.send(response('OK', 'Deletescript completed'));
      case 'RENAMESCRIPT':
        if (!(await want(2))) return;
        await scripts.rename(args[0]!, args[1]!);
        return this.send(response('OK', 'Renamescript completed'));
    }
    return this.fail(response('NO', 'Unknown command'));
  }

  /** Compiles a script; a syntax error is answered with its line (RFC 5804 §2.6). */
  private async check(text: string, then: () => Promise<void>): Promise<void> {
    if (Buffer.byteLength(text) > this.deps.limits.maxSize) return this.send(response('NO', `scripts are limited to ${this.deps.limits.maxSize} bytes`, 'QUOTA/MAXSIZE'));
    try {
      compileScript(text);
    } catch (err) {
      if (err instanceof SieveSyntaxError) return this.send(response('NO', err.message));
      throw err;
    }
    return then();
  }

  private async authenticate(args: string[]): Promise<void> {
    if (this.state !== 'nonauth') return this.fail(response('NO', 'Already authenticated'));
    // the seed: "TLS required" — no password crosses the wire in clear text
    if (!this.io.secure) return this.fail(response('NO', 'TLS required; use STARTTLS first', 'ENCRYPT-NEEDED'));
    const mech = (args[0] ?? '').toUpperCase();
    if (mech === 'PLAIN') {
      this.sasl = { mech: 'PLAIN' };
      if (args[1] !== undefined) return this.saslStep([args[1]]);
      return this.send(Buffer.from('""\r\n'));
    }
    if (mech === 'LOGIN') {
      this.sasl = { mech: 'LOGIN', user: null };
      return this.send(Buffer.from(`${sieveString(Buffer.from('Username:').toString('base64'))}\r\n`));
    }
    return this.fail(response('NO', 'Unsupported mechanism'));
  }

  private async saslStep(words: string[]): Promise<void> {
    const sasl = this.sasl!;
    const b64 = words[0];
    if (words.length !== 1 || b64 === undefined || b64 === '*') {
      this.sasl = null;
      return this.fail(response('NO', 'Authentication cancelled'));
    }
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) {
      this.sasl = null;
      return this.fail(response('NO', 'Invalid base64'));
    }
    const text = Buffer.from(b64, 'base64').toString('utf8');
    if (sasl.mech === 'LOGIN' && sasl.user === null) {
      sasl.user = text;
      return this.send(Buffer.from(`${sieveString(Buffer.from('Password:').toString('base64'))}\r\n`));
    }
    this.sasl = null;
    if (sasl.mech === 'LOGIN') return this.login(sasl.user!, text);
    const fields = text.split('\0');
    if (fields.length !== 3) return this.fail(response('NO', 'Invalid PLAIN response'));
    const [authz, authc, password] = fields as [string, string, string];
    if (authz && authz !== authc) return this.fail(response('NO', 'Proxy authorization not allowed'));
    return this.login(authc, password);
  }

  private async login(login: string, password: string): Promise<void> {
    const res = await mailLogin(this.deps.directory, { login, password, protocol: 'sieve', remote: this.io.remote });
    if (!res.ok) {
      await this.send(res.reason === 'throttled' ? response('NO', 'Too many failed logins; try later', 'TRYLATER') : response('NO', 'Authentication failed'));
      if (++this.authFailures >= MAX_AUTH_FAILURES) await this.bye('Too many failed logins');
      return;
    }
    this.principal = res.principal;
    this.address = res.address;
    this.scripts = new ScriptStore(this.deps.store.mailboxPath(res.address), this.deps.limits);
    this.state = 'auth';
    this.deps.logger.info({ login, address: res.address, remote: this.io.remote }, 'ManageSieve login');
    await this.send(response('OK', 'Logged in'));
  }
}
