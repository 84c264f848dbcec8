import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { Directory } from '@hearth/directory';
import { createLogger } from '@hearth/log';
import { runCommand, tempDir, testEnv, type TestEnv } from '@hearth/testkit';
import { handToDovecot, startDovecot } from '../../imap/test/dovecot.ts';
import { startManageSieve, type RunningManageSieve } from '../src/server.ts';
import { SIEVE_CONNECTION_DEFAULTS } from '../src/settings.ts';

const USER = { username: 'alice', email: 'alice@example.test', password: 'alice-password-1' };
let env: TestEnv;
let directory: Directory;
let server: RunningManageSieve;

before(async () => {
  env = await testEnv();
  const logger = createLogger('managesieve-test', 'warn');
  directory = await Directory.open(env.config, { logger });
  await directory.addUser(USER);
  await directory.addMailbox(USER.email, USER.username);
  server = await startManageSieve({ config: env.config, directory, logger, port: 0, settings: { limits: { maxSize: 4096, maxScripts: 3 }, connections: SIEVE_CONNECTION_DEFAULTS } });
});
after(async () => {
  await server.close();
  await directory.close();
  await env.cleanup();
});

const mailbox = (): string => path.join(env.dataDir, 'mail', 'example.test', 'alice');

/** Debian's sieve-connect (the reference client), password on fd 0. */
function sieveConnect(args: string[], password = USER.password): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCommand('sieve-connect', ['--server', '127.0.0.1', '--port', String(server.port), '--user', USER.username, '--passwordfd', '0', '--notlsverify', '--authmech', 'PLAIN', ...args], {
    input: `${password}\n`,
    timeoutMs: 30_000,
  });
}

