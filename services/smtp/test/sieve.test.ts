import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createLogger } from '@hearth/log';
import { MailStore } from '@hearth/mailstore';
import { ScriptStore } from '@hearth/sieve';
import { waitFor } from '@hearth/testkit';
import { startSmtp } from '../src/server.ts';
import { loadSmtpSettings } from '../src/settings.ts';
import { BOB, maildirMessages, startSink, startStack, swaks, USER, type Sink, type Stack } from './helpers.ts';

let stack: Stack;
let sink: Sink;
before(async () => {
  sink = await startSink();
  // mail for other domains (vacation replies and redirects to remote.test) goes to the sink
  stack = await startStack({ HEARTH_SMTP_RELAY: `smtp://127.0.0.1:${sink.port}`, HEARTH_SMTP_RETRY_DELAYS: '1' });
  await activate(
    USER.email,
    `require ["fileinto", "mailbox", "imap4flags", "reject", "envelope", "subaddress", "variables", "body"];
if body :content "text/plain" :contains "Café menu" { fileinto :create "Food"; stop; }
if header :contains "subject" "[report]" { fileinto :create "Reports"; stop; }
if header :matches "subject" "urgent*" { addflag "\\\\Flagged"; keep; stop; }
if envelope :detail "to" "lists" { fileinto :create "Lists"; stop; }
if address :is "from" "${BOB.email}" { if header :contains "subject" "go away" { reject "Not interested."; } }
`,
  );
});
after(async () => {
  await stack.close();
  await sink.close();
});

async function activate(address: string, script: string): Promise<void> {
  const scripts = new ScriptStore(new MailStore(stack.env.dataDir).mailboxPath(address));
  await scripts.put('filters', script);
  await scripts.setActive('filters');
}

const root = (address: string): string => new MailStore(stack.env.dataDir).mailboxPath(address);
const filesIn = (folder: string, address = USER.email): string[] => {
  const dir = folder === 'INBOX' ? root(address) : path.join(root(address), `.${folder}`);
  return ['new', 'cur'].flatMap((s) => (fs.existsSync(path.join(dir, s)) ? fs.readdirSync(path.join(dir, s)).map((f) => path.join(dir, s, f)) : []));
};
const send = (to: string, subject: string, from = 'someone@remote.test', extra: string[] = []) =>
  swaks(['--port', String(stack.smtp.ports.smtpInbound), '--from', from, '--to', to, '--h-From', from, '--h-To', to, '--h-Subject', subject, ...extra]);
const sunk = (pred: (m: Sink['messages'][number]) => boolean) => sink.messages.filter(pred);

test('swaks deliveries that the active Sieve script files into folders (created on demand), flags, or keeps', { timeout: 120_000 }, async () => {
  assert.equal((await send(USER.email, 'weekly [report] numbers')).code, 0);
  await waitFor(() => filesIn('Reports').length === 1 || undefined, 20_000);
  assert.match(fs.readFileSync(filesIn('Reports')[0]!, 'utf8'), /Subject: weekly \[report\] numbers/);

  assert.equal((await send(USER.email, 'Urgent: call me')).code, 0);
  await waitFor(() => filesIn('INBOX').some((f) => /:2,F$/.test(f)) || undefined, 20_000);

  assert.equal((await send(USER.email, 'plain hello')).code, 0);
  await waitFor(() => filesIn('INBOX').length === 2 || undefined, 20_000);
});

test('body :content over SMTP: the text/plain part is read through its quoted-printable and ISO-8859-1; the same words only in the HTML part are not', { timeout: 60_000 }, async () => {
  const mime = (subject: string, plain: string, html: string): string =>
    [`From: someone@remote.test`, `To: ${USER.email}`, `Subject: ${subject}`, 'MIME-Version: 1.0', 'Content-Type: multipart/alternative; boundary="b1"', '', '--b1', 'Content-Type: text/plain; charset=iso-8859-1', 'Content-Transfer-Encoding: quoted-printable', '', plain, '--b1', 'Content-Type: text/html; charset=utf-8', '', html, '--b1--', ''].join('\r\n');
  const dir = fs.mkdtempSync(path.join(stack.env.dataDir, 'mime-'));
  const sendMime = (name: string, data: string) => {
    fs.writeFileSync(path.join(dir, name), data);
    return swaks(['--port', String(stack.smtp.ports.smtpInbound), '--from', 'someone@remote.test', '--to', USER.email, '--data', `@${path.join(dir, name)}`]);
  };
  assert.equal((await sendMime('a.eml', mime('lunch plans', 'The Caf=E9 menu is attached.', '<p>see text</p>'))).code, 0);
  await waitFor(() => filesIn('Food').length === 1 || undefined, 20_000);
  assert.equal((await sendMime('b.eml', mime('html only', 'nothing here', '<p>The Café menu</p>'))).code, 0);
  await waitFor(() => maildirMessages(stack.env.dataDir, USER.email).some((m) => m.includes('Subject: html only')) || undefined, 20_000);
  assert.equal(filesIn('Food').length, 1);
  assert.ok(!fs.readFileSync(filesIn('Food')[0]!, 'latin1').includes('html only'));
});

