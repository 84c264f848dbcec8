import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MailStore } from '@hearth/mailstore';
import { waitFor } from '@hearth/testkit';
import { BOB, maildirFiles, startStack, swaks, USER, type Stack } from './helpers.ts';

let stack: Stack;
before(async () => {
  stack = await startStack({ HEARTH_MAIL_QUOTA_MB: '1' });
});
after(() => stack.close());

const KB = 1024;
/** a message body of about `kb` KiB in 76-character lines */
const body = (kb: number): string => `${'q'.repeat(74)}\n`.repeat(Math.ceil((kb * KB) / 76));
const queued = (): string[] => fs.readdirSync(path.join(stack.env.dataDir, 'queue', 'msg'));

async function send(to: string, subject: string, kb: number): Promise<{ stdout: string; code: number | null }> {
  // swaks reads --body from a file when given one (a megabyte does not fit on a command line)
  const file = path.join(stack.env.dataDir, `body-${kb}.txt`);
  fs.writeFileSync(file, body(kb));
  return swaks(['--port', String(stack.smtp.ports.smtpInbound), '--from', 'sender@remote.test', '--to', to, '--h-Subject', subject, '--body', file]);
}

test('with a 1 MB quota, mail on the MX port fills the mailbox up to it, then gets 452 4.2.2 at DATA: a temporary refusal, nothing stored, queued or bounced', { timeout: 120_000 }, async () => {
  for (let i = 1; i <= 4; i++) {
    const r = await send(USER.email, `fits ${i}`, 240);
    assert.equal(r.code, 0, r.stdout);
    await waitFor(() => maildirFiles(stack.env.dataDir, USER.email).length === i || undefined, 20_000);
  }
  const over = await send(USER.email, 'one too many', 240);
  assert.notEqual(over.code, 0);
  assert.match(over.stdout, /<\*\* 452 4\.2\.2 mailbox full/, over.stdout);
  // refused in-session: the sending MTA keeps it; we hold no copy and send no bounce
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(maildirFiles(stack.env.dataDir, USER.email).length, 4);
  assert.deepEqual(queued(), []);
  const total = maildirFiles(stack.env.dataDir, USER.email).reduce((n, f) => n + fs.statSync(f).size, 0);
  assert.ok(total <= 1024 * KB, `stored ${total} bytes`);
  // a small message still fits under the limit
  const small = await send(USER.email, 'small', 8);
  assert.equal(small.code, 0, small.stdout);
});

test('a mailbox already over quota is refused at RCPT with 452 4.2.2', { timeout: 60_000 }, async () => {
  // mail restored from a backup can leave a mailbox above the limit
  await new MailStore(stack.env.dataDir).deliver(BOB.email, Buffer.from(`Subject: big\r\n\r\n${body(1100)}`));
  const r = await send(BOB.email, 'refused', 1);
  assert.notEqual(r.code, 0);
  assert.match(r.stdout, /RCPT TO:<bob@example\.test>\s*\n<\*\* 452 4\.2\.2 mailbox full/, r.stdout);
  assert.equal(maildirFiles(stack.env.dataDir, BOB.email).length, 1);
  assert.deepEqual(queued(), []);
});
