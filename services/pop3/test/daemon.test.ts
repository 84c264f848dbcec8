import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { freePort, startDaemon, testEnv } from '@hearth/testkit';

test('the pop3 daemon starts from main.ts, logs ready, greets on both ports; SIGTERM stops it', async () => {
  const pop3 = await freePort();
  const pop3s = await freePort();
  const t = await testEnv({ env: { HEARTH_POP3_PORT: String(pop3), HEARTH_POP3S_PORT: String(pop3s), HEARTH_LOG_LEVEL: 'info' } });
  try {
    const d = await startDaemon('services/pop3/src/main.ts', t.env, (out) => out.includes('"msg":"ready"'));
    try {
      assert.match(d.output(), new RegExp(`pop3s://127.0.0.1:${pop3s}`));
      const greeting = await new Promise<string>((resolve, reject) => {
        const s = net.connect(pop3, '127.0.0.1');
        s.once('data', (b) => {
          resolve(b.toString());
          s.destroy();
        });
        s.once('error', reject);
      });
      assert.match(greeting, /^\+OK/);
    } finally {
      assert.equal(await d.stop(), 0);
    }
  } finally {
    await t.cleanup();
  }
});
