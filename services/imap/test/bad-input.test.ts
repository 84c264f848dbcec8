import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { message, stack, type Stack } from './helpers.ts';
import { Wire } from './wire.ts';

let s: Stack;

before(async () => {
  s = await stack({ maxMessageBytes: 64 * 1024 });
  await s.store.deliver(s.app.address, message('one'));
  await s.store.deliver(s.app.address, message('two'));
});
after(() => s.close());

async function session(select = true, rev2 = false): Promise<Wire> {
  const w = await Wire.connect(s.imap.ports.imap);
  await w.until(/\* OK/);
  assert.match(await w.cmd('l', `LOGIN ${s.app.username} ${s.app.password}`), /l OK/);
  if (rev2) assert.match(await w.cmd('e', 'ENABLE IMAP4rev2'), /e OK/);
  if (select) assert.match(await w.cmd('s', 'SELECT INBOX'), /s OK/);
  return w;
}

/** The server still serves a fresh client completely. */
async function stillServes(): Promise<void> {
  const w = await session();
  assert.match(await w.cmd('f', 'FETCH 1:* (UID FLAGS RFC822.SIZE)'), /\* 2 FETCH .*\r\nf OK/s);
  w.close();
}

async function messageCount(): Promise<number> {
  const inbox = await (await s.store.open(s.app.address)).folder('INBOX');
  await inbox.refresh();
  return inbox.messages.length;
}

