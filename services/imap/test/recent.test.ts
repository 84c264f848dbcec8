import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '@hearth/log';
import { MailStore, NO_QUOTA } from '@hearth/mailstore';
import { startImap, type RunningImap } from '../src/server.ts';
import { IMAP_CONNECTION_DEFAULTS } from '../src/settings.ts';
import { message, stack, type Stack } from './helpers.ts';
import { Wire } from './wire.ts';

/**
 * RFC 3501 \Recent: a message is recent in exactly one session, the first read-write SELECT
 * after it arrived (or the selected session that first notices it); EXAMINE and STATUS look
 * without taking. The deliveries come through a separate MailStore, as from another process.
 */
let s: Stack;
/** a second IMAP server over the same Maildir: another process as far as the store is concerned */
let other: RunningImap;
const open: Wire[] = [];

before(async () => {
  s = await stack();
  other = await startImap({
    config: s.env.config,
    directory: s.directory,
    logger: createLogger('imap-test', 'warn'),
    store: new MailStore(s.env.dataDir),
    settings: { maxMessageBytes: 1024 * 1024, quota: NO_QUOTA, connections: IMAP_CONNECTION_DEFAULTS },
    ports: { imap: 0, imaps: 0 },
  });
});
after(async () => {
  for (const w of open) w.close();
  await other.close();
  await s.close();
});

async function session(port = s.imap.ports.imap): Promise<Wire> {
  const w = await Wire.connect(port);
  open.push(w);
  await w.until(/\* OK/);
  assert.match(await w.cmd('l', `LOGIN ${s.user.username} ${s.user.password}`), /l OK/);
  return w;
}

const recentOf = (text: string): number => {
  const m = /\* (\d+) RECENT\r\n/.exec(text);
  assert.ok(m, `no RECENT response in ${text}`);
  return Number(m[1]);
};
const searchOf = (text: string): string => /\* SEARCH([^\r]*)\r\n/.exec(text)?.[1]?.trim() ?? assert.fail(`no SEARCH in ${text}`);
const statusRecent = async (w: Wire, folder: string): Promise<number> => {
  const m = /\* STATUS \S+ \(RECENT (\d+)\)/.exec(await w.cmd('st', `STATUS ${folder} (RECENT)`));
  assert.ok(m);
  return Number(m[1]);
};

test('the first SELECT takes \\Recent; EXAMINE, STATUS and later SELECTs do not', async () => {
  await s.store.deliver(s.user.email, message('r1'), 'Recent1');
  const a = await session();
  const b = await session();
  const c = await session();
  assert.equal(await statusRecent(c, 'Recent1'), 1, 'STATUS counts what the next SELECT would see');

  const examined = await b.cmd('e', 'EXAMINE Recent1');
  assert.equal(recentOf(examined), 1, 'EXAMINE shows the unclaimed message as recent');
  assert.match(await b.cmd('f', 'FETCH 1 (FLAGS)'), /\* 1 FETCH \(FLAGS \(\\Recent\)\)/);
  assert.equal(await statusRecent(c, 'Recent1'), 1, 'EXAMINE left it for the next SELECT');

  assert.equal(recentOf(await a.cmd('s', 'SELECT Recent1')), 1);
  assert.match(await a.cmd('f', 'FETCH 1 (FLAGS)'), /\* 1 FETCH \(FLAGS \(\\Recent\)\)/);
  assert.equal(searchOf(await a.cmd('q1', 'SEARCH RECENT')), '1');
  assert.equal(searchOf(await a.cmd('q2', 'SEARCH NEW')), '1');
  assert.equal(searchOf(await a.cmd('q3', 'SEARCH OLD')), '');
  assert.equal(searchOf(await a.cmd('q4', 'UID SEARCH NOT OLD')), '1');

  assert.equal(await statusRecent(c, 'Recent1'), 0);
  assert.equal(recentOf(await c.cmd('s', 'SELECT Recent1')), 0, 'a later SELECT does not see it as recent');
  assert.match(await c.cmd('f', 'FETCH 1 (FLAGS)'), /\* 1 FETCH \(FLAGS \(\)\)/);
  assert.equal(searchOf(await c.cmd('q1', 'SEARCH RECENT')), '');
  assert.equal(searchOf(await c.cmd('q2', 'SEARCH OLD')), '1');

  // \Recent stays for the session's lifetime, and cannot be set or cleared by STORE.
  assert.match(await a.cmd('t1', 'STORE 1 +FLAGS (\\Seen)'), /\* 1 FETCH \(FLAGS \(\\Seen \\Recent\)\)\r\nt1 OK/);
  assert.equal(searchOf(await a.cmd('q5', 'SEARCH NEW')), '', 'NEW is RECENT UNSEEN');
  assert.equal(searchOf(await a.cmd('q6', 'SEARCH RECENT SEEN')), '1');
  assert.match(await a.cmd('t2', 'STORE 1 -FLAGS (\\Recent)'), /t2 BAD/);
  assert.match(await c.cmd('t3', 'STORE 1 +FLAGS (\\Recent)'), /t3 BAD/);
  assert.match(await c.cmd('f2', 'FETCH 1 (FLAGS)'), /\* 1 FETCH \(FLAGS \(\\Seen\)\)/);
  assert.match(await a.cmd('t4', 'STORE 1 FLAGS (\\Flagged)'), /\* 1 FETCH \(FLAGS \(\\Flagged \\Recent\)\)/);
  assert.match(await a.cmd('f3', 'FETCH 1 (FLAGS)'), /FLAGS \(\\Flagged \\Recent\)/);

  assert.equal(recentOf(await b.cmd('s', 'SELECT Recent1')), 0, 'the EXAMINE session now selecting gets nothing either');
  assert.equal(recentOf(await a.cmd('s2', 'SELECT Recent1')), 0, 'reselecting does not give it back');
});

