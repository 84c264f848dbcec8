import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Directory } from '@hearth/directory';
import { freePort, startDaemon, testEnv, waitFor, type Daemon, type TestEnv } from '@hearth/testkit';
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
function sendBurst(port: number, onLast: () => void): Promise<string> {
  const script = `
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', ${port}, timeout=20)
for i in range(${N}):
    s.sendmail('stranger@remote.test', ['${BOB.email}', '${USER.email}'], 'From: <stranger@remote.test>\\r\\nSubject: burst-%d\\r\\n\\r\\nbody %d\\r\\n' % (i, i))
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
