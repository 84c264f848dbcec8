import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MemoryIO } from '@hearth/lineserver';
import { createLogger } from '@hearth/log';
import { NO_QUOTA } from '@hearth/mailstore';
import { HeaderCache } from '../src/header-cache.ts';
import { CommandFramer } from '../src/imap-parser.ts';
import { Session } from '../src/session.ts';
import { IMAP_CONNECTION_DEFAULTS, loadImapSettings } from '../src/settings.ts';
import { stack, type Stack } from './helpers.ts';

/**
 * RFC 3501 / RFC 2180 rules checked command by command on in-memory sessions; the
 * expected answers are the RFCs' (quoted beside each check), not Hearth's output.
 */

let s: Stack;
before(async () => {
  s = await stack();
});
after(() => s.close());

const headers = new HeaderCache();

/** A logged-in session over MemoryIO; `run` sends one command line and returns all output. */
async function session(): Promise<(line: string) => Promise<string>> {
  const io = new MemoryIO(true);
  const settings = { maxMessageBytes: 1024 * 1024, quota: NO_QUOTA, connections: IMAP_CONNECTION_DEFAULTS };
  const sess = new Session({ directory: s.directory, store: s.store, logger: createLogger('imap-test', 'warn'), settings, tlsAvailable: false, headers }, io);
  const framer = new CommandFramer();
  const run = async (input: string): Promise<string> => {
    for (const ev of framer.push(Buffer.from(`${input}\r\n`, 'latin1'))) if (ev.type === 'command') await sess.handle(ev.parts);
    return io.take();
  };
  assert.match(await run(`L LOGIN ${s.user.username} ${s.user.password}`), /^L OK /m);
  return run;
}

test('RFC 3501 §9: "[" is an ATOM-CHAR; only BODY[ / BINARY[ open a section', async () => {
  const run = await session();
  // The name is a valid atom; it is refused as a mailbox that does not exist, not as bad syntax.
  assert.match(await run("a SELECT !#$&'+,-.0123456789:;<=>?@^_`|[}"), /^a NO /m);
  assert.match(await run('b CREATE a[b'), /^b OK /m);
  assert.match(await run('c LIST "" a[b'), /^\* LIST \([^)]*\) "\." "?a\[b"?\r\nc OK /m);
  assert.match(await run('d SELECT a[b'), /^d OK /m);
  assert.match(await run('e UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])'), /^e OK /m);
});

test('RFC 3501 §6.4.5: a message/rfc822 message has one part, 1, the whole inner message', async () => {
  const inner = 'From: Inner <inner@example.test>\r\nSubject: inner\r\n\r\ninner body\r\n';
  const outer = `From: Outer <outer@example.test>\r\nSubject: outer\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n${inner}`;
  await s.store.deliver(s.user.email, Buffer.from(outer), 'Forwarded');
  const run = await session();
  assert.match(await run('a SELECT Forwarded'), /^a OK /m);
  const literal = (r: string, label: string): string => {
    const m = new RegExp(`${label.replace(/[[\].()]/g, '\\$&')} \\{(\\d+)\\}\\r\\n`).exec(r);
    assert.ok(m, r);
    return r.slice(m.index + m[0].length, m.index + m[0].length + Number(m[1]));
  };
  const r = await run('b FETCH 1 (BODY.PEEK[1] BODY.PEEK[1.HEADER] BODY.PEEK[1.TEXT] BODY.PEEK[1.HEADER.FIELDS (SUBJECT)] BODY.PEEK[1.1] BODY.PEEK[TEXT])');
  assert.equal(literal(r, 'BODY[1]'), inner, 'BODY[1] is the whole encapsulated message');
  assert.equal(literal(r, 'BODY[1.HEADER]'), 'From: Inner <inner@example.test>\r\nSubject: inner\r\n\r\n');
  assert.equal(literal(r, 'BODY[1.TEXT]'), 'inner body\r\n');
  assert.equal(literal(r, 'BODY[1.HEADER.FIELDS (SUBJECT)]'), 'Subject: inner\r\n\r\n');
  assert.equal(literal(r, 'BODY[1.1]'), 'inner body\r\n', 'the inner message is not multipart: its part 1 is its body');
  assert.equal(literal(r, 'BODY[TEXT]'), inner);
});