test('new mail in a selected folder is recent for the session that sees it first', async () => {
  await s.store.deliver(s.user.email, message('n1'), 'Recent2');
  const a = await session();
  const c = await session();
  const ex = await session();
  assert.equal(recentOf(await a.cmd('s', 'SELECT Recent2')), 1);
  assert.equal(recentOf(await c.cmd('s', 'SELECT Recent2')), 0);
  assert.equal(recentOf(await ex.cmd('e', 'EXAMINE Recent2')), 0);

  await s.store.deliver(s.user.email, message('n2'), 'Recent2');
  const noop = await a.cmd('n', 'NOOP');
  assert.match(noop, /\* 2 EXISTS\r\n\* 2 RECENT\r\n/, 'the one from SELECT and the new one');
  assert.match(await a.cmd('f', 'FETCH 2 (FLAGS)'), /\* 2 FETCH \(FLAGS \(\\Recent\)\)/);
  assert.equal(searchOf(await a.cmd('q', 'SEARCH RECENT')), '1 2');
  assert.match(await c.cmd('n', 'NOOP'), /\* 2 EXISTS\r\n\* 0 RECENT\r\n/);
  assert.match(await ex.cmd('n', 'NOOP'), /\* 2 EXISTS\r\n\* 0 RECENT\r\n/, 'claimed before EXAMINE looked');

  // While idling, the delivery shows up with EXISTS and RECENT without any command.
  a.write('i IDLE\r\n');
  await a.until(/\+ idling\r\n/);
  await s.store.deliver(s.user.email, message('n3'), 'Recent2');
  assert.match(await a.until(/\* 3 EXISTS\r\n\* 3 RECENT\r\n/), /\* 3 EXISTS/);
  a.write('DONE\r\n');
  await a.until(/i OK/);
  assert.equal(searchOf(await a.cmd('q2', 'UID SEARCH RECENT')), '1 2 3');
  assert.match(await c.cmd('n2', 'NOOP'), /\* 3 EXISTS\r\n\* 0 RECENT\r\n/);
  assert.equal(searchOf(await c.cmd('q', 'SEARCH RECENT')), '');

  // An EXPUNGE of a recent message lowers the session's count.
  assert.match(await a.cmd('d', 'UID STORE 2 +FLAGS.SILENT (\\Deleted)'), /d OK/);
  assert.match(await a.cmd('x', 'UID EXPUNGE 2'), /\* 2 EXPUNGE\r\n/);
  await s.store.deliver(s.user.email, message('n4'), 'Recent2');
  assert.match(await a.cmd('n2', 'NOOP'), /\* 3 EXISTS\r\n\* 3 RECENT\r\n/);
});

test('an EXAMINE session sees new mail as recent until a SELECT takes it; STATUS follows', async () => {
  await s.store.deliver(s.user.email, message('e0'), 'Recent3');
  const ex = await session();
  const a = await session();
  assert.equal(recentOf(await ex.cmd('e', 'EXAMINE Recent3')), 1);
  await s.store.deliver(s.user.email, message('e1'), 'Recent3');
  assert.match(await ex.cmd('n', 'NOOP'), /\* 2 EXISTS\r\n\* 2 RECENT\r\n/);
  assert.equal(await statusRecent(a, 'Recent3'), 2);
  assert.equal(recentOf(await a.cmd('s', 'SELECT Recent3')), 2);
  assert.equal(await statusRecent(ex, 'Recent3'), 0);
  assert.equal(searchOf(await a.cmd('q', 'SEARCH RECENT')), '1 2');
});

test('sessions on two servers (separate stores) never both get a message as recent', async () => {
  for (let i = 0; i < 5; i++) await s.store.deliver(s.user.email, message(`p${i}`), 'Recent4');
  const a = await session();
  const b = await session(other.ports.imap);
  const [ra, rb] = await Promise.all([a.cmd('s', 'SELECT Recent4'), b.cmd('s', 'SELECT Recent4')]);
  assert.equal(recentOf(ra) + recentOf(rb), 5, 'each of the five is recent in exactly one session');

  // New mail noticed by both at once: each message goes to one of them.
  for (let i = 0; i < 4; i++) await s.store.deliver(s.user.email, message(`q${i}`), 'Recent4');
  const [na, nb] = await Promise.all([a.cmd('n', 'NOOP'), b.cmd('n', 'NOOP')]);
  assert.match(na, /\* 9 EXISTS/);
  assert.match(nb, /\* 9 EXISTS/);
  const uidsA = searchOf(await a.cmd('q', 'UID SEARCH RECENT')).split(' ').filter(Boolean).map(Number);
  const uidsB = searchOf(await b.cmd('q', 'UID SEARCH RECENT')).split(' ').filter(Boolean).map(Number);
  assert.deepEqual([...uidsA, ...uidsB].sort((x, y) => x - y), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(recentOf(na), uidsA.length);
  assert.equal(recentOf(nb), uidsB.length);
  const c = await session(other.ports.imap);
  assert.equal(recentOf(await c.cmd('s', 'SELECT Recent4')), 0);
});