test('sieve-connect uploads, lists, activates, downloads, deactivates and deletes scripts', { timeout: 120_000 }, async () => {
  const local = path.join(env.dataDir, 'vacation.sieve');
  const script = 'require ["fileinto", "vacation"];\nif header :contains "subject" "report" {\n  fileinto "Reports";\n}\nvacation :days 7 "Away";\n';
  fs.writeFileSync(local, script);
  let r = await sieveConnect(['--upload', '--localsieve', local, '--remotesieve', 'main']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(fs.readFileSync(path.join(mailbox(), 'sieve', 'main.sieve'), 'utf8'), script);
  r = await sieveConnect(['--activate', '--remotesieve', 'main']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(fs.readlinkSync(path.join(mailbox(), '.dovecot.sieve')), 'sieve/main.sieve');
  r = await sieveConnect(['--list']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^"main" ACTIVE$/m, r.stdout);
  const back = path.join(env.dataDir, 'back.sieve');
  r = await sieveConnect(['--download', '--remotesieve', 'main', '--localsieve', back]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(fs.readFileSync(back, 'utf8'), script);
  // the active script cannot be deleted (RFC 5804 §2.10)
  r = await sieveConnect(['--delete', '--remotesieve', 'main']);
  assert.notEqual(r.code, 0);
  assert.ok(fs.existsSync(path.join(mailbox(), 'sieve', 'main.sieve')));
  r = await sieveConnect(['--deactivate']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  r = await sieveConnect(['--delete', '--remotesieve', 'main']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.ok(!fs.existsSync(path.join(mailbox(), 'sieve', 'main.sieve')));
  // a script with a syntax error is refused with its line; nothing is stored
  fs.writeFileSync(local, 'require "fileinto";\nkeep;\nfileinto "x"\nstop;\n');
  r = await sieveConnect(['--upload', '--localsieve', local, '--remotesieve', 'broken']);
  assert.notEqual(r.code, 0);
  assert.match(r.stdout + r.stderr, /line 4: expected ";" after fileinto/);
  assert.ok(!fs.existsSync(path.join(mailbox(), 'sieve', 'broken.sieve')));
  r = await sieveConnect(['--list'], 'wrong-password');
  assert.notEqual(r.code, 0);
});

/** A raw client: reads until a line that starts an OK/NO/BYE response. */
class Raw {
  private buf = '';
  constructor(public sock: net.Socket | tls.TLSSocket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (this.buf += d));
  }
  static async connect(port = server.port): Promise<Raw> {
    const s = net.connect(port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    return new Raw(s);
  }
  async response(): Promise<string> {
    for (let i = 0; i < 400; i++) {
      const m = /(^|\r\n)(OK|NO|BYE)[^\r\n]*\r\n/.exec(this.buf);
      const lit = m && /\{(\d+)\}\r\n$/.exec(m[0]);
      // a response text sent as a literal: wait for its bytes and the final CRLF
      if (m && (!lit || this.buf.length >= m.index + m[0].length + Number(lit[1]) + 2)) {
        const end = m.index + m[0].length + (lit ? Number(lit[1]) + 2 : 0);
        const out = this.buf.slice(0, end);
        this.buf = this.buf.slice(end);
        return out;
      }
      if (this.sock.destroyed) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    return this.buf;
  }
  async cmd(line: string): Promise<string> {
    this.sock.write(line);
    return this.response();
  }
  async starttls(): Promise<string> {
    assert.match(await this.cmd('STARTTLS\r\n'), /^OK/);
    this.sock.removeAllListeners('data');
    const t = tls.connect({ socket: this.sock as net.Socket, rejectUnauthorized: false });
    await new Promise((r) => t.once('secureConnect', r));
    this.sock = t;
    t.setEncoding('utf8');
    t.on('data', (d: string) => (this.buf += d));
    return this.response();
  }
  closed(): Promise<boolean> {
    return new Promise((r) => {
      if (this.sock.destroyed) return r(true);
      const timer = setTimeout(() => r(false), 5000);
      this.sock.once('close', () => {
        clearTimeout(timer);
        r(true);
      });
    });
  }
}

const plain = Buffer.from(`\0${USER.username}\0${USER.password}`).toString('base64');

test('before TLS: no SASL offered, AUTHENTICATE refused, script commands refused', async () => {
  const c = await Raw.connect();
  const greeting = await c.response();
  assert.match(greeting, /"STARTTLS"/);
  assert.doesNotMatch(greeting, /"SASL"/);
  // exactly the extensions a delivery carries out (shared/sieve's README lists them)
  assert.match(greeting, /^"SIEVE" "fileinto reject ereject envelope encoded-character imap4flags copy body variables vacation relational subaddress mailbox date index comparator-i;ascii-numeric"\r$/m);
  assert.match(await c.cmd(`AUTHENTICATE "PLAIN" "${plain}"\r\n`), /^NO \(ENCRYPT-NEEDED\) "TLS required/);
  assert.match(await c.cmd('LISTSCRIPTS\r\n'), /^NO "Authenticate first"/);
  assert.match(await c.cmd('PUTSCRIPT "x" {5+}\r\nkeep;\r\n'), /^NO "Authenticate first"/);
  const caps = await c.starttls();
  assert.match(caps, /"SASL" "PLAIN LOGIN"/);
  assert.doesNotMatch(caps, /"STARTTLS"/);
  assert.match(await c.cmd(`AUTHENTICATE "PLAIN" "${plain}"\r\n`), /^OK/);
  assert.match(await c.cmd('CHECKSCRIPT {24+}\r\nif true { keep; }\r\nstop\r\n'), /^NO \{\d+\}\r\nline 2: expected ";" or "\{" after stop, found end of script\r\n$/);
  assert.match(await c.cmd('HAVESPACE "big" 5000\r\n'), /^NO \(QUOTA\/MAXSIZE\)/);
  assert.match(await c.cmd('PUTSCRIPT "a" "keep;"\r\n'), /^OK/);
  assert.match(await c.cmd('RENAMESCRIPT "a" "b"\r\n'), /^OK/);
  assert.match(await c.cmd('GETSCRIPT "a"\r\n'), /^NO \(NONEXISTENT\)/);
  assert.match(await c.cmd('GETSCRIPT "b"\r\n'), /^\{5\}\r\nkeep;\r\nOK/);
  assert.match(await c.cmd('PUTSCRIPT "c" "keep;"\r\n'), /^OK/);
  assert.match(await c.cmd('PUTSCRIPT "d" "keep;"\r\n'), /^OK/);
  assert.match(await c.cmd('PUTSCRIPT "e" "keep;"\r\n'), /^NO \(QUOTA\/MAXSCRIPTS\)/);
  assert.match(await c.cmd('PUTSCRIPT "../escape" "keep;"\r\n'), /^NO "invalid script name"/);
  assert.match(await c.cmd('NOOP "tag1"\r\n'), /^OK \(TAG "tag1"\)/);
  assert.match(await c.cmd('LOGOUT\r\n'), /^OK/);
});

test('a literal of absurd size is refused at its header, without reading it, and the connection ends', async () => {
  const c = await Raw.connect();
  await c.response();
  assert.match(await c.cmd('PUTSCRIPT "x" {99999999999+}\r\n'), /^BYE "Literal of 99999999999 bytes/);
  assert.ok(await c.closed());
});

test('fuzz: random bytes and broken commands never take the daemon down', { timeout: 60_000 }, async () => {
  let seed = 7;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const pieces = ['PUTSCRIPT', 'AUTHENTICATE', '"', '{', '}', '{3+}', '{-1}', '\r\n', '\n', ' ', 'STARTTLS', '\\', 'LOGOUT', 'x'.repeat(9000), '\0', '\xff', 'NOOP'];
  for (let round = 0; round < 40; round++) {
    const c = await Raw.connect();
    let data = '';
    for (let i = 0; i < 30; i++) data += pieces[rand(pieces.length)];
    c.sock.write(data);
    await new Promise((r) => setTimeout(r, 20));
    c.sock.destroy();
  }
  const c = await Raw.connect();
  assert.match(await c.response(), /^"IMPLEMENTATION" "Hearth"/);
  assert.match(await c.cmd('NOOP\r\n'), /^OK/);
  c.sock.destroy();
});

/**
 * What Roundcube's managesieve plugin (PEAR Net_Sieve) sends when a user edits filters, in its
 * order: after the greeting (and STARTTLS where offered, then the capabilities again)
 * AUTHENTICATE PLAIN, LISTSCRIPTS, HAVESPACE before an upload, PUTSCRIPT with a non-synchronizing
 * literal, CHECKSCRIPT, SETACTIVE, GETSCRIPT, RENAMESCRIPT, DELETESCRIPT, NOOP, LOGOUT.
 */
const ROUNDCUBE_SESSION = [
  'LISTSCRIPTS\r\n',
  'HAVESPACE "roundcube" 100\r\n',
  'PUTSCRIPT "roundcube" {47+}\r\nrequire ["fileinto"];\r\nfileinto "Lists";\r\nstop;\r\n',
  'PUTSCRIPT "broken" {24+}\r\nif true { keep; }\r\nstop\r\n',
  'CHECKSCRIPT {24+}\r\nif true { keep; }\r\nstop\r\n',
  'CHECKSCRIPT {6+}\r\nkeep;\r\n',
  'SETACTIVE "roundcube"\r\n',
  'SETACTIVE "missing"\r\n',
  'LISTSCRIPTS\r\n',
  'GETSCRIPT "roundcube"\r\n',
  'RENAMESCRIPT "roundcube" "filters"\r\n',
  'RENAMESCRIPT "missing" "other"\r\n',
  'LISTSCRIPTS\r\n',
  'DELETESCRIPT "filters"\r\n',
  'SETACTIVE ""\r\n',
  'DELETESCRIPT "filters"\r\n',
  'GETSCRIPT "filters"\r\n',
  'LISTSCRIPTS\r\n',
  'NOOP "rc-1"\r\n',
  'LOGOUT\r\n',
];

/** A response as RFC 5804 fixes it: data lines, then the status and its response code; the human-readable text dropped. */
function normalized(response: string): string {
  const m = /(^|\r\n)((OK|NO|BYE)( \([^)]*\))?)[^\r\n]*\r\n/.exec(response)!;
  return `${response.slice(0, m.index + m[1]!.length)}${m[2]}`;
}

test('the Roundcube managesieve plugin\'s command sequence gets the answers Dovecot\'s managesieved (Pigeonhole) gives', { timeout: 60_000 }, async (t) => {
  const dir = tempDir('hearth-managesieve-dovecot-');
  fs.chmodSync(dir, 0o755);
  fs.mkdirSync(path.join(dir, 'mail'), { recursive: true });
  handToDovecot(path.join(dir, 'mail'));
  let dovecot;
  try {
    dovecot = await startDovecot({ dir, maildir: path.join(dir, 'mail'), login: USER.username, password: USER.password, managesieve: true });
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    return t.skip(`dovecot-managesieved: ${(err as Error).message.split('\n')[0]}`);
  }
  t.after(async () => {
    await dovecot.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const session = async (c: Raw, tls: boolean): Promise<string[]> => {
    const greeting = await c.response();
    // Net_Sieve reads IMPLEMENTATION, SASL, SIEVE and STARTTLS from the greeting; STARTTLS when offered (Hearth: required)
    assert.match(greeting, /^"IMPLEMENTATION" "[^"]+"\r\n/m);
    assert.match(greeting, /^"VERSION" "1\.0"\r$/m);
    const caps = tls ? await c.starttls() : greeting;
    assert.match(caps, /^"SASL" "PLAIN LOGIN"\r$/m);
    assert.match(caps, /^"SIEVE" "[^"]*\bfileinto\b[^"]*"\r$/m);
    assert.match(await c.cmd(`AUTHENTICATE "PLAIN" "${plain}"\r\n`), /^OK/);
    const out: string[] = [];
    for (const command of ROUNDCUBE_SESSION) out.push(normalized(await c.cmd(command)));
    return out;
  };
  // a fresh mailbox for Hearth's side, as Dovecot's is
  fs.rmSync(path.join(mailbox(), 'sieve'), { recursive: true, force: true });
  fs.rmSync(path.join(mailbox(), '.dovecot.sieve'), { force: true });
  const ours = await session(await Raw.connect(), true);
  const theirs = await session(await Raw.connect(dovecot.port), false);
  for (const [i, command] of ROUNDCUBE_SESSION.entries()) assert.equal(ours[i], theirs[i], command.split('\r\n')[0]);
  // and what RFC 5804 says they are (§§2.4-2.11, 1.3)
  assert.deepEqual(ours, [
    'OK',
    'OK',
    'OK',
    'NO',
    'NO',
    'OK',
    'OK',
    'NO (NONEXISTENT)',
    '"roundcube" ACTIVE\r\nOK',
    // the upload's literal is 47 bytes: the script ends at "stop;", the CRLF after it ends the command
    '{47}\r\nrequire ["fileinto"];\r\nfileinto "Lists";\r\nstop;\r\nOK',
    'OK',
    'NO (NONEXISTENT)',
    '"filters" ACTIVE\r\nOK',
    'NO (ACTIVE)',
    'OK',
    'OK',
    'NO (NONEXISTENT)',
    'OK',
    'OK (TAG "rc-1")',
    'OK',
  ]);
});