test('RFC 3501 §6.3.3: CREATE with a trailing hierarchy delimiter creates the name without it', async () => {
  const run = await session();
  assert.match(await run('a CREATE owatagusiam.'), /^a OK /m);
  assert.match(await run('b LIST "" owatagusiam'), /^\* LIST \([^)]*\) "\." "?owatagusiam"?\r\nb OK /m);
  assert.match(await run('c SELECT owatagusiam'), /^c OK /m);
  assert.match(await run('d CREATE owatagusiam.blurdybloop'), /^d OK /m);
});

test('RFC 3501 §6.3.9: LSUB "%" lists an unsubscribed parent of a subscribed mailbox with \\Noselect', async () => {
  const run = await session();
  assert.match(await run('a CREATE news.comp.mail.misc'), /^a OK /m);
  assert.match(await run('b SUBSCRIBE news.comp.mail.misc'), /^b OK /m);
  // "* LSUB (\Noselect) "/" foo" for a subscribed "foo/bar" and an unsubscribed "foo"
  assert.match(await run('c LSUB "" news.%'), /^\* LSUB \(\\Noselect\) "\." "?news\.comp"?\r\nc OK /m);
  assert.match(await run('d LSUB "" %'), /^\* LSUB \(\\Noselect\) "\." "?news"?\r\n/m);
  assert.match(await run('e LSUB "news.comp.mail." %'), /^\* LSUB \([^)]*\) "\." "?news\.comp\.mail\.misc"?\r\ne OK /m);
  assert.doesNotMatch(await run('f LSUB "" news.*'), /\\Noselect/, 'with "*" the subscribed mailbox itself is listed, not its parents');
});

test('SEARCH FROM/TO/CC/BCC match the parsed address: comments and whitespace in it removed', async () => {
  // RFC 5322 Appendix A.5 (white space, comments, and other oddities)
  const msg =
    'From: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>\r\n' +
    'To:A Group(Some people)\r\n     :Chris Jones <c@(Chris\'s host.)public.example>,\r\n         joe@example.org,\r\n  John <jdoe@one.test> (my dear friend); (the end of the group)\r\n' +
    'Cc:(Empty list)(start)Hidden recipients  :(nobody(that I know))  ;\r\n' +
    'Subject: oddities\r\nDate: Thu,\r\n      13\r\n        Feb\r\n          1969\r\n      23:32\r\n               -0330 (Newfoundland Time)\r\nMessage-ID:              <testabcd.1234@silly.test>\r\n\r\nTesting.\r\n';
  await s.store.deliver(s.user.email, Buffer.from(msg), 'Oddities');
  const run = await session();
  assert.match(await run('a SELECT Oddities'), /^a OK /m);
  assert.match(await run('b SEARCH FROM pete@silly.test'), /^\* SEARCH 1\r\n/m);
  assert.match(await run('c SEARCH FROM "Pete <pete@silly.test>"'), /^\* SEARCH 1\r\n/m);
  assert.match(await run('d SEARCH FROM "his account"'), /^\* SEARCH\r\n/m, 'comments are not part of the address');
  assert.match(await run('e SEARCH TO c@public.example'), /^\* SEARCH 1\r\n/m);
  assert.match(await run('f SEARCH TO jdoe@one.test'), /^\* SEARCH 1\r\n/m);
  assert.match(await run('g SEARCH TO "my dear friend"'), /^\* SEARCH\r\n/m);
  assert.match(await run('h SEARCH HEADER To "my dear friend"'), /^\* SEARCH 1\r\n/m, 'HEADER still searches the field text');
});

