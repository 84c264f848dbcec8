import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { stack, type Stack } from './helpers.ts';
import { Wire } from './wire.ts';

/**
 * CONTEXT=SORT (RFC 5267 §4): a SORT kept up to date in one session while another appends,
 * flags and expunges. Expected values are worked out from the RFC's rules (Dovecot 2.3 has no
 * CONTEXT=SORT): ADDTO/REMOVEFROM carry (context position, set) pairs applied in turn, a
 * position being the place in the sorted result (§4.3.3: "the first result in the set will
 * occupy the new context position after insertion"; §4.3.4: "… the given context position before
 * removal"), the set in the requested order; REMOVEFROM for expunged messages comes before the
 * EXPUNGE, ADDTO after the EXISTS (§4.3.3, §4.3.4).
 */

const HOST = '127.0.0.31';
let s: Stack;

before(async () => {
  s = await stack({ env: { HEARTH_LISTEN: HOST } });
  // UIDs 1–4, subjects b d f h (sorting by SUBJECT puts them in UID order)
  for (const subject of ['b', 'd', 'f', 'h']) await s.store.ingest(s.user.email, mail(subject), { assignUid: true });
});
after(() => s.close());

function mail(subject: string): Buffer {
  return Buffer.from(`From: x@example.test\r\nSubject: ${subject}\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nbody\r\n`);
}

async function session(): Promise<Wire> {
  const w = await Wire.connect(s.imap.ports.imap, { host: HOST });
  await w.until(/\r\n/);
  assert.match(await w.cmd('l', `LOGIN ${s.user.username} ${s.user.password}`), /^l OK/m);
  assert.match(await w.cmd('s', 'SELECT INBOX'), /^s OK/m);
  return w;
}

const append = (w: Wire, subject: string): Promise<string> => {
  const raw = mail(subject).toString('latin1');
  return w.cmd('ap', `APPEND INBOX {${raw.length}+}\r\n${raw}`);
};

/** `a` keeps contexts, `b` changes the folder; both closed after. */
async function twoSessions(body: (a: Wire, b: Wire) => Promise<void>): Promise<void> {
  const [a, b] = [await session(), await session()];
  try {
    await body(a, b);
  } finally {
    a.close();
    b.close();
  }
}

/** Another session's UID STORE \Deleted and EXPUNGE. */
async function expunge(w: Wire, uids: string): Promise<void> {
  assert.match(await w.cmd('st', `UID STORE ${uids} +FLAGS.SILENT (\\Deleted)`), /^st OK/m);
  assert.match(await w.cmd('ex', 'EXPUNGE'), /^ex OK/m);
}

/** The ESEARCH lines of a response, in order. */
const esearch = (text: string): string[] => text.split('\r\n').filter((l) => l.startsWith('* ESEARCH'));

test('CONTEXT=SORT is advertised once authenticated', async () => {
  const w = await session();
  assert.match(await w.cmd('c', 'CAPABILITY'), /^\* CAPABILITY .* CONTEXT=SEARCH CONTEXT=SORT /m);
  w.close();
});

