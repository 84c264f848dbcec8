import { test } from 'node:test';
import assert from 'node:assert/strict';
import { baseSubject, casemap, messageIds, parseSortCriteria, sortFields, type SortItem } from '../src/sort.ts';
import { formatThreads, orderedSubjectThreads, referenceThreads, refsThreads } from '../src/thread.ts';
import { parseHeaders } from '@hearth/message';
import { run, stack } from './helpers.ts';
import { Wire } from './wire.ts';

/** SORT/THREAD/ESORT rules with the RFCs' own examples and grammar as expected values. */

test('RFC 5256 §2.1 base subject: subj-refwd, subj-blob, subj-trailer and subj-fwd removed, casemapped', () => {
  const cases: [string, string, boolean][] = [
    ['Hello', 'HELLO', false],
    ['Re: hello', 'HELLO', true],
    ['re:hello', 'HELLO', true],
    ['Fwd: Re: FW: hello', 'HELLO', true],
    ['Re[2]: hello', 'HELLO', true],
    ['Re : hello', 'HELLO', true],
    ['[list] Re: hello', 'HELLO', true],
    ['[a] [b] Fw: hello', 'HELLO', true],
    // (4): a leading subj-blob goes when something is left
    ['[list] hello', 'HELLO', false],
    ['[list]', '[LIST]', false],
    // (2): "(fwd)" and blanks at the end
    ['hello (fwd)  (fwd) ', 'HELLO', true],
    // (6): [fwd: …] around the rest, then from (2) again
    ['[Fwd: Re: hello (fwd)]', 'HELLO', true],
    ['Reply: hello', 'REPLY: HELLO', false],
    // (1): RFC 2047 words decoded, whitespace runs one space
    ['=?UTF-8?B?UmU6IEjDqWxsbw==?=', 'HE\u0301LLO', true],
    ['a\t\r\n  b', 'A B', false],
    ['', '', false],
  ];
  for (const [subject, base, reply] of cases) assert.deepEqual(baseSubject(subject), { base, replyOrForward: reply }, subject);
});

test('RFC 5051 i;unicode-casemap: titlecase, then decomposition', () => {
  assert.equal(casemap('straße'), 'STRAßE', 'ß has no single titlecase character');
  assert.equal(casemap('é'), 'E\u0301');
  assert.equal(casemap('Å'), 'A\u030a', 'ANGSTROM SIGN decomposes to A + ring');
  assert.equal(casemap('ǆ'), 'ǅ', 'a digraph titlecases to its titlecase form');
  assert.equal(casemap('①'), '1', 'compatibility decomposition');
});

test('RFC 5256 §3: sort criteria grammar; msg-ids need an @', () => {
  assert.deepEqual(parseSortCriteria({ kind: 'list', items: ['REVERSE', 'date', 'SUBJECT'].map((value) => ({ kind: 'atom', value })) }), [
    { key: 'DATE', reverse: true },
    { key: 'SUBJECT', reverse: false },
  ]);
  for (const bad of [[], ['REVERSE'], ['REVERSE', 'REVERSE', 'DATE'], ['NAME']])
    assert.throws(() => parseSortCriteria({ kind: 'list', items: bad.map((value) => ({ kind: 'atom', value })) }), bad.join(' '));
  assert.deepEqual(messageIds('garbage <no-at> < a @ b > <c@d>'), ['a@b', 'c@d']);
});

function item(n: number, header: string): SortItem {
  const raw = Buffer.from(`${header}\r\n\r\n`);
  return { seq: n, uid: n, arrival: n, size: 0, fields: sortFields(parseHeaders(raw, 0, raw.length).headers) };
}

test('RFC 5256 §4: the thread (2)(3 6 (4 23)(44 7 96)) from References, and its notation', () => {
  const refs: Record<number, string> = { 2: '', 3: '', 6: '<3@x>', 4: '<3@x> <6@x>', 23: '<3@x> <6@x> <4@x>', 44: '<3@x> <6@x>', 7: '<3@x> <6@x> <44@x>', 96: '<3@x> <6@x> <44@x> <7@x>' };
  const items = Object.keys(refs)
    .map(Number)
    .sort((a, b) => a - b)
    .map((n) => item(n, `Subject: m${n}\r\nMessage-ID: <${n}@x>${refs[n] ? `\r\nReferences: ${refs[n]}` : ''}`));
  assert.equal(formatThreads(referenceThreads(items, false)), '(2)(3 6 (4 23)(44 7 96))');
});

test('RFC 5256 §3 REFERENCES: a missing parent of several messages stays as a dummy; of one, it goes', () => {
  const items = [
    item(1, 'Subject: a\r\nMessage-ID: <1@x>\r\nReferences: <gone@x>'),
    item(2, 'Subject: b\r\nMessage-ID: <2@x>\r\nReferences: <gone@x>'),
    item(3, 'Subject: c\r\nMessage-ID: <3@x>\r\nIn-Reply-To: <other@x>'),
  ];
  assert.equal(formatThreads(referenceThreads(items, false)), '((1)(2))(3)');
});

test('REFS: the REFERENCES threads without subject merging, ordered by their latest message', () => {
  const items = [
    item(1, 'Subject: a\r\nMessage-ID: <1@x>'),
    item(2, 'Subject: b\r\nMessage-ID: <2@x>'),
    item(3, 'Subject: Re: a\r\nMessage-ID: <3@x>\r\nReferences: <1@x>'),
    item(4, 'Subject: Re: b\r\nMessage-ID: <4@x>'),
  ];
  assert.equal(formatThreads(referenceThreads(items, false)), '(1 3)(2 4)');
  assert.equal(formatThreads(refsThreads(items, false)), '(2)(1 3)(4)');
});

