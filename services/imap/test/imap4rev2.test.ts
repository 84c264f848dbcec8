import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import { MailStore } from '@hearth/mailstore';
import { tempDir } from '@hearth/testkit';
import { loadTls } from '@hearth/tls';
import { handToDovecot, startDovecot } from './dovecot.ts';
import { run, stack, type Stack } from './helpers.ts';
import { Wire } from './wire.ts';

/**
 * IMAP4rev2 (RFC 9051) beside IMAP4rev1: each Appendix E change Hearth makes after ENABLE
 * IMAP4rev2, with RFC 9051's examples as the expected answers, and an IMAP4rev1 session (no
 * ENABLE) getting RFC 3501's answers on the same mailboxes.
 */

let s: Stack;
before(async () => {
  s = await stack();
});
after(() => s.close());

async function login(rev2: boolean): Promise<Wire> {
  const w = await Wire.connect(s.imap.ports.imap);
  await w.until(/^\* OK/m);
  assert.match(await w.cmd('L', `LOGIN ${s.user.username} ${s.user.password}`), /^L OK/m);
  if (rev2) assert.match(await w.cmd('E', 'ENABLE IMAP4rev2'), /^\* ENABLED IMAP4rev2\r\n/m);
  return w;
}

const crlf = (lines: string[]): string => lines.map((l) => `${l}\r\n`).join('');

function mail(subject: string, from = 'Fred Foobar <foobar@Blurdybloop.example.COM>'): string {
  return crlf([`From: ${from}`, 'To: mooch@owatagu.siam.example', `Subject: ${subject}`, 'Date: Mon, 7 Feb 1994 21:52:25 -0800', '', `About ${subject}.`]);
}

/** APPENDs with a LITERAL+ literal; returns the new UID. */
async function append(w: Wire, mailbox: string, raw: string | Buffer, flags = ''): Promise<number> {
  const bytes = typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw;
  const r = await w.cmd('A', Buffer.concat([Buffer.from(`APPEND ${mailbox} (${flags}) {${bytes.length}+}\r\n`, 'latin1'), bytes]));
  const m = /^A OK \[APPENDUID \d+ (\d+)\]/m.exec(r);
  assert.ok(m, r);
  return Number(m[1]);
}

/** A mailbox of 11 messages where 2, 10 and 11 are \Flagged, as RFC 9051 §6.4.4's SEARCH examples assume. */
async function searchMailbox(w: Wire, name: string): Promise<void> {
  assert.match(await w.cmd('c', `CREATE ${name}`), /^c OK/m);
  for (let i = 1; i <= 11; i++) await append(w, name, mail(`message ${i}`), [2, 10, 11].includes(i) ? '\\Flagged' : '');
}

