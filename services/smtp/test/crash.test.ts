import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Directory } from '@hearth/directory';
import { freePort, startDaemon, testEnv, waitFor, type Daemon, type TestEnv } from '@hearth/testkit';
import { startSink } from './helpers.ts';
import { listQueue } from '../src/queue-admin.ts';
import { BOB, maildirMessages, seed, sendBurst, USER } from './helpers.ts';

const N = 40;
let env: TestEnv;
let daemon: Daemon | null = null;

const ready = (out: string): boolean => out.includes('"msg":"ready"');
const entry = 'services/smtp/src/main.ts';

before(async () => {
  env = await testEnv({
    env: {
      HEARTH_SMTP_PORT: String(await freePort()),
      HEARTH_SMTPS_PORT: String(await freePort()),
      HEARTH_SMTP_INBOUND_PORT: String(await freePort()),
      HEARTH_SMTP_RETRY_DELAYS: '0.2',
      // the "ready" line is logged at info
      HEARTH_LOG_LEVEL: 'info',
    },
  });
  const directory = await Directory.open(env.config);
  await seed(directory);
  await directory.close();
});
after(async () => {
  await daemon?.stop('SIGKILL');
  await env.cleanup();
});

describe('kill -9 right after the 250', () => {
  it('every accepted message is delivered exactly once after restart', async (t) => {
    daemon = await startDaemon(entry, env.env, ready);
    const first = daemon;
    const out = await sendBurst({ port: env.config.ports.smtpInbound, count: N, rcpts: [BOB.email, USER.email], onLast: () => first.child.kill('SIGKILL') });
    assert.match(out, /LAST250/, out);
    await first.stop('SIGKILL');
    t.diagnostic(`queued at the kill: ${(await listQueue(env.config)).length} messages`);
    daemon = await startDaemon(entry, env.env, ready);
    await waitFor(async () => (await listQueue(env.config)).length === 0, 60000);
    for (const address of [BOB.email, USER.email]) {
      const msgs = maildirMessages(env.dataDir, address);
      for (let i = 0; i < N; i++) {
        const copies = msgs.filter((m) => m.includes(`Subject: burst-${i}\r\n`)).length;
        assert.equal(copies, 1, `${address} burst-${i}: ${copies} copies`);
      }
    }
    // and the restarted daemon still serves
    await daemon.stop('SIGTERM');
    daemon = null;
  });
});

describe('kill -9 while messages wait for a relay that is down', () => {
  it('after restart the local copies exist once, the waiting ones are still queued and go once the relay is back', async () => {
    const relayPort = await freePort();
    const t = await testEnv({
      env: {
        HEARTH_SMTP_PORT: String(await freePort()),
        HEARTH_SMTPS_PORT: String(await freePort()),
        HEARTH_SMTP_INBOUND_PORT: String(await freePort()),
        HEARTH_SMTP_RETRY_DELAYS: '0.3',
        HEARTH_SMTP_TRUSTED_NETWORKS: '127.0.0.1/32',
        HEARTH_SMTP_RELAY: `smtp://127.0.0.1:${relayPort}`,
        HEARTH_LOG_LEVEL: 'info',
      },
    });
    const directory = await Directory.open(t.config);
    await seed(directory);
    await directory.close();
    let d: Daemon | null = await startDaemon(entry, t.env, ready);
    let sink: Awaited<ReturnType<typeof startSink>> | null = null;
    try {
      const first = d;
      const out = await sendBurst({ port: t.config.ports.smtpInbound, count: N, rcpts: [BOB.email, 'far@remote.test'], onLast: () => first.child.kill('SIGKILL') });
      assert.match(out, /LAST250/, out);
      await first.stop('SIGKILL');
      assert.equal((await listQueue(t.config)).length, N, 'every message survived the kill in the spool');
      d = await startDaemon(entry, t.env, ready);
      await waitFor(async () => (await listQueue(t.config)).every((e) => e.recipients.find((r) => r.address === BOB.email)!.status === 'done'), 60000);
      const bob = maildirMessages(t.dataDir, BOB.email);
      for (let i = 0; i < N; i++) assert.equal(bob.filter((m) => m.includes(`Subject: burst-${i}\r\n`)).length, 1, `bob burst-${i}`);
      sink = await startSink(relayPort);
      await waitFor(async () => (await listQueue(t.config)).length === 0, 60000);
      for (let i = 0; i < N; i++) assert.equal(sink.messages.filter((m) => m.raw.includes(`Subject: burst-${i}\r\n`)).length, 1, `relayed burst-${i}`);
    } finally {
      await d?.stop('SIGKILL');
      await sink?.close();
      await t.cleanup();
    }
  });
});