test('RFC 3501 §6.4.4: SENTBEFORE/SENTON/SENTSINCE use the Date header\'s date, disregarding time and timezone', async () => {
  const dated = (date: string, n: number): Buffer => Buffer.from(`From: a@example.test\r\nSubject: dated ${n}\r\nDate: ${date}\r\n\r\nbody\r\n`);
  await s.store.deliver(s.user.email, dated('Sun, 25 Mar 2007 00:00:00 +0200', 1), 'Dated'); // 24 Mar 22:00 UTC
  await s.store.deliver(s.user.email, dated('Sat, 24 Mar 2007 23:30:00 -0800', 2), 'Dated'); // 25 Mar 07:30 UTC
  await s.store.deliver(s.user.email, dated('25 Mar 07 12:00 GMT', 3), 'Dated'); // obs-year: 2007
  const run = await session();
  assert.match(await run('a SELECT Dated'), /^a OK /m);
  assert.match(await run('b SEARCH SENTON 25-Mar-2007'), /^\* SEARCH 1 3\r\n/m);
  assert.match(await run('c SEARCH SENTON 24-Mar-2007'), /^\* SEARCH 2\r\n/m);
  assert.match(await run('d SEARCH SENTBEFORE 25-Mar-2007'), /^\* SEARCH 2\r\n/m);
  assert.match(await run('e SEARCH SENTSINCE 25-Mar-2007'), /^\* SEARCH 1 3\r\n/m);
});

test('RFC 3501 §2.3.1.1: a mailbox deleted and re-created at once gets a new, larger UIDVALIDITY', async () => {
  const run = await session();
  const seen: number[] = [];
  for (let i = 0; i < 3; i++) {
    assert.match(await run(`c${i} CREATE Recreated`), /OK /);
    const m = /UIDVALIDITY (\d+)/.exec(await run(`s${i} STATUS Recreated (UIDVALIDITY)`));
    assert.ok(m);
    seen.push(Number(m[1]));
    assert.match(await run(`d${i} DELETE Recreated`), /OK /);
  }
  assert.ok(seen[0]! < seen[1]! && seen[1]! < seen[2]!, `UIDVALIDITY must never repeat for a name: ${seen.join(' ')}`);
});

test('RFC 2180 §4.1.3: FETCH of a message another session expunged answers NO [EXPUNGEISSUED], never [NONEXISTENT]', async () => {
  for (let i = 1; i <= 3; i++) await s.store.deliver(s.user.email, Buffer.from(`Subject: e${i}\r\n\r\nbody ${i}\r\n`), 'Expunging');
  const a = await session();
  const b = await session();
  assert.match(await a('a1 SELECT Expunging'), /\* 3 EXISTS/);
  assert.match(await b('b1 SELECT Expunging'), /\* 3 EXISTS/);
  assert.match(await b('b2 STORE 2 +FLAGS.SILENT (\\Deleted)'), /^b2 OK /m);
  assert.match(await b('b3 EXPUNGE'), /\* 2 EXPUNGE\r\nb3 OK /);
  // Session a still has message 2: no EXPUNGE may be sent during FETCH (RFC 3501 §7.4.1).
  for (const items of ['FLAGS', 'RFC822.SIZE', 'INTERNALDATE', 'BODY.PEEK[TEXT]', '(FLAGS BODY.PEEK[HEADER] RFC822.SIZE)']) {
    const r = await a(`a2 FETCH 2 ${items}`);
    assert.doesNotMatch(r, /NONEXISTENT/, r);
    assert.match(r, /^a2 NO \[EXPUNGEISSUED\] /m, `FETCH 2 ${items}: ${r}`);
    assert.doesNotMatch(r, /EXPUNGE\r\n/, 'no EXPUNGE response during FETCH');
  }
  const both = await a('a3 FETCH 1:3 (BODY.PEEK[TEXT])');
  assert.match(both, /^\* 1 FETCH \(BODY\[TEXT\] \{8\}\r\nbody 1\r\n\)\r\n\* 3 FETCH \(BODY\[TEXT\] \{8\}\r\nbody 3\r\n\)\r\na3 NO \[EXPUNGEISSUED\] /m, 'the messages still there are returned');
  assert.match(await a('a4 NOOP'), /^\* 2 EXPUNGE\r\n(?:[^\r]*\r\n)*a4 OK /m);
  // Another process (POP3, Dovecot) removes message 1's file: this session still numbers it.
  const cur = path.join(s.store.mailboxPath(s.user.email), '.Expunging', 'cur');
  for (const f of fs.readdirSync(cur)) if (fs.readFileSync(path.join(cur, f), 'latin1').includes('body 1')) fs.unlinkSync(path.join(cur, f));
  const r = await a('a5 FETCH 1 (INTERNALDATE RFC822.SIZE BODY.PEEK[TEXT])');
  assert.doesNotMatch(r, /NONEXISTENT/, r);
  assert.match(r, /^a5 NO \[EXPUNGEISSUED\] /m, r);
});

