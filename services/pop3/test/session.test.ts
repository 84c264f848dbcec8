import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Directory } from '@hearth/directory';
import { MemoryIO } from '@hearth/lineserver';
import { createLogger } from '@hearth/log';
import { MailStore } from '@hearth/mailstore';
import { testEnv } from '@hearth/testkit';
import { LineFramer } from '../src/pop3-codec.ts';
import { Pop3Session } from '../src/session.ts';

test('a POP3 session runs without a network: lines in, responses out through its SessionIO', { timeout: 30_000 }, async (t) => {
  const env = await testEnv();
  const logger = createLogger('pop3-test', 'warn');
  const directory = await Directory.open(env.config, { logger });
  t.after(async () => {
    await directory.close();
    await env.cleanup();
  });
  await directory.addUser({ username: 'erin', email: 'erin@example.test', password: 'erin-password-1' });
  await directory.addMailbox('erin@example.test', 'erin');
  const store = new MailStore(env.dataDir);
  await store.deliver('erin@example.test', Buffer.from('Subject: hi\r\n\r\n.dotted\r\n'));

  const io = new MemoryIO();
  const session = new Pop3Session({ directory, store, logger, tlsAvailable: true }, io);
  const run = async (input: string): Promise<string> => {
    for (const line of new LineFramer().push(Buffer.from(input))) await session.handle(line);
    return io.take();
  };
  assert.match((await run('CAPA\r\n')), /^\+OK[^\r]*\r\n(?:[^\r]*\r\n)*STLS\r\n(?:[^\r]*\r\n)*\.\r\n$/);
  assert.match(await run('STLS\r\n'), /^\+OK /);
  assert.equal(io.secure, true);
  assert.match(await run('USER erin\r\nPASS erin-password-1\r\n'), /^\+OK[^\r]*\r\n\+OK Logged in, 1 messages\r\n$/);
  assert.equal(await run('STAT\r\n'), '+OK 1 24\r\n');
  // RFC 1939 byte-stuffing: the line starting with a dot goes out as two dots
  assert.match(await run('RETR 1\r\n'), /^\+OK[^\r]*\r\nSubject: hi\r\n\r\n\.\.dotted\r\n\.\r\n$/);
  assert.match(await run(`${'X'.repeat(2000)}\r\n`), /^-ERR Line too long\r\n$/);
  assert.match(await run('QUIT\r\n'), /^\+OK /);
  assert.equal(io.closed, true);
  assert.equal(session.closed, true);
});