test('RCPT TO user+detail@domain reaches the user (recipient_delimiter "+"), and :detail sees "lists"', { timeout: 60_000 }, async () => {
  const r = await send('alice+lists@example.test', 'list traffic');
  assert.equal(r.code, 0, r.stdout);
  await waitFor(() => filesIn('Lists').length === 1 || undefined, 20_000);
  const stored = fs.readFileSync(filesIn('Lists')[0]!, 'latin1');
  assert.match(stored, /^Delivered-To: alice\+lists@example\.test\r$/m);
  // an unknown user with a detail is still unknown, and only a local part before "+" counts
  const unknown = await send('nobody+lists@example.test', 'x');
  assert.match(unknown.stdout, /<\*\* 550 5\.1\.1/);
  const leading = await send('+lists@example.test', 'x');
  assert.notEqual(leading.code, 0);
});

test('reject: the message is not stored and the sender gets a bounce with the reason', { timeout: 120_000 }, async () => {
  const before = filesIn('INBOX').length;
  assert.equal((await send(USER.email, 'please go away', BOB.email)).code, 0);
  const bounce: string = (await waitFor(() => maildirMessages(stack.env.dataDir, BOB.email).find((m) => /Not interested\./.test(m)) ?? null, 30_000)) as string;
  assert.match(bounce, /^From: .*MAILER-DAEMON/im);
  assert.equal(filesIn('INBOX').length, before);
});

test('vacation: one reply per sender per :days, from the null sender, through the queue, surviving a restart; never to lists, bulk, bounces or mail not addressed to the user', { timeout: 180_000 }, async () => {
  const carol = 'carol@example.test';
  await stack.directory.addUser({ username: 'carol', email: carol, password: 'carol-password-1' });
  await stack.directory.addMailbox(carol, 'carol');
  await stack.directory.addMailbox('c.alias@example.test', 'carol');
  await activate(carol, 'require "vacation";\nvacation :days 3 :subject "Away" :addresses ["carol@old.example"] "I am away until Monday.";\n');
  const replies = (to: string) => sunk((m) => m.to.includes(to) && /Auto-Submitted: auto-replied/i.test(m.raw));

  const first = await send(carol, 'question 1', 'dave@remote.test', ['--h-Message-Id', '<q1@remote.test>']);
  assert.equal(first.code, 0, first.stdout);
  await waitFor(() => replies('dave@remote.test').length === 1 || undefined, 30_000);
  const reply = replies('dave@remote.test')[0]!;
  assert.equal(reply.from, '', 'RFC 3834 §3.3: the reply has a null return path');
  assert.match(reply.raw, /^From: carol@example\.test\r$/m);
  assert.match(reply.raw, /^To: <dave@remote\.test>\r$/m);
  assert.match(reply.raw, /^Subject: Away\r$/m);
  assert.match(reply.raw, /^In-Reply-To: <q1@remote\.test>\r$/m);
  assert.match(reply.raw, /^References: <q1@remote\.test>\r$/m);
  assert.match(reply.raw, /I am away until Monday\./);
  // the message itself is kept (vacation does not cancel the implicit keep)
  await waitFor(() => maildirMessages(stack.env.dataDir, carol).length === 1 || undefined, 20_000);

  // the same sender again: no second reply; the state is on disk, so a restart changes nothing
  await stack.smtp.close();
  const logger = createLogger('smtp-test', stack.env.config.logLevel);
  stack.smtp = await startSmtp({ config: stack.env.config, directory: stack.directory, logger }, { settings: loadSmtpSettings({ ...process.env, ...stack.env.env, HEARTH_SMTP_RELAY: `smtp://127.0.0.1:${sink.port}`, HEARTH_SMTP_RETRY_DELAYS: '1' }) });
  assert.equal((await send(carol, 'question 2', 'dave@remote.test')).code, 0);
  // to an alias in Cc, and to an extra :addresses address: both count as the user's
  assert.equal((await send(carol, 'to the alias', 'erin@remote.test', ['--h-To', 'someone@else.test', '--header', 'Cc: c.alias@example.test'])).code, 0);
  assert.equal((await send(carol, 'to the old address', 'frank@remote.test', ['--h-To', 'carol@old.example'])).code, 0);
  // never answered (RFC 5230 §4.5, §4.6; RFC 3834 §2)
  const quiet: [string, string[]][] = [
    ['list@remote.test', ['--header', 'List-Id: <talk.remote.test>']],
    ['bulk@remote.test', ['--header', 'Precedence: bulk']],
    ['robot@remote.test', ['--header', 'Auto-Submitted: auto-generated']],
    ['owner-talk@remote.test', []],
    ['blind@remote.test', ['--h-To', 'undisclosed-recipients:;']],
  ];
  for (const [from, extra] of quiet) assert.equal((await send(carol, `quiet from ${from}`, from, extra)).code, 0);
  // a bounce (null return path)
  assert.equal((await swaks(['--port', String(stack.smtp.ports.smtpInbound), '--from', '', '--to', carol, '--h-Subject', 'bounce'])).code, 0);
  await waitFor(() => maildirMessages(stack.env.dataDir, carol).length === 10 || undefined, 30_000);
  await waitFor(() => (replies('erin@remote.test').length === 1 && replies('frank@remote.test').length === 1) || undefined, 30_000);
  await stack.smtp.queue.drained(30_000);
  assert.equal(replies('dave@remote.test').length, 1);
  assert.match(replies('frank@remote.test')[0]!.raw, /^From: carol@old\.example\r$/m);
  assert.match(replies('erin@remote.test')[0]!.raw, /^From: c\.alias@example\.test\r$/m);
  for (const [from] of quiet) assert.equal(replies(from).length, 0, from);
  assert.equal(sunk((m) => m.from === '' && m.to.length === 0).length, 0);
});