test('unknown commands, wrong state, bad arguments', async () => {
  const w = await Wire.connect(s.imap.ports.imap);
  await w.until(/\* OK/);
  assert.match(await w.cmd('a1', 'FROBNICATE'), /a1 BAD/);
  assert.match(await w.cmd('a2', 'SELECT INBOX'), /a2 BAD .*not valid in this state/);
  assert.match(await w.cmd('a3', 'FETCH 1 FLAGS'), /a3 BAD/);
  assert.match(await w.cmd('a4', 'LOGIN onlyone'), /a4 BAD/);
  assert.match(await w.cmd('a5', 'LOGIN x y'), /a5 NO \[AUTHENTICATIONFAILED\]/);
  assert.match(await w.cmd('a6', `LOGIN ${s.app.username} ${s.app.password}`), /a6 OK/);
  assert.match(await w.cmd('a7', `LOGIN ${s.app.username} ${s.app.password}`), /a7 BAD/);
  assert.match(await w.cmd('a8', 'EXPUNGE'), /a8 BAD .*not valid in this state/);
  assert.match(await w.cmd('a9', 'SELECT Nope'), /a9 NO \[NONEXISTENT\]/);
  await w.cmd('s', 'SELECT INBOX');
  assert.match(await w.cmd('b1', 'FETCH 1 (FLAGS'), /b1 BAD/);
  assert.match(await w.cmd('b2', 'STORE 1 +FLAGS (\\Recent)'), /b2 BAD/);
  assert.match(await w.cmd('b3', 'SEARCH CHARSET KOI8-R ALL'), /b3 NO \[BADCHARSET/);
  assert.match(await w.cmd('b4', 'COPY 1 Missing'), /b4 NO \[TRYCREATE\]/);
  assert.match(await w.cmd('b5', 'DELETE INBOX'), /b5 NO/);
  assert.match(await w.cmd('b6', 'FETCH 1 BODY[0]'), /b6 BAD/);
  assert.match(await w.cmd('b7', 'NOOP'), /b7 OK/);
  w.close();
});

test('bad sequence sets are BAD', async () => {
  const w = await session();
  for (const set of ['*:0', '4294967296', '0', '1:0', '1,,2', '01', 'abc', '3']) {
    assert.match(await w.cmd('q', `FETCH ${set} (FLAGS)`), /q BAD/, set);
  }
  for (const set of ['*:0', '4294967296']) assert.match(await w.cmd('u', `UID FETCH ${set} (FLAGS)`), /u BAD/, set);
  assert.match(await w.cmd('u2', 'UID FETCH 4294967295 (FLAGS)'), /u2 OK/, 'the largest UID is valid');
  assert.match(await w.cmd('u3', 'UID STORE 1:* +FLAGS.SILENT ()'), /u3 OK/);
  w.close();
});

test('over-long lines and huge literals are refused; the connection goes on', async () => {
  const w = await session();
  w.write(`x1 NOOP ${'a'.repeat(200 * 1024)}\r\n`);
  await w.until(/BAD .*too long/);
  assert.match(await w.cmd('n1', 'NOOP'), /n1 OK/);
  w.write('x2 LOGIN {99999999}\r\n');
  assert.match(await w.until(/x2 BAD/), /TOOBIG/);
  assert.match(await w.cmd('n2', 'NOOP'), /n2 OK/);
  w.write(`x3 APPEND INBOX {${1024 * 1024}}\r\n`);
  assert.match(await w.until(/x3 BAD/), /TOOBIG/);
  assert.match(await w.cmd('n3', 'NOOP'), /n3 OK/);
  w.close();
  // A non-synchronizing literal that is too large cannot be skipped: BYE.
  const v = await session(false);
  v.write('x4 APPEND INBOX {99999999+}\r\nxxxx');
  await v.until(/\* BYE/);
  await v.waitClosed();
  await stillServes();
});

test('non-UTF-8 and invalid mailbox names are refused', async () => {
  const w = await session(false);
  const before = (await w.cmd('l', 'LIST "" *')).split('\r\n').length;
  assert.match(await w.cmd('c1', Buffer.from('CREATE "caf\xe9"', 'latin1')), /c1 (NO|BAD)/);
  assert.match(await w.cmd('c2', Buffer.concat([Buffer.from('CREATE {6}\r\n'), Buffer.from('café', 'utf8')])), /\+ Ready[\s\S]*c2 NO/);
  assert.match(await w.cmd('c3', 'CREATE "a..b"'), /c3 NO/);
  assert.match(await w.cmd('c4', 'CREATE "../../etc"'), /c4 NO/);
  assert.match(await w.cmd('c5', 'CREATE "&Jjo"'), /c5 NO/);
  assert.match(await w.cmd('c6', 'RENAME Sent "x/y"'), /c6 NO/);
  assert.match(await w.cmd('c7', 'CREATE "Entw&APw-rfe"'), /c7 OK/, 'valid modified UTF-7 is fine');
  const after = (await w.cmd('l', 'LIST "" *')).split('\r\n').length;
  assert.equal(after, before + 1);
  w.close();
});

test('a client vanishing mid-APPEND leaves the mailbox unchanged', async () => {
  const count = await messageCount();
  const w = await session(false);
  w.write('a APPEND INBOX (\\Seen) {5000}\r\n');
  await w.until(/\+ Ready/);
  w.write('Subject: partial\r\n\r\n' + 'x'.repeat(1000));
  await new Promise((r) => setTimeout(r, 50));
  w.close();
  const lit = await session(false);
  lit.write('b APPEND INBOX {3000+}\r\nSubject: partial too\r\n');
  await new Promise((r) => setTimeout(r, 50));
  lit.close();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(await messageCount(), count);
  const root = path.join(s.store.mailboxPath(s.app.address), 'tmp');
  assert.deepEqual(fs.readdirSync(root), [], 'no temp files left behind');
  await stillServes();
});

test('abuse: too many bad commands end the connection', async () => {
  const w = await Wire.connect(s.imap.ports.imap);
  await w.until(/\* OK/);
  for (let i = 0; i < 30; i++) w.write(`z${i} BOGUS\r\n`);
  await w.until(/\* BYE/);
  await w.waitClosed();
  await stillServes();
});

/** Deterministic PRNG so a failing fuzz run can be replayed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

const CORPUS = [
  'a CAPABILITY',
  'a NOOP',
  'a SELECT INBOX',
  'a EXAMINE "Sent"',
  'a FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)',
  'a UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)]<0.50>)',
  'a FETCH 1 BODY[1.MIME]',
  'a STORE 1 +FLAGS (\\Seen $Label)',
  'a UID STORE 1:* (UNCHANGEDSINCE 5) -FLAGS.SILENT (\\Flagged)',
  'a SEARCH OR SEEN (UNDELETED SUBJECT "one") NOT UID 2:*',
  'a SEARCH CHARSET UTF-8 TEXT {3}\r\nabc',
  'a LIST (SPECIAL-USE) "" "*" RETURN (SUBSCRIBED)',
  'a LSUB "" %',
  'a STATUS INBOX (MESSAGES UIDNEXT UNSEEN HIGHESTMODSEQ)',
  'a CREATE Fuzz',
  'a RENAME Fuzz Fuzz2',
  'a DELETE Fuzz2',
  'a COPY 1 Trash',
  'a UID MOVE 999 Archive',
  'a APPEND Drafts (\\Draft) "01-Jan-2026 10:00:00 +0000" {20+}\r\nSubject: z\r\n\r\nbody\r\n',
  'a GETQUOTAROOT INBOX',
  'a ENABLE CONDSTORE',
  'a ID ("name" "fuzz")',
  'a NAMESPACE',
  'a CHECK',
  'a UNSELECT',
  'a IDLE\r\nDONE',
  'a AUTHENTICATE PLAIN',
  'a NOTIFY SET STATUS (SELECTED (MessageNew (UID BODY.PEEK[HEADER]) MessageExpunge FlagChange)) (SUBTREE (Archive "Sent") (MessageNew MessageExpunge MailboxName)) (PERSONAL NONE)',
  'a NOTIFY NONE',
  'a ENABLE IMAP4rev2',
  'a STATUS INBOX (SIZE DELETED UNSEEN)',
  'a SEARCH RETURN (SAVE MIN) UNSEEN',
  'a UID SORT RETURN (UPDATE PARTIAL 1:5 COUNT) (REVERSE SUBJECT DATE) UTF-8 UNSEEN',
  'b SORT RETURN (ALL UPDATE) (ARRIVAL) US-ASCII OR SEEN FLAGGED',
  'a CANCELUPDATE "a" "b"',
  'a FETCH $ (UID)',
  'a CREATE "Entw\xc3\xbcrfe.sub"',
  'a LIST "" "Entw\xc3\xbc*" RETURN (CHILDREN STATUS (SIZE))',
  'a DELETE "Entw\xc3\xbcrfe"',
];

function mutate(line: string, r: () => number): Buffer {
  const bytes = Buffer.from(line, 'latin1');
  const out = [...bytes];
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const pos = Math.floor(r() * (out.length + 1));
    const what = r();
    if (what < 0.25) out.splice(pos, 1);
    else if (what < 0.45) out.splice(pos, 0, Math.floor(r() * 256));
    else if (what < 0.6) out.splice(pos, 0, ...Buffer.from(['{', '}', '(', ')', '"', '\\', '[', ']', '*', '%', ' ', '\r\n', '{4}', '{0+}', '\x00'][Math.floor(r() * 15)]!));
    else if (what < 0.7) out.splice(pos, 0, ...Buffer.from(String(Math.floor(r() * 5e9))));
    else if (what < 0.8) out.length = Math.min(out.length, pos);
    else if (out.length) out[Math.min(pos, out.length - 1)] = Math.floor(r() * 128);
  }
  return Buffer.concat([Buffer.from(out), Buffer.from('\r\n')]);
}

test('fuzz: mutated command streams never take the server down', async () => {
  const r = rng(20260226);
  let w = await session(true, true);
  let connections = 1;
  for (let i = 0; i < 600; i++) {
    if (w.closed) {
      // half the sessions are IMAP4rev2 ones (RFC 9051's rules after ENABLE)
      w = await session(r() < 0.7, r() < 0.5);
      connections++;
    }
    const line = r() < 0.15 ? Buffer.from(CORPUS[Math.floor(r() * CORPUS.length)]! + '\r\n', 'latin1') : mutate(CORPUS[Math.floor(r() * CORPUS.length)]!, r);
    w.write(line);
    if (i % 20 === 19) {
      // sync point: the server answers (or has closed the connection)
      w.write('sync NOOP\r\n');
      await w.until(/sync (OK|BAD|NO)/, 5000).catch(() => {
        w.close();
      });
      w.take();
    }
  }
  w.close();
  assert.ok(connections >= 1);
  await stillServes();
});

test('commands pipelined after STARTTLS in clear text are dropped', async () => {
  const w = await Wire.connect(s.imap.ports.imap);
  await w.until(/\* OK/);
  w.write(`a STARTTLS\r\nb LOGIN ${s.app.username} ${s.app.password}\r\n`);
  const reply = await w.until(/a OK[^\r]*\r\n/);
  assert.doesNotMatch(reply, /^b /m);
  const { default: tls } = await import('node:tls');
  const ca = fs.readFileSync(path.join(s.env.dataDir, 'tls', 'cert.pem'), 'utf8');
  const secure = tls.connect({ socket: w.socket, ca, servername: 'localhost' });
  let buf = '';
  secure.on('data', (d: Buffer) => (buf += d.toString('latin1')));
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', () => resolve());
    secure.once('error', reject);
  });
  secure.write('c CAPABILITY\r\n');
  for (let i = 0; i < 250 && !/c OK/.test(buf); i++) await new Promise((r) => setTimeout(r, 20));
  assert.match(buf, /\* CAPABILITY [^\r]*AUTH=PLAIN/, 'still not logged in: the pipelined LOGIN was not run');
  assert.doesNotMatch(buf, /^b /m);
  secure.destroy();
});