test('RFC 5819 LIST-STATUS: RETURN (STATUS (...)) puts a STATUS after each selectable mailbox LIST returns', async () => {
  for (let i = 0; i < 3; i++) await s.store.deliver(s.user.email, Buffer.from(`Subject: ls${i}\r\n\r\nx\r\n`), 'Ls.foo');
  const run = await session();
  assert.match(await run('c CAPABILITY'), /^\* CAPABILITY [^\r]* LIST-STATUS/m);
  assert.match(await run('s SELECT Ls.foo'), /^s OK /m);
  assert.match(await run('t STORE 1 +FLAGS.SILENT (\\Seen)'), /^t OK /m);
  const r = await run('A01 LIST "" Ls.% RETURN (STATUS (MESSAGES UNSEEN))');
  assert.match(r, /^\* LIST \([^)]*\) "\." "?Ls\.foo"?\r\n\* STATUS "?Ls\.foo"? \(MESSAGES 3 UNSEEN 2\)\r\nA01 OK /m);
  // A Maildir++ folder made by another tool, without its parent level: in an extended LIST the parent is \NonExistent (RFC 5258 §3).
  for (const sub of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(s.store.mailboxPath(s.user.email), '.Lx.bar', sub), { recursive: true });
  const parent = await run('A02 LIST "" Lx RETURN (STATUS (MESSAGES))');
  assert.match(parent, /^\* LIST \(\\NonExistent[^)]*\) "\." "?Lx"?\r\nA02 OK /m, 'no STATUS for a name that is no mailbox');
  assert.match(await run('A03 LIST "" Ls.% RETURN (STATUS (BOGUS))'), /^A03 BAD /m);
});

test('RFC 5032 WITHIN: OLDER and YOUNGER compare INTERNALDATE with now minus the interval', async () => {
  await s.store.deliver(s.user.email, Buffer.from('Subject: old\r\n\r\nold\r\n'), 'Within');
  const dir = path.join(s.store.mailboxPath(s.user.email), '.Within');
  const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
  for (const sub of ['new', 'cur']) for (const f of fs.readdirSync(path.join(dir, sub))) fs.utimesSync(path.join(dir, sub, f), twoHoursAgo, twoHoursAgo);
  await s.store.deliver(s.user.email, Buffer.from('Subject: new\r\n\r\nnew\r\n'), 'Within');
  const run = await session();
  assert.match(await run('c CAPABILITY'), /^\* CAPABILITY [^\r]* WITHIN/m);
  assert.match(await run('a SELECT Within'), /^a OK /m);
  assert.match(await run('b SEARCH YOUNGER 3600'), /^\* SEARCH 2\r\n/m);
  assert.match(await run('d SEARCH OLDER 3600'), /^\* SEARCH 1\r\n/m);
  assert.match(await run('e SEARCH YOUNGER 86400'), /^\* SEARCH 1 2\r\n/m);
  assert.match(await run('f SEARCH OLDER 0'), /^f BAD /m, 'the interval is an nz-number');
});

