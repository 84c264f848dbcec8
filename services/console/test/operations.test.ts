import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, hearth, startDaemon, waitFor, type Daemon } from '@hearth/testkit';
import type { Browser } from 'playwright-core';
import { swaks } from '../../smtp/test/helpers.ts';
import { launchChromium, PASSWORD, signIn, startConsoleStack, type ConsoleStack } from './stack.ts';

/**
 * The console's operations pages, without JavaScript, against the real daemons: the mail queue
 * (a message deferred by the SMTP daemon, retried and deleted from the page, as `hearth mail
 * queue` then shows it). Expected values come from the CLI and the daemons, never from the page.
 */

let stack: ConsoleStack;
let smtp: Daemon;
let browser: Browser;

const ALICE = { username: 'alice', email: 'alice@example.test', password: 'alice-password-1' };

before(async () => {
  // The relay is a loopback port where nothing listens: a message for a remote domain stays deferred.
  const deadRelay = await freePort();
  stack = await startConsoleStack(
    async (d) => {
      await d.addUser({ username: 'root', email: 'root@example.test', password: PASSWORD, role: 'admin' });
      await d.addUser(ALICE);
      await d.addMailbox(ALICE.email, ALICE.username);
    },
    {
      env: {
        HEARTH_SMTP_PORT: String(await freePort()),
        HEARTH_SMTPS_PORT: String(await freePort()),
        HEARTH_SMTP_INBOUND_PORT: String(await freePort()),
        HEARTH_SMTP_RELAY: `smtp://127.0.0.34:${deadRelay}`,
        // an hour between attempts: only a retry asked for makes the next one happen during the test
        HEARTH_SMTP_RETRY_DELAYS: '3600',
      },
    },
  );
  smtp = await startDaemon('services/smtp/src/main.ts', stack.env.env, (o) => o.includes('"msg":"ready"'));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await smtp?.stop();
  await stack?.close();
});

interface CliQueueEntry {
  id: string;
  from: string;
  recipients: { address: string; status: string; attempts: number; nextAttempt: string | null; lastError: string | null }[];
}

async function cliQueue(): Promise<CliQueueEntry[]> {
  const r = await hearth(['mail', 'queue', '--json'], { env: stack.env.env });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as CliQueueEntry[];
}

test('the mail queue page retries a deferred message (one more attempt, as hearth mail queue shows) and deletes it from the spool', async () => {
  const sent = await swaks(['--port', stack.env.env.HEARTH_SMTP_PORT!, '--auth', 'PLAIN', '--auth-user', ALICE.username, '--auth-password', ALICE.password, '--from', ALICE.email, '--to', 'far@remote.test', '--h-Subject', 'queued-from-console-test']);
  assert.equal(sent.code, 0, sent.out);
  const [queued] = (await waitFor(async () => {
    const q = await cliQueue();
    return q.length === 1 && q[0]!.recipients[0]!.attempts === 1 ? q : undefined;
  }, 60000, 250))!;
  const first = queued!.recipients[0]!;
  assert.equal(first.status, 'pending');

  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await signIn(context, stack, 'root');
  await page.goto(`${stack.url}/admin/queue`);
  const row = page.getByRole('row', { name: new RegExp(queued!.id) });
  assert.match(await row.innerText(), new RegExp(`far@remote\\.test: pending, 1 attempt\\b`));

  await page.getByRole('button', { name: `Retry ${queued!.id}` }).click();
  await page.getByText('Delivery will be attempted now.').waitFor();
  // The daemon took the retry: a second attempt, failed again, and the next one an hour after it.
  const retried = (await waitFor(async () => (await cliQueue()).find((e) => e.id === queued!.id && e.recipients[0]!.attempts === 2)?.recipients[0], 60000, 250))!;
  assert.equal(retried.status, 'pending');
  assert.ok(Date.parse(retried.nextAttempt!) > Date.parse(first.nextAttempt!), `next attempt moved: ${first.nextAttempt} → ${retried.nextAttempt}`);
  await page.goto(`${stack.url}/admin/queue`);
  assert.match(await row.innerText(), /far@remote\.test: pending, 2 attempts\b/);

  await page.getByRole('button', { name: `Delete ${queued!.id}` }).click();
  await page.getByText('Message removed from the queue.').waitFor();
  assert.deepEqual(await cliQueue(), []);
  const spool = path.join(stack.env.dataDir, 'queue', 'msg');
  assert.deepEqual(fs.existsSync(spool) ? fs.readdirSync(spool).filter((f) => f.includes(queued!.id)) : [], []);
  assert.match(await page.locator('main').innerText(), /The queue is empty\./);
  await context.close();
});