test('RFC 9051 §6.1.1, Appendix E: CAPABILITY names IMAP4rev1 and IMAP4rev2 and the extensions rev2 folds in; ENABLE answers only what it enabled (§6.3.1)', async () => {
  const w = await Wire.connect(s.imap.ports.imap);
  const greeting = await w.until(/^\* OK.*\r\n/m);
  assert.match(greeting, /\[CAPABILITY IMAP4rev1 IMAP4rev2 /);
  assert.match(await w.cmd('L', `LOGIN ${s.user.username} ${s.user.password}`), /^L OK \[CAPABILITY IMAP4rev1 IMAP4rev2 /m);
  const caps = /^\* CAPABILITY (.*)\r\n/m.exec(await w.cmd('c', 'CAPABILITY'))![1]!.split(' ');
  // LITERAL+ (RFC 7888) is the superset of LITERAL-: any literal may be non-synchronizing
  for (const cap of ['NAMESPACE', 'UNSELECT', 'UIDPLUS', 'ESEARCH', 'SEARCHRES', 'ENABLE', 'IDLE', 'SASL-IR', 'LIST-EXTENDED', 'LIST-STATUS', 'MOVE', 'LITERAL+', 'BINARY', 'SPECIAL-USE', 'STATUS=SIZE']) {
    assert.ok(caps.includes(cap), `${cap} missing from ${caps.join(' ')}`);
  }
  // RFC 9051 §6.3.1's example, with the extension the server does not know left out of ENABLED
  assert.match(await w.cmd('t2', 'ENABLE IMAP4rev2 X-GOOD-IDEA'), /^\* ENABLED IMAP4rev2\r\nt2 OK/m);
  // enabling twice is harmless and names nothing new twice
  assert.match(await w.cmd('t3', 'ENABLE imap4rev2 IMAP4REV2'), /^\* ENABLED IMAP4rev2\r\nt3 OK/m);
  w.close();
});

test('RFC 9051 §6.3.2: SELECT sends the mailbox LIST, no RECENT and no UNSEEN; reselecting sends [CLOSED]; IMAP4rev1 is unchanged', async () => {
  const w = await login(true);
  await append(w, 'INBOX', mail('select me'));
  const r = await w.cmd('A142', 'SELECT inbox');
  // the name as the client should use it (INBOX in any case is INBOX), with accurate attributes
  assert.match(r, /^\* LIST \(\\HasNoChildren\) "\." "INBOX"\r\n/m);
  assert.match(r, /^\* \d+ EXISTS\r\n/m);
  assert.match(r, /^\* OK \[UIDVALIDITY \d+\]/m);
  assert.match(r, /^\* OK \[UIDNEXT \d+\]/m);
  assert.match(r, /^\* FLAGS \(/m);
  assert.match(r, /^\* OK \[PERMANENTFLAGS \(/m);
  assert.doesNotMatch(r, /RECENT|UNSEEN/);
  assert.match(r, /^A142 OK \[READ-WRITE\]/m);
  assert.match(await w.cmd('A143', 'EXAMINE INBOX'), /^\* OK \[CLOSED\][^\r]*\r\n(.*\r\n)*A143 OK \[READ-ONLY\]/m);
  // a SELECT that fails still closed the mailbox selected before it: none is selected after
  assert.match(await w.cmd('A144', 'SELECT no-such-box'), /^\* OK \[CLOSED\][^\r]*\r\nA144 NO \[NONEXISTENT\]/m);
  assert.match(await w.cmd('A145', 'FETCH 1 FLAGS'), /^A145 BAD /m);
  w.close();

  const v1 = await login(false);
  await append(v1, 'INBOX', mail('rev1 select'));
  const r1 = await v1.cmd('s', 'SELECT INBOX');
  assert.match(r1, /^\* \d+ RECENT\r\n/m);
  assert.match(r1, /^\* OK \[UNSEEN \d+\]/m);
  assert.doesNotMatch(r1, /^\* LIST/m);
  assert.doesNotMatch(await v1.cmd('e', 'EXAMINE INBOX'), /CLOSED/);
  v1.close();
});

test('an IMAP4rev1 client (no ENABLE IMAP4rev2) gets RFC 3501 answers throughout', async () => {
  const w = await login(false);
  assert.match(await w.cmd('c', 'CREATE "Entw&APw-rfe1"'), /^c OK/m);
  await append(w, 'Entw&APw-rfe1', mail('first'), '\\Flagged');
  await append(w, 'Entw&APw-rfe1', mail('second'));
  assert.match(await w.cmd('l', 'LIST "" "Entw*"'), /^\* LIST \(\\HasNoChildren\) "\." "Entw&APw-rfe1"\r\n/m);
  assert.match(await w.cmd('st', 'STATUS "Entw&APw-rfe1" (MESSAGES RECENT UNSEEN)'), /^\* STATUS "Entw&APw-rfe1" \(MESSAGES 2 RECENT 2 UNSEEN 2\)\r\n/m);
  const sel = await w.cmd('s', 'SELECT "Entw&APw-rfe1"');
  assert.match(sel, /^\* 2 EXISTS\r\n\* 2 RECENT\r\n\* OK \[UNSEEN 1\]/m);
  assert.doesNotMatch(sel, /^\* LIST/m);
  assert.match(await w.cmd('f', 'FETCH 1 FLAGS'), /^\* 1 FETCH \(FLAGS \(\\Flagged \\Recent\)\)\r\n/m);
  assert.match(await w.cmd('q', 'SEARCH RECENT'), /^\* SEARCH 1 2\r\n/m);
  assert.match(await w.cmd('q2', 'SEARCH NEW FLAGGED'), /^\* SEARCH 1\r\n/m);
  assert.match(await w.cmd('u', 'UID SEARCH ALL'), /^\* SEARCH 1 2\r\n/m);
  // a reselect without CONDSTORE sends no [CLOSED] (RFC 7162 §3.2.11 asks it of CONDSTORE clients)
  assert.doesNotMatch(await w.cmd('s2', 'SELECT INBOX'), /CLOSED/);
  // another session's flag change comes without the UID
  await w.cmd('s3', 'SELECT "Entw&APw-rfe1"');
  const other = await login(false);
  await other.cmd('s', 'SELECT "Entw&APw-rfe1"');
  await other.cmd('f', 'STORE 2 +FLAGS.SILENT (\\Answered)');
  assert.match(await w.cmd('n', 'NOOP'), /^\* 2 FETCH \(FLAGS \(\\Answered\)\)\r\n/m);
  // 8-bit mailbox names are not IMAP4rev1 (modified UTF-7 is)
  assert.match(await w.cmd('b', Buffer.from('CREATE "Entwürfe2"', 'utf8')), /^b (NO|BAD) /m);
  for (const c of [w, other]) c.close();
});

test('RFC 9051 §2.3.2: no \\Recent after ENABLE IMAP4rev2 — not in FLAGS, not taken from IMAP4rev1 sessions; RECENT/NEW/OLD and STATUS RECENT are BAD', async () => {
  const w = await login(true);
  assert.match(await w.cmd('c', 'CREATE recent-box'), /^c OK/m);
  await append(w, 'recent-box', mail('fresh'));
  const sel = await w.cmd('s', 'SELECT recent-box');
  assert.doesNotMatch(sel, /RECENT/);
  assert.match(await w.cmd('f', 'FETCH 1 FLAGS'), /^\* 1 FETCH \(FLAGS \(\)\)\r\n/m);
  for (const key of ['RECENT', 'NEW', 'OLD', 'NOT RECENT', 'OR SEEN NEW']) assert.match(await w.cmd('q', `SEARCH ${key}`), /^q BAD /m, key);
  assert.match(await w.cmd('st', 'STATUS recent-box (RECENT)'), /^st BAD /m);
  assert.match(await w.cmd('ls', 'LIST "" recent-box RETURN (STATUS (RECENT))'), /^ls BAD /m);
  // a message arriving while selected brings EXISTS alone
  const other = await login(false);
  await append(other, 'recent-box', mail('fresher'));
  const noop = await w.cmd('n', 'NOOP');
  assert.match(noop, /^\* 2 EXISTS\r\n/m);
  assert.doesNotMatch(noop, /RECENT/);
  // the IMAP4rev1 session still finds both messages recent: the rev2 session took neither
  assert.match(await other.cmd('st', 'STATUS recent-box (RECENT)'), /^\* STATUS "recent-box" \(RECENT 2\)/m);
  const sel1 = await other.cmd('s', 'SELECT recent-box');
  assert.match(sel1, /^\* 2 RECENT\r\n/m);
  assert.match(await other.cmd('f', 'FETCH 1:2 FLAGS'), /^\* 1 FETCH \(FLAGS \(\\Recent\)\)\r\n\* 2 FETCH \(FLAGS \(\\Recent\)\)\r\n/m);
  assert.match(await other.cmd('q', 'SEARCH RECENT'), /^\* SEARCH 1 2\r\n/m);
  w.close();
  other.close();
});

test('RFC 9051 §6.4.4: SEARCH answers ESEARCH with the tag correlator (ALL when no RETURN); IMAP4rev1 still gets * SEARCH', async () => {
  const w = await login(true);
  await searchMailbox(w, 'searching');
  await w.cmd('s', 'SELECT searching');
  // the RFC's examples, word for word
  assert.match(await w.cmd('A282', 'SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"'), /^\* ESEARCH \(TAG "A282"\) MIN 2 COUNT 3\r\nA282 OK/m);
  assert.match(await w.cmd('A283', 'SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"'), /^\* ESEARCH \(TAG "A283"\) ALL 2,10:11\r\nA283 OK/m);
  assert.match(await w.cmd('A284', 'SEARCH TEXT "string not in mailbox"'), /^\* ESEARCH \(TAG "A284"\)\r\nA284 OK/m);
  // no RETURN: ALL is assumed, and UID SEARCH says UID (§7.3.4)
  assert.match(await w.cmd('A285', 'SEARCH FLAGGED'), /^\* ESEARCH \(TAG "A285"\) ALL 2,10:11\r\nA285 OK/m);
  assert.match(await w.cmd('A286', 'UID SEARCH FLAGGED'), /^\* ESEARCH \(TAG "A286"\) UID ALL 2,10:11\r\nA286 OK/m);
  assert.doesNotMatch(await w.cmd('A287', 'SEARCH ALL'), /^\* SEARCH/m);
  w.close();

  const v1 = await login(false);
  await v1.cmd('s', 'SELECT searching');
  assert.match(await v1.cmd('a', 'SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"'), /^\* SEARCH 2 10 11\r\na OK/m);
  assert.match(await v1.cmd('b', 'SEARCH TEXT "string not in mailbox"'), /^\* SEARCH\r\nb OK/m);
  v1.close();
});

test('RFC 9051 §6.4.4.1 (SEARCHRES folded in): SEARCH RETURN (SAVE) keeps the result as $ for FETCH and SEARCH', async () => {
  const w = await login(true);
  await w.cmd('s', 'SELECT searching');
  assert.match(await w.cmd('A282', 'SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"'), /^A282 OK/m);
  const f = await w.cmd('A283', 'FETCH $ (UID FLAGS)');
  assert.deepEqual([...f.matchAll(/^\* (\d+) FETCH/gm)].map((m) => Number(m[1])), [2, 10, 11]);
  assert.match(await w.cmd('A284', 'SEARCH $ NOT 2'), /^\* ESEARCH \(TAG "A284"\) ALL 10:11\r\n/m);
  w.close();
});

test('RFC 9051 §6.3.11, RFC 8438: STATUS SIZE (both versions) and DELETED (IMAP4rev2) count what the mailbox holds', async () => {
  const w = await login(true);
  assert.match(await w.cmd('c', 'CREATE blurdybloop'), /^c OK/m);
  const bodies = [mail('one'), mail('two, a little longer'), mail('three')];
  await append(w, 'blurdybloop', bodies[0]!, '\\Deleted');
  await append(w, 'blurdybloop', bodies[1]!);
  await append(w, 'blurdybloop', bodies[2]!, '\\Deleted \\Seen');
  const size = bodies.reduce((n, b) => n + Buffer.byteLength(b), 0);
  // the RFC's example asks (UIDNEXT MESSAGES); the answer names each item asked for
  const r = await w.cmd('A042', 'STATUS blurdybloop (UIDNEXT MESSAGES)');
  assert.match(r, /^\* STATUS "blurdybloop" \((?=.*MESSAGES 3)(?=.*UIDNEXT 4)[^)]*\)\r\nA042 OK/m);
  assert.match(await w.cmd('b', 'STATUS blurdybloop (SIZE DELETED UNSEEN)'), new RegExp(`^\\* STATUS "blurdybloop" \\(SIZE ${size} DELETED 2 UNSEEN 2\\)\\r\\n`, 'm'));
  // LIST-STATUS takes the same items
  assert.match(await w.cmd('l', 'LIST "" blurdybloop RETURN (STATUS (DELETED SIZE))'), new RegExp(`^\\* STATUS "blurdybloop" \\(DELETED 2 SIZE ${size}\\)\\r\\n`, 'm'));
  w.close();

  const v1 = await login(false);
  assert.match(await v1.cmd('a', 'STATUS blurdybloop (SIZE)'), new RegExp(`^\\* STATUS "blurdybloop" \\(SIZE ${size}\\)\\r\\n`, 'm'));
  // DELETED is an IMAP4rev2 item: an IMAP4rev1 session gets the answer it got before
  assert.match(await v1.cmd('b', 'STATUS blurdybloop (DELETED)'), /^b BAD /m);
  v1.close();
});

test('RFC 9051 §5.1: after ENABLE IMAP4rev2 mailbox names are UTF-8 both ways (modified UTF-7 stays for IMAP4rev1 and on disk)', async () => {
  const w = await login(true);
  const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');
  assert.match(await w.cmd('c', utf8('CREATE "Entwürfe"')), /^c OK/m);
  // `&` is just a character in a UTF-8 name
  assert.match(await w.cmd('d', 'CREATE "R&D"'), /^d OK/m);
  const list = Buffer.from(await w.cmd('l', 'LIST "" *'), 'latin1').toString('utf8');
  assert.match(list, /^\* LIST \(\\HasNoChildren\) "\." "Entwürfe"\r\n/m);
  assert.match(list, /^\* LIST \(\\HasNoChildren\) "\." "R&D"\r\n/m);
  const sel = Buffer.from(await w.cmd('s', utf8('SELECT "Entwürfe"')), 'latin1').toString('utf8');
  assert.match(sel, /^\* LIST \(\\HasNoChildren\) "\." "Entwürfe"\r\n/m);
  assert.match(Buffer.from(await w.cmd('st', utf8('STATUS "Entwürfe" (MESSAGES)')), 'latin1').toString('utf8'), /^\* STATUS "Entwürfe" \(MESSAGES 0\)/m);
  w.close();

  const v1 = await login(false);
  const list1 = await v1.cmd('l', 'LIST "" *');
  assert.match(list1, /^\* LIST \(\\HasNoChildren\) "\." "Entw&APw-rfe"\r\n/m);
  assert.match(list1, /^\* LIST \(\\HasNoChildren\) "\." "R&-D"\r\n/m);
  v1.close();
});

test('RFC 9051 §5.1: UTF-8 names hold no control characters; one an IMAP4rev1 client made (&AA0- is CR) is shown as stored', async () => {
  const v1 = await login(false);
  assert.match(await v1.cmd('c', 'CREATE "cr&AA0-here"'), /^c OK/m);
  v1.close();
  const w = await login(true);
  const list = await w.cmd('l', 'LIST "" "cr*"');
  assert.equal(list, '* LIST (\\HasNoChildren) "." "cr&AA0-here"\r\nl OK LIST completed\r\n');
  for (const name of ['"tab\there"', '{5+}\r\nx\x01y\x7fz', Buffer.from('"para\u2029graph"', 'utf8')]) {
    const cmd = typeof name === 'string' ? Buffer.from(`CREATE ${name}`, 'latin1') : Buffer.concat([Buffer.from('CREATE '), name]);
    assert.match(await w.cmd('c', cmd), /^c NO \[CANNOT\]/m, String(name));
  }
  w.close();
});

test('NOTIFY (RFC 5465) to an IMAP4rev2 session: STATUS and LIST name mailboxes in UTF-8, with no RECENT', async () => {
  const w = await login(true);
  assert.match(await w.cmd('c', Buffer.from('CREATE "Grüße"', 'utf8')), /^c OK/m);
  assert.match(await w.cmd('n', 'NOTIFY SET STATUS (PERSONAL (MessageNew MessageExpunge MailboxName))'), /^n OK/m);
  const other = await login(false);
  await append(other, 'Gr&APwA3w-e', mail('for the notified'));
  assert.match(await other.cmd('c', 'CREATE Gr&APwA3w-e2'), /^c OK/m);
  other.close();
  // the two come from different watchers, in either order
  const seen = Buffer.from(await w.until(/^(?=[\s\S]*\* STATUS [^\r]*\r\n)(?=[\s\S]*\* LIST [^\r]*\r\n)/, 10_000), 'latin1').toString('utf8');
  assert.match(seen, /^\* STATUS "Grüße" \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)\r\n/m);
  assert.match(seen, /^\* LIST \(\) "\." "Grüße2"\r\n/m);
  assert.doesNotMatch(seen, /RECENT/);
  w.close();
});

test('RFC 9051 §6.3.9 (LIST-EXTENDED folded in): \\NonExistent, \\Subscribed and children, as the RFC lists them', async () => {
  const w = await login(true);
  for (const n of ['Fruit', 'Fruit.banana', 'Fruit.peach']) assert.match(await w.cmd('c', `CREATE ${n}`), /^c OK/m);
  for (const n of ['Fruit.banana', 'Fruit.peach']) assert.match(await w.cmd('u', `SUBSCRIBE ${n}`), /^u OK/m);
  assert.match(await w.cmd('d', 'DELETE Fruit.peach'), /^d OK/m);
  const sub = await w.cmd('A02', 'LIST (SUBSCRIBED) "" "Fruit*"');
  assert.match(sub, /^\* LIST \([^)]*\\Subscribed[^)]*\) "\." "Fruit\.banana"\r\n/m);
  assert.match(sub, /^\* LIST \((?=[^)]*\\NonExistent)(?=[^)]*\\Subscribed)[^)]*\) "\." "Fruit\.peach"\r\n/m);
  assert.doesNotMatch(sub, /"\." "Fruit"\r\n/);
  const children = await w.cmd('A03', 'LIST "" "%" RETURN (CHILDREN SUBSCRIBED)');
  assert.match(children, /^\* LIST \(\\HasChildren\) "\." "Fruit"\r\n/m);
  // LSUB is deprecated (Appendix E) but still answers
  assert.match(await w.cmd('A04', 'LSUB "" "Fruit.*"'), /^\* LSUB \([^)]*\) "\." "Fruit\.banana"\r\nA04 OK/m);
  w.close();
});

