import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MemoryIO } from '@hearth/lineserver';
import { createLogger } from '@hearth/log';
import { NO_QUOTA } from '@hearth/mailstore';
import { HeaderCache } from '../src/header-cache.ts';
import { CommandFramer } from '../src/imap-parser.ts';
import { Session } from '../src/session.ts';
import { IMAP_CONNECTION_DEFAULTS } from '../src/settings.ts';
import { message, stack, type Stack } from './helpers.ts';

let s: Stack;
before(async () => {
  s = await stack();
});
after(() => s.close());

test('an IMAP session runs without a network: commands in, responses out through its SessionIO', { timeout: 30_000 }, async () => {
  await s.store.deliver(s.user.email, message('unit', 'no socket here'));
  const io = new MemoryIO();
  const settings = { maxMessageBytes: 1024 * 1024, quota: NO_QUOTA, connections: IMAP_CONNECTION_DEFAULTS };
  const session = new Session({ directory: s.directory, store: s.store, logger: createLogger('imap-test', 'warn'), settings, tlsAvailable: true, headers: new HeaderCache() }, io);
  const framer = new CommandFramer();
  const run = async (input: string): Promise<string> => {
    for (const ev of framer.push(Buffer.from(input))) if (ev.type === 'command') await session.handle(ev.parts);
    return io.take();
  };

  assert.match(session.greeting().toString(), /^\* OK \[CAPABILITY [^\]]*STARTTLS[^\]]*\] /);
  assert.match(await run('a1 STARTTLS\r\n'), /^a1 OK /);
  assert.equal(io.secure, true);
  assert.match(await run('a2 CAPABILITY\r\n'), /^\* CAPABILITY (?![^\r]*STARTTLS)[^\r]*\r\na2 OK /);
  assert.match(await run(`a3 LOGIN ${s.user.username} ${s.user.password}\r\n`), /^a3 OK /);
  const selected = await run('a4 SELECT INBOX\r\n');
  assert.match(selected, /^\* 1 EXISTS\r\n/m);
  assert.match(selected, /^a4 OK \[READ-WRITE\] /m);
  assert.match(await run('a5 FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n'), /Subject: unit\r\n[\s\S]*a5 OK /);
  assert.match(await run('a6 LOGOUT\r\n'), /^\* BYE [^\r]*\r\na6 OK /);
  assert.equal(io.closed, true);
});
