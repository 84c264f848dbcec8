import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Directory } from '@hearth/directory';
import { MailStore } from '@hearth/mailstore';
import { freePort, startDaemon, testEnv } from '@hearth/testkit';
import { message } from './helpers.ts';
import { Wire } from './wire.ts';

test('the imap daemon starts from main.ts, logs ready and serves both ports; SIGTERM stops it', async () => {
  const imap = await freePort();
  const imaps = await freePort();
  const t = await testEnv({ env: { HEARTH_IMAP_PORT: String(imap), HEARTH_IMAPS_PORT: String(imaps), HEARTH_LOG_LEVEL: 'info' } });
  const directory = await Directory.open(t.config);
  try {
    await directory.addUser({ username: 'erin', email: 'erin@example.test', password: 'erin-password-1' });
    await directory.addMailbox('erin@example.test', 'erin');
    await new MailStore(t.dataDir).deliver('erin@example.test', message('daemon'));
    const d = await startDaemon('services/imap/src/main.ts', t.env, (out) => out.includes('"msg":"ready"'));
    try {
      assert.match(d.output(), new RegExp(`imaps://127.0.0.1:${imaps}`));
      const w = await Wire.connect(imap);
      await w.until(/\* OK \[CAPABILITY [^\]]*STARTTLS/);
      assert.match(await w.cmd('l', 'LOGIN erin@example.test erin-password-1'), /l OK/);
      assert.match(await w.cmd('f', 'EXAMINE INBOX'), /\* 1 EXISTS/);
      w.close();
      const s = await Wire.connect(imaps, { tls: true, ca: (await import('node:fs')).readFileSync(`${t.dataDir}/tls/cert.pem`, 'utf8') });
      await s.until(/\* OK/);
      s.close();
    } finally {
      assert.equal(await d.stop(), 0);
    }
  } finally {
    await directory.close();
    await t.cleanup();
  }
});
