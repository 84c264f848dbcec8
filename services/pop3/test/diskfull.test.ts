import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Directory } from '@hearth/directory';
import { createLogger } from '@hearth/log';
import { MailStore } from '@hearth/mailstore';
import { mountTmpfs, runCommand, testEnv } from '@hearth/testkit';
import { startPop3 } from '../src/server.ts';

test('with the disk full, a POP3 user still logs in, reads and deletes mail', { timeout: 60_000 }, async (t) => {
  const env = await testEnv();
  const disk = mountTmpfs(env.dataDir, 8 * 1024 * 1024);
  if (typeof disk === 'string') {
    await env.cleanup();
    return t.skip(disk);
  }
  const logger = createLogger('pop3-test', 'warn');
  const directory = await Directory.open(env.config, { logger });
  const pop = await startPop3({ config: env.config, directory, logger, ports: { pop3: 0, pop3s: 0 } });
  t.after(async () => {
    await pop.close();
    await directory.close();
    disk.unmount();
    await env.cleanup();
  });
  await directory.addUser({ username: 'frank', email: 'frank@example.test', password: 'frank-password-1' });
  await directory.addMailbox('frank@example.test', 'frank');
  const store = new MailStore(env.dataDir);
  for (const n of [1, 2]) await store.deliver('frank@example.test', Buffer.from(`Subject: m${n}\r\n\r\n${'z'.repeat(70).concat('\r\n').repeat(150)}`));
  disk.fill();

  const r = await runCommand(
    'python3',
    [
      '-c',
      `
import poplib
P = poplib.POP3('127.0.0.1', ${pop.ports.pop3})
P.user('frank')
P.pass_('frank-password-1')
print('STAT', P.stat())
print('RETR', P.retr(1)[1][0])
print('DELE', P.dele(1))
print('QUIT', P.quit())
`,
    ],
    { input: '', timeoutMs: 30_000 },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^STAT \(2, \d+\)$/m);
  assert.match(r.stdout, /^RETR b'Subject: m1'$/m);
  assert.match(r.stdout, /^DELE b'\+OK/m);
  assert.match(r.stdout, /^QUIT b'\+OK/m);
  const cur = path.join(store.mailboxPath('frank@example.test'), 'cur');
  assert.equal(fs.readdirSync(cur).length, 1, 'the deleted message is gone from the disk');
});
