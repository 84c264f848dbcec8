import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MailStore } from '@hearth/mailstore';
import { ScriptStore } from '@hearth/sieve';
import { waitFor } from '@hearth/testkit';
import { BOB, maildirMessages, startStack, swaks, USER, type Stack } from './helpers.ts';

let stack: Stack;
before(async () => {
  stack = await startStack();
  const scripts = new ScriptStore(new MailStore(stack.env.dataDir).mailboxPath(USER.email));
  await scripts.put(
    'filters',
    `require ["fileinto", "mailbox", "imap4flags", "reject", "envelope", "subaddress", "variables"];
if header :contains "subject" "[report]" { fileinto :create "Reports"; stop; }
if header :matches "subject" "urgent*" { addflag "\\\\Flagged"; keep; stop; }
if address :is "from" "${BOB.email}" { if header :contains "subject" "go away" { reject "Not interested."; } }
`,
  );
  await scripts.setActive('filters');
});
after(() => stack.close());

const root = (): string => path.join(stack.env.dataDir, 'mail', 'example.test', 'alice');
const filesIn = (folder: string): string[] => {
  const dir = folder === 'INBOX' ? root() : path.join(root(), `.${folder}`);
  return ['new', 'cur'].flatMap((s) => (fs.existsSync(path.join(dir, s)) ? fs.readdirSync(path.join(dir, s)).map((f) => path.join(dir, s, f)) : []));
};
const send = (to: string, subject: string, from = 'someone@remote.test') => swaks(['--port', String(stack.smtp.ports.smtpInbound), '--from', from, '--to', to, '--h-From', from, '--h-Subject', subject]);

test('swaks deliveries that the active Sieve script files into folders (created on demand), flags, or keeps', { timeout: 120_000 }, async () => {
  assert.equal((await send(USER.email, 'weekly [report] numbers')).code, 0);
  await waitFor(() => filesIn('Reports').length === 1 || undefined, 20_000);
  assert.match(fs.readFileSync(filesIn('Reports')[0]!, 'utf8'), /Subject: weekly \[report\] numbers/);

  assert.equal((await send(USER.email, 'Urgent: call me')).code, 0);
  await waitFor(() => filesIn('INBOX').some((f) => /:2,F$/.test(f)) || undefined, 20_000);

  assert.equal((await send(USER.email, 'plain hello')).code, 0);
  await waitFor(() => filesIn('INBOX').length === 2 || undefined, 20_000);
});

test('reject: the message is not stored and the sender gets a bounce with the reason', { timeout: 120_000 }, async () => {
  const before = filesIn('INBOX').length;
  assert.equal((await send(USER.email, 'please go away', BOB.email)).code, 0);
  const bounce: string = await waitFor(() => maildirMessages(stack.env.dataDir, BOB.email).find((m) => /Not interested\./.test(m)) ?? null, 30_000) as string;
  assert.match(bounce, /^From: .*MAILER-DAEMON/im);
  assert.equal(filesIn('INBOX').length, before);
});

test('a script that fails at run time delivers to INBOX', { timeout: 60_000 }, async () => {
  const scripts = new ScriptStore(new MailStore(stack.env.dataDir).mailboxPath(BOB.email));
  await scripts.put('broken', 'redirect "elsewhere@remote.test";');
  await scripts.setActive('broken');
  const count = maildirMessages(stack.env.dataDir, BOB.email).length;
  assert.equal((await send(BOB.email, 'still arrives')).code, 0);
  await waitFor(() => maildirMessages(stack.env.dataDir, BOB.email).some((m) => /Subject: still arrives/.test(m)) || undefined, 20_000);
  assert.equal(maildirMessages(stack.env.dataDir, BOB.email).length, count + 1);
});