test('RFC 9051 §7.1: response codes NONEXISTENT, ALREADYEXISTS, HASCHILDREN and TRYCREATE', async () => {
  const w = await login(true);
  assert.match(await w.cmd('a', 'SELECT no-such-box'), /^a NO \[NONEXISTENT\]/m);
  assert.match(await w.cmd('b', 'STATUS no-such-box (MESSAGES)'), /^b NO \[NONEXISTENT\]/m);
  await w.cmd('c1', 'CREATE this');
  await w.cmd('c2', 'CREATE that');
  // §7.1's examples
  assert.match(await w.cmd('o356', 'RENAME this that'), /^o356 NO \[ALREADYEXISTS\]/m);
  assert.match(await w.cmd('c3', 'CREATE that'), /^c3 NO \[ALREADYEXISTS\]/m);
  // §6.3.4: deleting a name with inferiors may leave it \Noselect or be refused with HASCHILDREN;
  // deleting a \Noselect name with inferiors is refused, with HASCHILDREN (§7.1's example)
  assert.match(await w.cmd('c4', 'CREATE Notes.sub'), /^c4 OK/m);
  const first = await w.cmd('o356', 'DELETE Notes');
  assert.match(first, /^o356 (OK|NO \[HASCHILDREN\])/m);
  if (/^o356 OK/m.test(first)) {
    assert.match(await w.cmd('l', 'LIST "" Notes'), /^\* LIST \(\\Noselect \\HasChildren\) "\." "Notes"\r\n/m);
    assert.match(await w.cmd('o357', 'DELETE Notes'), /^o357 NO \[HASCHILDREN\]/m);
  }
  assert.match(await w.cmd('x', 'DELETE Notes.sub'), /^x OK/m);
  const v = Buffer.from(mail('nowhere'), 'latin1');
  assert.match(await w.cmd('A003', Buffer.concat([Buffer.from(`APPEND no-such-box {${v.length}+}\r\n`), v])), /^A003 NO \[TRYCREATE\]/m);
  w.close();
});