test('UID SORT RETURN (UPDATE): arrivals, flag changes and expunges as positioned ADDTO/REMOVEFROM', () =>
  twoSessions(async (a, b) => {
    assert.deepEqual(esearch(await a.cmd('c1', 'UID SORT RETURN (ALL UPDATE) (SUBJECT) UTF-8 UNSEEN')), ['* ESEARCH (TAG "c1") UID ALL 1:4']);

    // "e" (UID 5) sorts between d and f: third in b d e f h
    await append(b, 'e');
    assert.deepEqual(esearch(await a.cmd('n1', 'NOOP')), ['* ESEARCH (TAG "c1") UID ADDTO (3 5)']);

    // three arrivals in one update: a (6), c (7), i (8) → a b c d e f h i; pairs front to back
    for (const subject of ['a', 'c', 'i']) await append(b, subject);
    assert.deepEqual(esearch(await a.cmd('n2', 'NOOP')), ['* ESEARCH (TAG "c1") UID ADDTO (1 6 3 7 8 8)']);

    // §4.3.3's preferred form: consecutive arrivals at one place are one pair with a range
    for (const subject of ['0a', '0b', '0c']) await append(b, subject);
    assert.deepEqual(esearch(await a.cmd('n3', 'NOOP')), ['* ESEARCH (TAG "c1") UID ADDTO (1 9:11)']);
    // now 0a 0b 0c a b c d e f h i = 9 10 11 6 1 7 2 5 3 4 8

    // d (UID 2) seen: leaves the UNSEEN result at position 7
    await b.cmd('st', 'UID STORE 2 +FLAGS.SILENT (\\Seen)');
    assert.deepEqual(esearch(await a.cmd('n4', 'NOOP')), ['* ESEARCH (TAG "c1") UID REMOVEFROM (7 2)']);

    // e and f (UIDs 5 and 3, consecutive in the result) seen: one pair, the set in sort order
    await b.cmd('st', 'UID STORE 3,5 +FLAGS.SILENT (\\Seen)');
    assert.deepEqual(esearch(await a.cmd('n5', 'NOOP')), ['* ESEARCH (TAG "c1") UID REMOVEFROM (7 5,3)']);
    // 0a 0b 0c a b c h i

    // 0b and c (UIDs 10 and 7) seen: two pairs; the second counts after the first is taken out (6 - 1 = 5)
    await b.cmd('st', 'UID STORE 7,10 +FLAGS.SILENT (\\Seen)');
    assert.deepEqual(esearch(await a.cmd('n6', 'NOOP')), ['* ESEARCH (TAG "c1") UID REMOVEFROM (2 10 5 7)']);
    // 0a 0c a b h i = 9 11 6 1 4 8

    // d unseen again: back between b and h
    await b.cmd('st', 'UID STORE 2 -FLAGS.SILENT (\\Seen)');
    assert.deepEqual(esearch(await a.cmd('n7', 'NOOP')), ['* ESEARCH (TAG "c1") UID ADDTO (5 2)']);
    // 0a 0c a b d h i = 9 11 6 1 2 4 8

    // a (UID 6) expunged: the REMOVEFROM comes before the EXPUNGE that renumbers
    await expunge(b, '6');
    const expunged = await a.cmd('n8', 'NOOP');
    assert.deepEqual(esearch(expunged), ['* ESEARCH (TAG "c1") UID REMOVEFROM (3 6)']);
    assert.ok(expunged.indexOf('* ESEARCH') < expunged.indexOf(' EXPUNGE\r\n'), expunged);

    // while EXPUNGE may not be sent (FETCH), the expunged message stays; NOOP then removes it
    await expunge(b, '4');
    await append(b, 'g');
    // g (UID 12) arrives; the expunged h (still in the result, its sort key gone with it) keeps its
    // place and g goes after it: 0a 0c b d h g i
    assert.deepEqual(esearch(await a.cmd('f1', 'FETCH 1 UID')), ['* ESEARCH (TAG "c1") UID ADDTO (6 12)']);
    assert.deepEqual(esearch(await a.cmd('n9', 'NOOP')), ['* ESEARCH (TAG "c1") UID REMOVEFROM (5 4)']);

    // CANCELUPDATE: no more updates for c1
    assert.match(await a.cmd('x1', 'CANCELUPDATE "c1"'), /^x1 OK/m);
    await append(b, 'bb');
    assert.deepEqual(esearch(await a.cmd('n10', 'NOOP')), []);
  }));

test('SORT RETURN (UPDATE) with message numbers: old numbers before the EXPUNGE, new ones after the EXISTS', () =>
  twoSessions(async (a, b) => {
    // left by the test before: UIDs 1 2 3 5 7 8 9 10 11 12 13 (b d f e c i 0a 0b 0c g bb), \Seen on f e c 0b
    assert.match(await a.cmd('u', 'UID SEARCH SEEN'), /^\* SEARCH 3 5 7 10\r\n/m);
    // REVERSE SUBJECT: f e c 0b = messages 3 4 5 8
    assert.deepEqual(esearch(await a.cmd('c2', 'SORT RETURN (ALL UPDATE) (REVERSE SUBJECT) UTF-8 SEEN')), ['* ESEARCH (TAG "c2") ALL 3:5,8']);
    // e (message 4) and d (message 2, not in the result) expunged
    await expunge(b, '2,5');
    const out = await a.cmd('n1', 'NOOP');
    assert.deepEqual(esearch(out), ['* ESEARCH (TAG "c2") REMOVEFROM (2 4)']);
    assert.ok(out.indexOf('* ESEARCH') < out.indexOf('* 4 EXPUNGE'), out);
    // f c 0b; "z" arrives seen (message 10 of 10) and b (message 1) is seen: z f c b 0b
    const raw = mail('z').toString('latin1');
    await b.cmd('ap', `APPEND INBOX (\\Seen) {${raw.length}+}\r\n${raw}`);
    await b.cmd('st', 'UID STORE 1 +FLAGS.SILENT (\\Seen)');
    const added = await a.cmd('n2', 'NOOP');
    assert.deepEqual(esearch(added), ['* ESEARCH (TAG "c2") ADDTO (1 10 4 1)']);
    assert.ok(added.indexOf('* 10 EXISTS') < added.indexOf('* ESEARCH'), added);
  }));

test('PARTIAL with UPDATE: the range of the sorted result now, updates for every match (§4.4)', () =>
  twoSessions(async (a, b) => {
    // the folder by SUBJECT: 0a 0b 0c b bb c f g i z = UIDs 9 10 11 1 13 7 3 12 8 14; positions 3 to 5
    const got = esearch(await a.cmd('p1', 'UID SORT RETURN (PARTIAL 3:5 UPDATE COUNT) (SUBJECT) UTF-8 ALL'));
    assert.deepEqual(got, ['* ESEARCH (TAG "p1") UID PARTIAL (3:5 11,1,13) COUNT 10']);
    // messages that sort first, outside the partial range, are still reported: 00 (UID 15), 000 (UID 16)
    await append(b, '00');
    await append(b, '000');
    assert.deepEqual(esearch(await a.cmd('n1', 'NOOP')), ['* ESEARCH (TAG "p1") UID ADDTO (1 15:16)']);
    assert.deepEqual(esearch(await a.cmd('p2', 'UID SORT RETURN (PARTIAL 1:3) (SUBJECT) UTF-8 ALL')), ['* ESEARCH (TAG "p2") UID PARTIAL (1:3 15:16,9)']);
  }));

