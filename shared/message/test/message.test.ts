import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeWords, headerEnd, headerValues, mailboxes, parseHeaderDate, parseMessage, removeHeaderFields } from '@hearth/message';

const raw = (s: string): Buffer => Buffer.from(s, 'latin1');

test('header fields: "From :" is the From field, folded values are unfolded, a line without a colon names nothing', () => {
  const m = raw('From : Bob <bob@b.test>\r\nSubject: one\r\n two\r\nnot a field\r\nX: y\r\n\r\nbody\r\n');
  assert.deepEqual(headerValues(m, 'from'), ['Bob <bob@b.test>']);
  assert.deepEqual(headerValues(m, 'SUBJECT'), ['one two']);
  assert.deepEqual(headerValues(m, 'x'), ['y']);
  assert.equal(m.subarray(headerEnd(m)).toString(), 'body\r\n');
  assert.equal(headerEnd(raw('\r\nbody')), 2);
  assert.equal(headerEnd(raw('A: b\r\n')), 6);
});

test('removeHeaderFields drops whole folded fields and keeps every other byte', () => {
  const m = raw('A: 1\r\nAuthentication-Results: mx;\r\n spf=pass\r\nB: 2\r\n\r\nAuthentication-Results: in the body\r\n');
  const out = removeHeaderFields(m, (name) => name === 'authentication-results');
  assert.equal(out.toString('latin1'), 'A: 1\r\nB: 2\r\n\r\nAuthentication-Results: in the body\r\n');
  assert.equal(removeHeaderFields(m, () => false), m);
});

test('mailboxes: groups flattened, addresses lower-cased, RFC 2047 and UTF-8 names decoded', () => {
  assert.deepEqual(mailboxes('=?utf-8?q?J=C3=BCrgen?= <Juergen@Example.TEST>, team: a@b.test, "C, D" <c@d.test>;'), [
    { address: 'juergen@example.test', name: 'Jürgen' },
    { address: 'a@b.test', name: '' },
    { address: 'c@d.test', name: 'C, D' },
  ]);
  assert.deepEqual(mailboxes(Buffer.from('Zoë <z@x.test>', 'utf8').toString('latin1')), [{ address: 'z@x.test', name: 'Zoë' }]);
  assert.deepEqual(mailboxes('undisclosed-recipients:;'), []);
});

test('decodeWords: adjacent words join, unknown charsets and broken words stay as written', () => {
  assert.equal(decodeWords('=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?= c'), 'ab c');
  assert.equal(decodeWords('=?x-unknown?Q?a?='), '=?x-unknown?Q?a?=');
});

test('parseMessage keeps byte offsets of every part', () => {
  const m = raw('Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhello\r\n--x--\r\n');
  const tree = parseMessage(m);
  assert.equal(tree.parts.length, 1);
  const p = tree.parts[0]!;
  assert.equal(m.subarray(p.bodyStart, p.end).toString(), 'hello');
  assert.equal(p.headers[0]!.name, 'content-type');
});

test('RFC 5322 dates: the instant with its zone (obs-zone names too) and the calendar day as written', () => {
  // RFC 5322 Appendix A.1.1 and A.5
  assert.deepEqual(parseHeaderDate('Fri, 21 Nov 1997 09:55:06 -0600'), { day: Date.UTC(1997, 10, 21), time: Date.UTC(1997, 10, 21, 15, 55, 6) });
  assert.equal(parseHeaderDate('Thu,\r\n 13\r\n Feb\r\n 1969\r\n 23:32\r\n -0330 (Newfoundland Time)')?.time, Date.UTC(1969, 1, 14, 3, 2));
  assert.equal(parseHeaderDate('21 Nov 97 09:55:06 EST')?.time, Date.UTC(1997, 10, 21, 14, 55, 6));
  assert.deepEqual(parseHeaderDate('25 Mar 2007'), { day: Date.UTC(2007, 2, 25), time: NaN });
  assert.equal(parseHeaderDate('not a date'), null);
});