test('RFC 9051 §7.5.2: unsolicited FETCH carries the UID; STORE and MOVE (COPYUID, §6.4.8) answer as before', async () => {
  const w = await login(true);
  const v1 = await login(false);
  assert.match(await w.cmd('c', 'CREATE watched'), /^c OK/m);
  const uid = await append(w, 'watched', mail('watch me'));
  await w.cmd('s', 'SELECT watched');
  await v1.cmd('s', 'SELECT watched');
  const other = await login(false);
  await other.cmd('s', 'SELECT watched');
  assert.match(await other.cmd('f', 'STORE 1 +FLAGS.SILENT (\\Flagged)'), /^f OK/m);
  assert.match(await w.cmd('n', 'NOOP'), new RegExp(`^\\* 1 FETCH \\(FLAGS \\(\\\\Flagged\\) UID ${uid}\\)\\r\\n`, 'm'));
  assert.match(await v1.cmd('n', 'NOOP'), /^\* 1 FETCH \(FLAGS \(\\Flagged \\Recent\)\)\r\n/m);
  // a STORE's own answer follows the command, as in IMAP4rev1
  assert.match(await w.cmd('t', 'STORE 1 +FLAGS (\\Seen)'), /^\* 1 FETCH \(FLAGS \((?=[^)]*\\Seen)(?=[^)]*\\Flagged)[^)]*\)\)\r\n/m);
  await w.cmd('c2', 'CREATE moved');
  assert.match(await w.cmd('m', 'MOVE 1 moved'), /^\* OK \[COPYUID \d+ \d+ 1\][^\r]*\r\n\* 1 EXPUNGE\r\nm OK/m);
  for (const c of [w, v1, other]) c.close();
});

