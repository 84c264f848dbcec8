import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import type net from 'node:net';
import { Directory, type App } from '@hearth/directory';
import { createLogger } from '@hearth/log';
import { runCommand, testEnv, type CommandResult, type TestEnv } from '@hearth/testkit';
import { startSmtp, type RunningSmtp, type SmtpOptions } from '../src/server.ts';
import { loadSmtpSettings } from '../src/settings.ts';

export const USER = { username: 'alice', email: 'alice@example.test', password: 'alice-password-1' };
export const BOB = { username: 'bob', email: 'bob@example.test', password: 'bob-password-1' };
export const WIKI = { username: 'wiki.app@example.test', password: 'wiki-smtp-secret', from: 'wiki.app@example.test' };
export const CHAT = { username: 'chat.app@example.test', password: '-chat-smtp-secret' /* a leading '-' proves the swaks helper passes it as a value */, from: 'chat.app@example.test' };

function app(id: string, domain: string, cred: typeof WIKI, supportsDisplayName: boolean, extra: App['credentials'] = {}): App {
  return {
    id,
    domain,
    manifest: { id: `org.example.${id}`, addons: { sendmail: supportsDisplayName ? { supportsDisplayName: true } : {}, ...(extra.recvmail ? { recvmail: {} } : {}) } },
    access: null,
    upstream: null,
    credentials: { sendmail: { username: cred.username, password: cred.password, from: cred.from, ...(supportsDisplayName ? { displayName: 'Wiki' } : {}) }, ...extra },
    createdAt: new Date().toISOString(),
  };
}

/** Users alice/bob with mailboxes, app "wiki" (supportsDisplayName) and app "chat" (no display name; recvmail). */
export async function seed(directory: Directory): Promise<void> {
  await directory.addUser(USER);
  await directory.addUser(BOB);
  await directory.addMailbox(USER.email, USER.username);
  await directory.addMailbox('alice.alias@example.test', USER.username);
  await directory.addMailbox(BOB.email, BOB.username);
  await directory.putApp(app('wiki', 'wiki.example.test', WIKI, true), []);
  await directory.putApp(app('chat', 'chat.example.test', CHAT, false, { recvmail: { username: 'chat.app@example.test', password: 'recv-secret', address: 'chat.app@example.test' } }), ['chat.app@example.test']);
}

export interface Stack {
  env: TestEnv;
  directory: Directory;
  smtp: RunningSmtp;
  close(): Promise<void>;
}

/** An in-process SMTP service on port 0 with a seeded directory. */
export async function startStack(extraEnv: Record<string, string> = {}, opts: SmtpOptions = {}, backend: 'sqlite' | 'postgres' = 'sqlite'): Promise<Stack> {
  const env = await testEnv({ backend, env: { HEARTH_SMTP_PORT: '0', HEARTH_SMTPS_PORT: '0', HEARTH_SMTP_INBOUND_PORT: '0', ...extraEnv } });
  const logger = createLogger('smtp-test', env.config.logLevel);
  const directory = await Directory.open(env.config, { logger });
  await seed(directory);
  const settings = loadSmtpSettings({ ...process.env, ...env.env });
  const smtp = await startSmtp({ config: env.config, directory, logger }, { settings, ...opts });
  const stack: Stack = {
    env,
    directory,
    smtp,
    async close() {
      // the running instance, which a test may have restarted
      await stack.smtp.close();
      await directory.close();
      await env.cleanup();
    },
  };
  return stack;
}

export interface Sink {
  port: number;
  messages: { from: string; to: string[]; raw: string; secure: boolean; user: string | null }[];
  /** reply for RCPT: null accepts */
  rcptReply: ((address: string) => { code: number; message: string } | null) | null;
  close(): Promise<void>;
}

/** A loopback SMTP server standing in for a smarthost / remote MX. */
export async function startSink(port = 0, tls: { secure?: boolean; starttls?: boolean; key?: string; cert?: string } = {}): Promise<Sink> {
  const sink: Sink = {
    port: 0,
    messages: [],
    rcptReply: null,
    close: async () => {},
  };
  const server = new SMTPServer({
    authOptional: true,
    closeTimeout: 200,
    secure: tls.secure ?? false,
    key: tls.key,
    cert: tls.cert,
    disabledCommands: tls.starttls || tls.secure ? [] : ['STARTTLS'],
    logger: false,
    disableReverseLookup: true,
    onAuth(auth, _s, cb) {
      cb(null, { user: auth.username });
    },
    onRcptTo(address, _s, cb) {
      const r = sink.rcptReply?.(address.address);
      if (r) return cb(Object.assign(new Error(r.message), { responseCode: r.code }));
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        sink.messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('latin1'),
          secure: session.secure,
          user: (session.user as string | undefined) ?? null,
        });
        cb();
      });
    },
  });
  server.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  sink.port = (server.server.address() as net.AddressInfo).port;
  sink.close = () => new Promise<void>((r) => server.close(() => r()));
  return sink;
}

/**
 * Runs swaks against `server` (127.0.0.1 unless given). swaks cannot take an option value that starts with `-` from its
 * command line (it rewrites `--opt=value` to `--opt value`, and Getopt::Long then reads the value
 * as an option), so `--auth-password` is answered on stdin, where swaks asks for it when none is given.
 */
export function swaks(args: string[], server = '127.0.0.1'): Promise<CommandResult> {
  const rest = [...args];
  const i = rest.indexOf('--auth-password');
  const password = i < 0 ? undefined : rest.splice(i, 2)[1];
  if (password !== undefined && (password === '' || password.includes('\n'))) throw new Error('swaks helper: --auth-password needs a one-line value');
  return runCommand('swaks', ['--server', server, '--timeout', '10', ...rest], { input: password === undefined ? '' : `${password}\n`, timeoutMs: 20_000 });
}

/** Files delivered into a mailbox's INBOX (new/ and cur/). */
export function maildirFiles(dataDir: string, address: string): string[] {
  const [local, domain] = address.split('@');
  const base = path.join(dataDir, 'mail', domain!, local!);
  const out: string[] = [];
  for (const sub of ['new', 'cur']) {
    const dir = path.join(base, sub);
    if (fs.existsSync(dir)) for (const f of fs.readdirSync(dir)) out.push(path.join(dir, f));
  }
  return out;
}

export function maildirMessages(dataDir: string, address: string): string[] {
  return maildirFiles(dataDir, address).map((f) => fs.readFileSync(f, 'latin1'));
}

/**
 * Sends `count` messages (Subject: burst-<i>) from stranger@remote.test in one python smtplib
 * session; calls onLast the moment the last 250 arrives. Resolves with the script's output.
 */
export function sendBurst(opts: { port: number; count: number; rcpts: string[]; host?: string; onLast?: () => void }): Promise<string> {
  const host = opts.host ?? '127.0.0.1';
  const script = `
import smtplib
s = smtplib.SMTP('${host}', ${opts.port}, timeout=20, source_address=('${host}', 0))
for i in range(${opts.count}):
    s.sendmail('stranger@remote.test', ${JSON.stringify(opts.rcpts)}, 'From: <stranger@remote.test>\\r\\nSubject: burst-%d\\r\\n\\r\\nbody %d\\r\\n' % (i, i))
print('LAST250', flush=True)
s.close()
`;
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const t = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('LAST250')) opts.onLast?.();
    });
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(t);
      resolve(out);
    });
  });
}
