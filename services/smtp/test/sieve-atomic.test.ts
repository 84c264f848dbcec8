import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { MailStore } from '@hearth/mailstore';
import { ScriptStore } from '@hearth/sieve';
import { mountTmpfs, waitFor } from '@hearth/testkit';
import { startStack, swaks, USER, type Stack } from './helpers.ts';

/** fileinto A, fileinto B, keep: three copies of every message, all or none (RFC 5228 §2.10.6) */
const THREE_COPIES = 'require ["fileinto", "mailbox"];\nfileinto :create "A";\nfileinto :create "B";\nkeep;\n';
const KB = 1024;

async function activate(stack: Stack, script: string): Promise<void> {
  const scripts = new ScriptStore(new MailStore(stack.env.dataDir).mailboxPath(USER.email));
  await scripts.put('copies', script);
  await scripts.setActive('copies');
}

/** Messages in each folder, and whatever is left in the folders' tmp/. */
function contents(stack: Stack): { INBOX: number; A: number; B: number; tmp: number } {
  const root = new MailStore(stack.env.dataDir).mailboxPath(USER.email);
  const count = (dir: string, subs: string[]): number => subs.reduce((n, s) => n + (fs.existsSync(path.join(dir, s)) ? fs.readdirSync(path.join(dir, s)).length : 0), 0);
  const dirs = { INBOX: root, A: path.join(root, '.A'), B: path.join(root, '.B') };
  return { INBOX: count(dirs.INBOX, ['new', 'cur']), A: count(dirs.A, ['new', 'cur']), B: count(dirs.B, ['new', 'cur']), tmp: Object.values(dirs).reduce((n, d) => n + count(d, ['tmp']), 0) };
}

function send(stack: Stack, subject: string, kb: number): ReturnType<typeof swaks> {
  const file = path.join(stack.env.dataDir, `body-${kb}.txt`);
  fs.writeFileSync(file, `${'q'.repeat(74)}\n`.repeat(Math.ceil((kb * KB) / 76)));
  return swaks(['--port', String(stack.smtp.ports.smtpInbound), '--from', 'sender@remote.test', '--to', USER.email, '--h-Subject', subject, '--body', file]);
}

test('quota: when the three copies a script stores would not fit, DATA gets 452 4.2.2 and no folder gets any; when they fit, all three are stored', { timeout: 120_000 }, async (t) => {
  const stack = await startStack({ HEARTH_MAIL_QUOTA_MB: '1' });
  t.after(() => stack.close());
  await activate(stack, THREE_COPIES);
  // 3 × 400 KB > 1 MB, though one copy would fit
  const big = await send(stack, 'big', 400);
  assert.notEqual(big.code, 0);
  assert.match(big.stdout, /<\*\* 452 4\.2\.2 mailbox full/, big.stdout);
  assert.deepEqual(fs.readdirSync(path.join(stack.env.dataDir, 'queue', 'msg')), [], 'refused in-session: nothing queued');
  const small = await send(stack, 'small', 100);
  assert.equal(small.code, 0, small.stdout);
  await waitFor(() => contents(stack).INBOX === 1 || undefined, 20_000);
  assert.deepEqual(contents(stack), { INBOX: 1, A: 1, B: 1, tmp: 0 });
});

test('a full disk after acceptance (a real tmpfs with room for two copies of three): no folder gets a copy, the queue retries, and once there is room all three arrive', { timeout: 120_000 }, async (t) => {
  const stack = await startStack({ HEARTH_SMTP_RETRY_DELAYS: '1' });
  const root = new MailStore(stack.env.dataDir).mailboxPath(USER.email);
  fs.mkdirSync(root, { recursive: true });
  const disk = mountTmpfs(root, 1024 * KB);
  if (typeof disk === 'string') {
    await stack.close();
    return t.skip(disk);
  }
  t.after(async () => {
    // a lazy unmount first: the data directory's removal then finds the plain (empty) directory
    disk.unmount();
    await stack.close();
  });
  await activate(stack, THREE_COPIES);

  const r = await send(stack, 'three copies', 400);
  assert.equal(r.code, 0, r.stdout);
  const id = /queued as ([A-Z0-9]+)/.exec(r.stdout)![1]!;
  const state = path.join(stack.env.dataDir, 'queue', 'state', id);
  // the first attempt ran out of space on the third copy: deferred, and nothing half-done
  await waitFor(() => (fs.existsSync(state) && fs.readFileSync(state, 'utf8').includes('"s":"deferred"')) || undefined, 30_000);
  assert.deepEqual(contents(stack), { INBOX: 0, A: 0, B: 0, tmp: 0 });

  execFileSync('mount', ['-o', `remount,size=${4096 * KB}`, root]);
  await waitFor(() => contents(stack).INBOX === 1 || undefined, 30_000);
  await stack.smtp.queue.drained(30_000);
  assert.deepEqual(contents(stack), { INBOX: 1, A: 1, B: 1, tmp: 0 });
});