test('RFC 9051 §6.4.1, §6.4.2: CLOSE expunges \\Deleted silently, UNSELECT leaves it; FETCH BODY[] and BINARY[] as before', async () => {
  const w = await login(true);
  assert.match(await w.cmd('c', 'CREATE closing'), /^c OK/m);
  const kept = mail('kept');
  await append(w, 'closing', kept);
  await append(w, 'closing', mail('deleted'), '\\Deleted');
  await w.cmd('s', 'SELECT closing');
  assert.ok((await w.cmd('f', 'FETCH 1 BODY.PEEK[]')).includes(`* 1 FETCH (BODY[] {${kept.length}}\r\n${kept})\r\n`));
  const text = 'About kept.\r\n';
  assert.ok((await w.cmd('b', 'FETCH 1 BINARY.PEEK[1]')).includes(`BINARY[1] {${text.length}}\r\n${text})`));
  assert.match(await w.cmd('u', 'UNSELECT'), /^u OK/m);
  assert.match(await w.cmd('st', 'STATUS closing (MESSAGES DELETED)'), /\(MESSAGES 2 DELETED 1\)/);
  await w.cmd('s2', 'SELECT closing');
  assert.match(await w.cmd('x', 'CLOSE'), /^x OK/m);
  assert.match(await w.cmd('st2', 'STATUS closing (MESSAGES DELETED)'), /\(MESSAGES 1 DELETED 0\)/);
  w.close();
});