test('RFC 4731 ESEARCH: SEARCH RETURN (MIN MAX COUNT ALL) answers one ESEARCH line', async () => {
  for (let i = 1; i <= 11; i++) await s.store.deliver(s.user.email, Buffer.from(`From: ${i === 5 ? 'Smith' : 'Jones'} <x@example.test>\r\nSubject: es${i}\r\n\r\nx\r\n`), 'Esearch');
  const run = await session();
  assert.match(await run('c CAPABILITY'), /^\* CAPABILITY [^\r]* ESEARCH/m);
  assert.match(await run('a SELECT Esearch'), /^a OK /m);
  assert.match(await run('b STORE 2,5,10:11 +FLAGS.SILENT (\\Flagged)'), /^b OK /m);
  // the RFC's examples, with messages 2, 10 and 11 flagged and not from Smith
  assert.match(await run('A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"'), /^\* ESEARCH \(TAG "A282"\) MIN 2 COUNT 3\r\nA282 OK /m);
  assert.match(await run('A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"'), /^\* ESEARCH \(TAG "A283"\) ALL 2,10:11\r\nA283 OK /m);
  assert.match(await run('A284 SEARCH RETURN (MIN MAX) DELETED'), /^\* ESEARCH \(TAG "A284"\)\r\nA284 OK /m);
  assert.match(await run('A285 UID SEARCH RETURN (MAX COUNT) FLAGGED'), /^\* ESEARCH \(TAG "A285"\) UID MAX \d+ COUNT 4\r\nA285 OK /m);
  assert.match(await run('A286 SEARCH RETURN (COUNT) DELETED'), /^\* ESEARCH \(TAG "A286"\) COUNT 0\r\n/m);
  assert.match(await run('A287 SEARCH RETURN (BOGUS) ALL'), /^A287 BAD /m);
  assert.match(await run('A288 SEARCH FLAGGED'), /^\* SEARCH 2 5 10 11\r\n/m, 'plain SEARCH is unchanged');
});

test('RFC 3501 §6.2.3 LOGINDISABLED with HEARTH_IMAP_REQUIRE_TLS: no login before STARTTLS (off by default)', async () => {
  assert.equal(loadImapSettings({}).requireTls, false);
  assert.equal(loadImapSettings({ HEARTH_IMAP_REQUIRE_TLS: '1' }).requireTls, true);
  const io = new MemoryIO(false);
  const settings = { ...loadImapSettings({ HEARTH_IMAP_REQUIRE_TLS: 'true' }), quota: NO_QUOTA };
  const sess = new Session({ directory: s.directory, store: s.store, logger: createLogger('imap-test', 'warn'), settings, tlsAvailable: true, headers }, io);
  const framer = new CommandFramer();
  const run = async (input: string): Promise<string> => {
    for (const ev of framer.push(Buffer.from(`${input}\r\n`))) if (ev.type === 'command') await sess.handle(ev.parts);
    return io.take();
  };
  assert.match(sess.greeting().toString(), /\[CAPABILITY (?=[^\]]*LOGINDISABLED)(?![^\]]*AUTH=)[^\]]*STARTTLS/);
  assert.match(await run(`a LOGIN ${s.user.username} ${s.user.password}`), /^a NO \[PRIVACYREQUIRED\] /m);
  assert.match(await run('b AUTHENTICATE PLAIN AGFsaWNlAGFsaWNlLXBhc3N3b3JkLTE='), /^b NO \[PRIVACYREQUIRED\] /m);
  assert.match(await run('c STARTTLS'), /^c OK /m);
  assert.match(await run('d CAPABILITY'), /^\* CAPABILITY (?![^\r]*LOGINDISABLED)[^\r]*AUTH=PLAIN/m);
  assert.match(await run(`e LOGIN ${s.user.username} ${s.user.password}`), /^e OK /m);
});

