import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { stack, type Stack } from './helpers.ts';
import { Wire } from './wire.ts';

let s: Stack;
const open: Wire[] = [];

before(async () => {
  s = await stack({ connections: { maxConnections: 10, maxPerAddress: 3, idleTimeoutMs: 1000 } });
});
after(async () => {
  for (const w of open) w.close();
  await s.close();
});

async function connect(from: string): Promise<Wire> {
  const w = await Wire.connect(s.imap.ports.imap, { from });
  open.push(w);
  return w;
}

test('one address holding its share of IMAP connections is refused more; another address still logs in', { timeout: 30_000 }, async () => {
  for (let i = 0; i < 3; i++) await (await connect('127.0.0.1')).until(/^\* OK /m);
  const greedy = await connect('127.0.0.1');
  assert.match(await greedy.until(/\r\n/), /^\* BYE \[UNAVAILABLE\] Too many connections from your address\r\n$/);
  await greedy.waitClosed();

  const other = await connect('127.0.0.23');
  await other.until(/^\* OK /m);
  other.write(`a1 LOGIN ${s.user.username} ${s.user.password}\r\na2 SELECT INBOX\r\n`);
  await other.until(/^a2 OK /m);
});

test('an IMAP session idle past HEARTH_IMAP_IDLE_TIMEOUT after login gets BYE and is closed', { timeout: 30_000 }, async () => {
  const w = await connect('127.0.0.23');
  await w.until(/^\* OK /m);
  w.write(`a1 LOGIN ${s.user.username} ${s.user.password}\r\n`);
  await w.until(/^a1 OK /m);
  const start = Date.now();
  await w.waitClosed();
  assert.match(w.take(), /^\* BYE Autologout/m);
  assert.ok(Date.now() - start >= 900, 'not before the timeout');
});