test('APPEND of a message with UTF-8 header fields (RFC 6532) after ENABLE IMAP4rev2 keeps its bytes', async () => {
  const w = await login(true);
  const raw = Buffer.from(crlf(['From: Jörg <joerg@example.test>', 'Subject: Grüße', '', 'Hallo.']), 'utf8');
  const uid = await append(w, 'INBOX', raw);
  await w.cmd('s', 'EXAMINE INBOX');
  const f = Buffer.from(await w.cmd('f', `UID FETCH ${uid} BODY.PEEK[]`), 'latin1');
  assert.ok(f.includes(Buffer.concat([Buffer.from(`{${raw.length}}\r\n`), raw])), f.toString('utf8'));
  w.close();
});

test('bad IMAP4rev2 input is answered BAD and the session goes on', async () => {
  const w = await login(true);
  await w.cmd('s', 'SELECT searching');
  for (const bad of ['STATUS INBOX (SIZE', 'STATUS INBOX (RECENT)', 'STATUS INBOX ()', 'SEARCH RETURN (ALL', 'SEARCH OLD', 'ENABLE', 'LIST "" INBOX RETURN (STATUS (BOGUS))']) {
    assert.match(await w.cmd('b', bad), /^b BAD /m, bad);
  }
  assert.match(await w.cmd('ok', 'SEARCH 1'), /^\* ESEARCH \(TAG "ok"\) ALL 1\r\nok OK/m);
  w.close();
});