test('during IDLE an arrival is reported at once as ADDTO (RFC 5267 §4.3.2: at any time)', () =>
  twoSessions(async (a, b) => {
    // 00 000 0a 0b 0c b bb c f g i z by SUBJECT; "ba" (UID 17) goes between b and bb
    assert.deepEqual(esearch(await a.cmd('i1', 'UID SORT RETURN (COUNT UPDATE) (SUBJECT) UTF-8 ALL')), ['* ESEARCH (TAG "i1") UID COUNT 12']);
    a.write('i2 IDLE\r\n');
    await a.until(/^\+ /m);
    await append(b, 'ba');
    assert.match(await a.until(/\* ESEARCH[^\r]*\r\n/, 30_000), /^\* ESEARCH \(TAG "i1"\) UID ADDTO \(7 17\)\r\n/m);
    a.write('DONE\r\n');
    await a.until(/^i2 OK/m);
  }));

test('bad UPDATE and CANCELUPDATE input is refused and the server goes on', async () => {
  const w = await session();
  try {
    assert.match(await w.cmd('k1', 'SORT RETURN (UPDATE) (DATE) UTF-8 ALL'), /^k1 OK/m);
    // §4.2: a tag already kept by an UPDATE is BAD
    assert.match(await w.cmd('k1', 'SORT RETURN (UPDATE) (DATE) UTF-8 ALL'), /^k1 BAD/m);
    assert.match(await w.cmd('x1', 'CANCELUPDATE "nope"'), /^x1 NO/m);
    assert.match(await w.cmd('x2', 'CANCELUPDATE "k1"'), /^x2 OK/m);
    assert.match(await w.cmd('x3', 'CANCELUPDATE "k1"'), /^x3 NO/m);
    assert.match(await w.cmd('x4', 'CANCELUPDATE'), /^x4 BAD/m);
    for (const [i, bad] of [
      'SORT RETURN (UPDATE (SUBJECT) UTF-8 ALL',
      'SORT RETURN UPDATE (SUBJECT) UTF-8 ALL',
      'SORT RETURN (UPDATE BOGUS) (SUBJECT) UTF-8 ALL',
      'SORT RETURN (PARTIAL UPDATE) (SUBJECT) UTF-8 ALL',
      'SORT RETURN (PARTIAL 1:2 ALL UPDATE) (SUBJECT) UTF-8 ALL',
      'SORT RETURN (UPDATE) () UTF-8 ALL',
      'SORT RETURN (UPDATE) (SUBJECT)',
      'UID SORT RETURN (UPDATE) (SUBJECT) UTF-8 UID 0',
    ].entries())
      assert.match(await w.cmd(`m${i}`, bad), new RegExp(`^m${i} BAD`, 'm'), bad);
    // none of those keeps a context: their tags are unknown to CANCELUPDATE
    assert.match(await w.cmd('x5', 'CANCELUPDATE "m0"'), /^x5 NO/m);
    // a bounded number of kept contexts per session; beyond it (RFC 5267 §4.3.1) an untagged
    // NO [NOUPDATE "tag"], the other return options still answered and the command OK
    let refused = '';
    for (let i = 0; i < 40 && !refused; i++) {
      const text = await w.cmd(`q${i}`, 'UID SORT RETURN (UPDATE COUNT) (SUBJECT) UTF-8 ALL');
      assert.match(text, new RegExp(`^\\* ESEARCH \\(TAG "q${i}"\\) UID COUNT \\d+\r\nq${i} OK`, 'm'));
      if (text.includes('NOUPDATE')) refused = text;
    }
    assert.match(refused, /^\* NO \[NOUPDATE "q(\d+)"\] .*\r\n\* ESEARCH \(TAG "q\1"\)/m);
    const tag = /NOUPDATE "(q\d+)"/.exec(refused)![1]!;
    assert.match(await w.cmd('x6', `CANCELUPDATE "${tag}"`), /^x6 NO/m, 'the refused one is not kept');
    assert.match(await w.cmd('x7', 'CANCELUPDATE "q0"'), /^x7 OK/m);
    assert.doesNotMatch(await w.cmd('r', 'SEARCH RETURN (UPDATE) ALL'), /NOUPDATE/, 'a cancelled context frees its place');
    assert.match(await w.cmd('f', 'FETCH 1 UID'), /^f OK/m);
  } finally {
    w.close();
  }
  const again = await session();
  assert.match(await again.cmd('n', 'NOOP'), /^n OK/m);
  again.close();
});
