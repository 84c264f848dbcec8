import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Directory } from '@hearth/directory';
import { createLogger } from '@hearth/log';
import { MailStore } from '@hearth/mailstore';
import { runCommand, testEnv, type TestEnv } from '@hearth/testkit';
import { startImap, type RunningImap } from '../services/imap/src/server.ts';
import { IMAP_CONNECTION_DEFAULTS } from '../services/imap/src/settings.ts';
import { startManageSieve, type RunningManageSieve } from '../services/managesieve/src/server.ts';
import { SIEVE_CONNECTION_DEFAULTS } from '../services/managesieve/src/settings.ts';
import { startSmtp, type RunningSmtp } from '../services/smtp/src/server.ts';
import { loadSmtpSettings } from '../services/smtp/src/settings.ts';

/**
 * The whole path with the clients people use: sieve-connect uploads and activates a script over
 * ManageSieve, swaks delivers on the MX port, Python's imaplib looks where each message landed.
 */
const USER = { username: 'alice', email: 'alice@example.test', password: 'alice-password-1' };
let env: TestEnv;
let directory: Directory;
let smtp: RunningSmtp;
let imap: RunningImap;
let sieve: RunningManageSieve;

before(async () => {
  env = await testEnv({ env: { HEARTH_SMTP_PORT: '0', HEARTH_SMTPS_PORT: '0', HEARTH_SMTP_INBOUND_PORT: '0' } });
  const logger = createLogger('sieve-clients-test', env.config.logLevel);
  directory = await Directory.open(env.config, { logger });
  await directory.addUser(USER);
  await directory.addMailbox(USER.email, USER.username);
  smtp = await startSmtp({ config: env.config, directory, logger }, { settings: loadSmtpSettings({ ...process.env, ...env.env }) });
  const quota = { bytes: 0, messages: 0 };
  imap = await startImap({ config: env.config, directory, logger, store: new MailStore(env.dataDir, quota), settings: { maxMessageBytes: 1024 * 1024, quota, connections: IMAP_CONNECTION_DEFAULTS }, ports: { imap: 0, imaps: 0 } });
  sieve = await startManageSieve({ config: env.config, directory, logger, port: 0, settings: { limits: { maxSize: 64 * 1024, maxScripts: 5 }, connections: SIEVE_CONNECTION_DEFAULTS } });
});
after(async () => {
  await sieve.close();
  await imap.close();
  await smtp.close();
  await directory.close();
  await env.cleanup();
});

const sieveConnect = (args: string[]) =>
  runCommand('sieve-connect', ['--server', '127.0.0.1', '--port', String(sieve.port), '--user', USER.username, '--passwordfd', '0', '--notlsverify', '--authmech', 'PLAIN', ...args], { input: `${USER.password}\n`, timeoutMs: 30_000 });
const swaks = (to: string, subject: string, extra: string[] = []) =>
  runCommand('swaks', ['--server', '127.0.0.1', '--port', String(smtp.ports.smtpInbound), '--timeout', '10', '--from', 'dave@remote.test', '--to', to, '--h-From', 'dave@remote.test', '--h-To', to, '--h-Subject', subject, ...extra], { input: '', timeoutMs: 20_000 });

/** Subjects per folder, as imaplib sees them. */
async function subjects(folders: string[]): Promise<Record<string, string[]>> {
  const r = await runCommand('python3', [
    '-c',
    `
import imaplib, json
M = imaplib.IMAP4('127.0.0.1', ${imap.ports.imap})
M.login(${JSON.stringify(USER.username)}, ${JSON.stringify(USER.password)})
out = {}
for f in ${JSON.stringify(folders)}:
    out[f] = []
    typ, count = M.select(f, readonly=True)
    if typ != 'OK' or int(count[0]) == 0:
        continue
    typ, data = M.fetch('1:*', '(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
    for part in data:
        if isinstance(part, tuple):
            out[f].append(part[1].decode().strip().removeprefix('Subject: ') + (' [flagged]' if b'\\\\Flagged' in part[0] else ''))
print(json.dumps(out))
M.logout()
`,
  ]);
  assert.equal(r.code, 0, r.out);
  return JSON.parse(r.stdout) as Record<string, string[]>;
}

test('a script uploaded with sieve-connect files swaks deliveries where imaplib finds them: subaddress, date, index, imap4flags, all copies of a fileinto :copy', { timeout: 180_000 }, async () => {
  const script = `require ["fileinto", "mailbox", "envelope", "subaddress", "imap4flags", "copy", "date", "index", "relational", "variables"];
if envelope :detail "to" "lists" { fileinto :create "Lists"; stop; }
if header :index 1 :contains "subject" "urgent" { addflag "\\\\Flagged"; }
if date :value "ge" :originalzone "date" "year" "2030" { fileinto :copy :create "Future"; }
if currentdate :value "ge" "year" "2020" { fileinto :copy :create "Archive"; }
`;
  const local = path.join(env.dataDir, 'filters.sieve');
  fs.writeFileSync(local, script);
  let r = await sieveConnect(['--upload', '--localsieve', local, '--remotesieve', 'filters']);
  assert.equal(r.code, 0, r.out);
  r = await sieveConnect(['--activate', '--remotesieve', 'filters']);
  assert.equal(r.code, 0, r.out);
  // a script that Pigeonhole also refuses is refused with its line, nothing stored
  fs.writeFileSync(local, 'keep;\nif allof true { discard; }\n');
  r = await sieveConnect(['--upload', '--localsieve', local, '--remotesieve', 'bad']);
  assert.notEqual(r.code, 0);
  assert.match(r.out, /line 2: allof needs a test list in parentheses/);

  assert.equal((await swaks('alice+lists@example.test', 'list mail')).code, 0);
  assert.equal((await swaks(USER.email, 'urgent: call me')).code, 0);
  assert.equal((await swaks(USER.email, 'from the future', ['--h-Date', 'Tue, 01 Jan 2030 10:00:00 +0000'])).code, 0);
  await smtp.queue.drained(60_000);
  const seen = await subjects(['INBOX', 'Lists', 'Future', 'Archive']);
  assert.deepEqual(seen.Lists, ['list mail']);
  assert.deepEqual(seen.INBOX!.sort(), ['from the future', 'urgent: call me [flagged]']);
  assert.deepEqual(seen.Future, ['from the future']);
  assert.deepEqual(seen.Archive!.sort(), ['from the future', 'urgent: call me [flagged]']);
});