test('imaplib (Python) enables IMAP4rev2, reads the ESEARCH answer and the SELECT LIST', async () => {
  const py = await run('/usr/bin/python3', [
    '-c',
    `
import imaplib
M = imaplib.IMAP4('127.0.0.1', ${s.imap.ports.imap})
assert 'IMAP4REV2' in M.capabilities, M.capabilities
M.login(${JSON.stringify(s.user.username)}, ${JSON.stringify(s.user.password)})
typ, data = M.enable('IMAP4rev2')
assert typ == 'OK', (typ, data)
assert M.response('ENABLED')[1] == [b'IMAP4rev2'], M.untagged_responses
typ, data = M.select('searching')
assert typ == 'OK', (typ, data)
print(M.response('LIST')[1][0].decode())
typ, data = M._simple_command('SEARCH', 'FLAGGED')
assert typ == 'OK', typ
print(M.response('ESEARCH')[1][0].decode().split(')', 1)[1].strip())
M.logout()
`,
  ]);
  assert.equal(py.code, 0, py.stderr);
  assert.deepEqual(py.stdout.trim().split('\n'), ['(\\HasNoChildren) "." "searching"', 'ALL 2,10:11']);
});

test('imapflow turns IMAP4rev2 on by itself and reads STATUS SIZE/DELETED, SEARCH and LIST through it', async () => {
  const { cert: ca } = await loadTls(s.env.config);
  const client = new ImapFlow({ host: '127.0.0.1', port: s.imap.ports.imaps, secure: true, tls: { ca }, servername: 'localhost', auth: { user: s.user.username, pass: s.user.password }, logger: false });
  await client.connect();
  try {
    const st = await client.status('blurdybloop', { messages: true, size: true, deleted: true });
    assert.equal(st.messages, 3);
    assert.equal(st.deleted, 2);
    assert.ok(st.size! > 0);
    await client.mailboxOpen('searching', { readOnly: true });
    assert.deepEqual(await client.search({ flagged: true }), [2, 10, 11]);
    const names = (await client.list()).map((m) => m.path);
    assert.ok(names.includes('Entwürfe'), names.join(' '));
  } finally {
    await client.logout();
  }
});