test('redirect: :copy keeps a copy; the redirected message keeps the original envelope sender; a loop between two mailboxes ends in one of them', { timeout: 120_000 }, async () => {
  const gina = 'gina@example.test';
  const hank = 'hank@example.test';
  for (const [u, a] of [['gina', gina], ['hank', hank]] as const) {
    await stack.directory.addUser({ username: u, email: a, password: `${u}-password-1` });
    await stack.directory.addMailbox(a, u);
  }
  await activate(gina, 'require "copy";\nif header :contains "subject" "share" { redirect :copy "outside@remote.test"; stop; }\nredirect "hank@example.test";\n');
  await activate(hank, 'redirect "gina@example.test";\n');

  assert.equal((await send(gina, 'share this', 'ivan@remote.test')).code, 0);
  await waitFor(() => sunk((m) => m.to.includes('outside@remote.test')).length === 1 || undefined, 30_000);
  const out = sunk((m) => m.to.includes('outside@remote.test'))[0]!;
  assert.equal(out.from, 'ivan@remote.test', 'Pigeonhole keeps the original envelope sender');
  assert.match(out.raw, /^Delivered-To: gina@example\.test\r$/m);
  await waitFor(() => maildirMessages(stack.env.dataDir, gina).length === 1 || undefined, 20_000);

  // gina → hank → gina: the second arrival at gina already carries her Delivered-To, so it stays there
  assert.equal((await send(gina, 'ping-pong', 'ivan@remote.test')).code, 0);
  await waitFor(() => maildirMessages(stack.env.dataDir, gina).filter((m) => /Subject: ping-pong/.test(m)).length === 1 || undefined, 30_000);
  await stack.smtp.queue.drained(30_000);
  const kept = maildirMessages(stack.env.dataDir, gina).find((m) => /Subject: ping-pong/.test(m))!;
  assert.equal(kept.match(/^Delivered-To: gina@example\.test\r$/gm)?.length, 2);
  assert.match(kept, /^Delivered-To: hank@example\.test\r$/m);
  assert.equal(maildirMessages(stack.env.dataDir, hank).length, 0);
});

test('a script that fails at run time delivers to INBOX', { timeout: 60_000 }, async () => {
  await activate(BOB.email, 'require "variables";\nset "to" "not an address";\nredirect "${to}";\n');
  const count = maildirMessages(stack.env.dataDir, BOB.email).length;
  assert.equal((await send(BOB.email, 'still arrives')).code, 0);
  await waitFor(() => maildirMessages(stack.env.dataDir, BOB.email).some((m) => /Subject: still arrives/.test(m)) || undefined, 20_000);
  assert.equal(maildirMessages(stack.env.dataDir, BOB.email).length, count + 1);
});
