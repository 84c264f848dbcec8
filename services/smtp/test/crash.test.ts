import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Directory } from '@hearth/directory';
import { freePort, startDaemon, testEnv, waitFor, type Daemon, type TestEnv } from '@hearth/testkit';
import { startSink } from './helpers.ts';
import { listQueue } from '../src/queue-admin.ts';
import { BOB, maildirMessages, seed, USER } from './helpers.ts';

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

/** Sends N messages in one session; calls onLast the moment the last 250 arrives. */
function sendBurst(port: number, onLast: () => void, rcpts = [BOB.email, USER.email]): Promise<string> {
  const script = `
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', ${port}, timeout=20)
for i in range(${N}):
    s.sendmail('stranger@remote.test', ${JSON.stringify(rcpts)}, 'From: <stranger@remote.test>\\r\\nSubject: burst-%d\\r\\n\\r\\nbody %d\\r\\n' % (i, i))
print('LAST250', flush=True)
s.close()
`;
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const t = setTimeout(() => child.kill('SIGKILL'), 30000);
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('LAST250')) onLast();
    });
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(t);
      resolve(out);
    });
  });
}

describe('kill -9 right after the 250', () => {
  it('every accepted message is delivered exactly once after restart', async (t) => {
    daemon = await startDaemon(entry, env.env, ready);
    const first = daemon;
    const out = await sendBurst(env.config.ports.smtpInbound, () => first.child.kill('SIGKILL'));
    assert.match(out, /LAST250/, out);
    await first.stop('SIGKILL');
    t.diagnostic(`queued at the kill: ${listQueue(env.config).length} messages`);
    daemon = await startDaemon(entry, env.env, ready);
    await waitFor(() => listQueue(env.config).length === 0, 60000);
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
      const out = await sendBurst(t.config.ports.smtpInbound, () => first.child.kill('SIGKILL'), [BOB.email, 'far@remote.test']);
      assert.match(out, /LAST250/, out);
      await first.stop('SIGKILL');
      assert.equal(listQueue(t.config).length, N, 'every message survived the kill in the spool');
      d = await startDaemon(entry, t.env, ready);
      await waitFor(() => listQueue(t.config).every((e) => e.recipients.find((r) => r.address === BOB.email)!.status === 'done'), 60000);
      const bob = maildirMessages(t.dataDir, BOB.email);
      for (let i = 0; i < N; i++) assert.equal(bob.filter((m) => m.includes(`Subject: burst-${i}\r\n`)).length, 1, `bob burst-${i}`);
      sink = await startSink(relayPort);
      await waitFor(() => listQueue(t.config).length === 0, 60000);
      for (let i = 0; i < N; i++) assert.equal(sink.messages.filter((m) => m.raw.includes(`Subject: burst-${i}\r\n`)).length, 1, `relayed burst-${i}`);
    } finally {
      await d?.stop('SIGKILL');
      await sink?.close();
      await t.cleanup();
    }
  });
});