test('RFC 5182 SEARCHRES: SEARCH RETURN (SAVE) keeps the result as $ for later commands', async () => {
  for (let i = 1; i <= 6; i++) await s.store.deliver(s.user.email, Buffer.from(`From: ${i === 3 ? 'Smith' : 'Jones'} <x@example.test>\r\nSubject: sr${i}\r\n\r\nx\r\n`), 'Searchres');
  const run = await session();
  assert.match(await run('c CAPABILITY'), /^\* CAPABILITY [^\r]* SEARCHRES/m);
  assert.match(await run('a SELECT Searchres'), /^a OK /m);
  assert.match(await run('b STORE 2,3,5 +FLAGS.SILENT (\\Flagged)'), /^b OK /m);
  // "A282 SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"" → only the tagged OK
  assert.match(await run('A282 SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"'), /^A282 OK [^\r]*\r\n$/);
  assert.match(await run('A283 FETCH $ (FLAGS)'), /^\* 2 FETCH \(FLAGS \([^)]*\)\)\r\n\* 5 FETCH \(FLAGS \([^)]*\)\)\r\nA283 OK /);
  assert.match(await run('A284 SEARCH $ SUBJECT sr5'), /^\* SEARCH 5\r\n/m);
  // §2.4: "the corresponding MIN/MAX is returned ..., but the "$" marker would contain a single message"
  assert.match(await run('A285 UID SEARCH RETURN (SAVE MIN) FLAGGED'), /^\* ESEARCH \(TAG "A285"\) UID MIN 2\r\nA285 OK /);
  assert.match(await run('A286 FETCH $ (FLAGS)'), /^\* 2 FETCH [^\r]*\r\nA286 OK /);
  assert.match(await run('A287 SEARCH RETURN (SAVE COUNT) FLAGGED'), /^\* ESEARCH \(TAG "A287"\) COUNT 3\r\nA287 OK /, 'SAVE with other options answers them');
  assert.match(await run('A288 STORE 2 +FLAGS.SILENT (\\Deleted)'), /^A288 OK /m);
  assert.match(await run('A289 EXPUNGE'), /\* 2 EXPUNGE/);
  assert.match(await run('A290 FETCH $ (FLAGS)'), /^\* 2 FETCH [^\r]*\r\n\* 4 FETCH [^\r]*\r\nA290 OK /, 'the expunged message drops out of $');
  assert.match(await run('A291 SEARCH RETURN (SAVE) BOGUSKEY'), /^A291 BAD /m);
  assert.match(await run('A292 FETCH $ (FLAGS)'), /^A292 OK /, 'a failed SAVE search leaves $ empty');
});

test('RFC 5258 LIST-EXTENDED: selection and return options, \\NonExistent, RECURSIVEMATCH with CHILDINFO', async () => {
  const run = await session();
  assert.match(await run('c CAPABILITY'), /^\* CAPABILITY [^\r]* LIST-EXTENDED/m);
  for (const m of ['Foo', 'Foo.Bar', 'Foo.Baz', 'Moo']) assert.match(await run(`k CREATE ${m}`), /^k OK /m);
  assert.match(await run('k SUBSCRIBE Foo.Bar'), /^k OK /m);
  assert.match(await run('k SUBSCRIBE Moo'), /^k OK /m);
  assert.match(await run('k SUBSCRIBE Fruit.peach'), /^k OK /m);
  // §6 example: "A04 LIST (SUBSCRIBED RECURSIVEMATCH) "" %" → Foo with CHILDINFO, Moo \Subscribed
  const r = await run('A04 LIST (SUBSCRIBED RECURSIVEMATCH) "" %');
  assert.match(r, /^\* LIST \((?![^)]*\\Subscribed)[^)]*\) "\." "?Foo"? \("CHILDINFO" \("SUBSCRIBED"\)\)\r\n/m);
  assert.match(r, /^\* LIST \([^)]*\\Subscribed[^)]*\) "\." "?Moo"?\r\n/m);
  assert.doesNotMatch(r, /"?Foo\.Baz"?/);
  // "* LIST (\Subscribed \NonExistent) "/" "Fruit/peach""
  assert.match(await run('A02 LIST (SUBSCRIBED) "" Fruit.*'), /^\* LIST \((?=[^)]*\\NonExistent)(?=[^)]*\\Subscribed)[^)]*\) "\." "?Fruit\.peach"?\r\nA02 OK /m);
  assert.match(await run('A05 LIST (RECURSIVEMATCH) "" %'), /^A05 BAD /m, 'RECURSIVEMATCH alone is BAD');
  assert.match(await run('A06 LIST (BOGUS) "" %'), /^A06 BAD /m);
  assert.match(await run('A07 LIST "" % RETURN (BOGUS)'), /^A07 BAD /m);
  assert.match(await run('A08 LIST "" (Foo Moo) RETURN (CHILDREN SUBSCRIBED)'), /^\* LIST \(\\HasChildren\) "\." "?Foo"?\r\n\* LIST \(\\HasNoChildren \\Subscribed\) "\." "?Moo"?\r\nA08 OK /m);
});