// RFC 2231 §4.1's example (title), plain continuations (name) and a whole extended value (filename*)
const CONTINUED = crlf([
  'Subject: continuations',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="b"',
  '',
  '--b',
  "Content-Type: application/x-stuff; title*0*=us-ascii'en'This%20is%20even%20more%20;",
  ' title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2="isn\'t it!"',
  '',
  'x',
  '--b',
  'Content-Type: text/plain; name*0="long"; name*1="name.txt"; charset=us-ascii',
  "Content-Disposition: attachment; filename*=utf-8''%C3%A9t%C3%A9.txt",
  '',
  'y',
  '--b--',
]);

test('RFC 9051 §7.5.2, Appendix E: BODYSTRUCTURE joins RFC 2231 parameter continuations (for every client), as Dovecot does', async () => {
  const w = await login(false);
  assert.match(await w.cmd('c', 'CREATE continued'), /^c OK/m);
  await append(w, 'continued', CONTINUED);
  await w.cmd('s', 'EXAMINE continued');
  const ours = /BODYSTRUCTURE (.*)\)\r\n/.exec(await w.cmd('f', 'FETCH 1 BODYSTRUCTURE'))![1]!;
  w.close();

  const root = tempDir('hearth-rev2-dovecot-');
  fs.chmodSync(root, 0o755);
  const store = new MailStore(path.join(root, 'data'));
  await store.deliver('c@example.test', Buffer.from(CONTINUED, 'latin1'));
  handToDovecot(path.join(root, 'data'));
  const dovecot = await startDovecot({ dir: path.join(root, 'dovecot'), maildir: store.mailboxPath('c@example.test'), login: 'c', password: 'c-pw', host: '127.0.0.32' });
  let theirs: string;
  try {
    const r = await run('/usr/bin/python3', [
      '-c',
      `
import imaplib
M = imaplib.IMAP4('127.0.0.32', ${dovecot.port})
M.login('c', 'c-pw')
M.select('INBOX', readonly=True)
print(M.fetch('1', '(BODYSTRUCTURE)')[1][0].decode())
M.logout()
`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    theirs = r.stdout;
  } finally {
    await dovecot.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
  // the plain continuations joined, after the other parameters, as Dovecot lists them
  const nameParams = '("charset" "us-ascii" "name" "longname.txt")';
  assert.ok(theirs.includes(nameParams), theirs);
  assert.ok(ours.includes(nameParams), ours);
  const filename = '("attachment" ("filename*" "utf-8\'\'%C3%A9t%C3%A9.txt"))';
  assert.ok(theirs.includes(filename), theirs);
  assert.ok(ours.includes(filename), ours);
  // the extended ones as one title*, which decodes (Python's RFC 2231 decoder) to RFC 2231 §4.1's text
  const title = /\("title\*" "([^"]*)"\)/.exec(ours);
  assert.ok(title, ours);
  const decoded = await run('/usr/bin/python3', [
    '-c',
    'import sys, email, email.utils; m = email.message_from_string("Content-Type: application/x-stuff; title*=" + sys.argv[1] + "\\n\\n"); print(email.utils.collapse_rfc2231_value(m.get_param("title")))',
    title[1]!,
  ]);
  assert.equal(decoded.stdout.trim(), "This is even more ***fun*** isn't it!");
});