test('RFC 5256 §3 ORDEREDSUBJECT: one thread per base subject, the later ones children of the first', () => {
  const items = [item(1, 'Subject: b'), item(2, 'Subject: Re: a'), item(3, 'Subject: a'), item(4, 'Subject: re: B'), item(5, 'Subject: [x] a')];
  // threads by their first message's date (here the arrival order)
  assert.equal(formatThreads(orderedSubjectThreads(items, false)), '(1 4)(2 (3)(5))');
});

test('SORT, THREAD and ESORT over IMAP: advertised, the RFC 5267 examples, NO [BADCHARSET], BAD for unknown keys', async () => {
  const h = await stack();
  const w = await Wire.connect(h.imap.ports.imap);
  try {
    for (const [i, day] of [3, 1, 2].entries())
      await h.store.deliver(h.user.email, Buffer.from(`From: u${i}@example.test\r\nSubject: s${i}\r\nDate: ${day} Feb 2024 10:00:00 +0000\r\nMessage-ID: <${i}@x>\r\n\r\nx\r\n`));
    await w.until(/\r\n/);
    assert.match(await w.cmd('l', `LOGIN ${h.user.username} ${h.user.password}`), /^l OK \[CAPABILITY [^\]]*\bSORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES THREAD=REFS ESORT CONTEXT=SEARCH CONTEXT=SORT\b/m);
    await w.cmd('s', 'SELECT INBOX');
    assert.match(await w.cmd('a', 'SORT (DATE) UTF-8 ALL'), /^\* SORT 2 3 1\r\na OK/m);
    // RFC 5267 §3's example
    assert.match(await w.cmd('A283', 'SORT RETURN (COUNT) (DATE) UTF-8 ALL'), /^\* ESEARCH \(TAG "A283"\) COUNT 3\r\n/m);
    // MIN and MAX are the first and last in sort order; ALL keeps that order
    assert.match(await w.cmd('b', 'SORT RETURN (MIN MAX ALL) (DATE) UTF-8 ALL'), /^\* ESEARCH \(TAG "b"\) MIN 2 MAX 1 ALL 2:3,1\r\n/m);
    // RFC 5267 §4.4: PARTIAL low:high, NIL when nothing is in the range
    assert.match(await w.cmd('c', 'SORT RETURN (PARTIAL 2:5) (DATE) UTF-8 ALL'), /^\* ESEARCH \(TAG "c"\) PARTIAL \(2:5 3,1\)\r\n/m);
    assert.match(await w.cmd('d', 'SEARCH RETURN (PARTIAL 4:9) ALL'), /^\* ESEARCH \(TAG "d"\) PARTIAL \(4:9 NIL\)\r\n/m);
    assert.match(await w.cmd('e', 'THREAD REFERENCES UTF-8 ALL'), /^\* THREAD \(2\)\(3\)\(1\)\r\ne OK/m);
    // a kept order or thread answer goes when the messages change
    const add = Buffer.from('Subject: s3\r\nDate: 31 Jan 2024 10:00:00 +0000\r\nMessage-ID: <3@x>\r\nReferences: <1@x>\r\n\r\nx\r\n');
    assert.match(await w.cmd('j', `APPEND INBOX {${add.length}+}\r\n${add.toString()}`), /^j OK/m);
    assert.match(await w.cmd('k', 'SORT (DATE) UTF-8 ALL'), /^\* SORT 4 2 3 1\r\nk OK/m);
    assert.match(await w.cmd('l', 'THREAD REFERENCES UTF-8 ALL'), /^\* THREAD \(2 4\)\(3\)\(1\)\r\nl OK/m);
    assert.match(await w.cmd('m', 'STORE 2 +FLAGS.SILENT (\\Deleted)'), /^m OK/m);
    assert.match(await w.cmd('n', 'EXPUNGE'), /^n OK/m);
    assert.match(await w.cmd('o', 'SORT (DATE) UTF-8 ALL'), /^\* SORT 3 2 1\r\no OK/m);
    assert.match(await w.cmd('p', 'THREAD REFERENCES UTF-8 ALL'), /^\* THREAD \(3\)\(2\)\(1\)\r\np OK/m);
    assert.match(await w.cmd('f', 'SORT (SUBJECT) KOI8-R ALL'), /^f NO \[BADCHARSET/m);
    assert.match(await w.cmd('g', 'THREAD REFERENCES KOI8-R ALL'), /^g NO \[BADCHARSET/m);
    assert.match(await w.cmd('h', 'SORT (NAME) UTF-8 ALL'), /^h BAD/m);
    assert.match(await w.cmd('i', 'THREAD SUBJECTS UTF-8 ALL'), /^i BAD/m);
    // Python's imaplib drives SORT and THREAD through its own sort() and thread()
    const r = await run('python3', [
      '-c',
      `
import imaplib
M = imaplib.IMAP4('127.0.0.1', ${h.imap.ports.imap})
M.login('${h.user.username}', '${h.user.password}')
M.select('INBOX')
print(M.sort('(REVERSE DATE)', 'UTF-8', 'ALL'))
print(M.uid('SORT', '(SUBJECT)', 'UTF-8', 'ALL'))
print(M.thread('REFERENCES', 'UTF-8', 'ALL'))
M.logout()
`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "('OK', [b'1 2 3'])\n('OK', [b'1 3 4'])\n('OK', [b'(3)(2)(1)'])\n");
  } finally {
    w.close();
    await h.close();
  }
});
