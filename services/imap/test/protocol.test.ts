import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandFramer, parseCommand, parseCommandStart, parseSequenceSet, parseDateTime, formatDateTime, ParseError, resolveSequenceSet, type FrameEvent } from '../src/imap-parser.ts';
import { compactSet, encodeValue, toBuffer, atom } from '../src/imap-encoder.ts';
import { parseAddressList, parseMessage, toCrlf } from '@hearth/message';
import { encodeBodyStructure, parseSection, sectionBytes } from '../src/bodystructure.ts';
import { envelope } from '../src/envelope.ts';
import { matches, parseSearch, BadCharsetError } from '../src/search.ts';
import { parseFetch } from '../src/fetch.ts';

const limits = { maxLine: 100, maxLiteral: 50, maxAppendLiteral: 1000, maxCommand: 200 };
const frame = (...chunks: string[]): FrameEvent[] => {
  const f = new CommandFramer(limits);
  return chunks.flatMap((c) => f.push(Buffer.from(c, /[^\x00-\x7f]/.test(c) ? 'utf8' : 'latin1')));
};
const cmd = (s: string) => {
  const ev = frame(s).find((e) => e.type === 'command');
  assert.ok(ev && ev.type === 'command');
  return parseCommand(ev.parts);
};

test('framer: lines, synchronizing and LITERAL+ literals, split across chunks', () => {
  const ev = frame('a1 LOGIN {3}\r\n', 'bob {4+}\r\npa', 'ss\r\na2 NOOP\r\n');
  assert.deepEqual(ev.map((e) => e.type), ['continue', 'command', 'command']);
  const c = parseCommand((ev[1] as { parts: (string | Buffer)[] }).parts);
  assert.equal(c.name, 'LOGIN');
  assert.deepEqual(c.args.map((a) => a.kind === 'string' && a.value.toString()), ['bob', 'pass']);
});

test('framer: a command answered before its synchronizing literal is dropped; the next line is a new command', () => {
  const f = new CommandFramer(limits);
  const [ev] = f.push(Buffer.from('a1 APPEND Drafts (\\Seen) CATENATE (URL "/INBOX/;UID=9" TEXT {5}\r\n', 'latin1'));
  assert.ok(ev && ev.type === 'continue');
  // what came before the literal, the open list closed where the command stops
  const start = parseCommandStart(ev.parts);
  assert.equal(start.name, 'APPEND');
  const cat = start.args[3];
  assert.ok(cat?.kind === 'list');
  assert.deepEqual(
    cat.items.map((t) => (t.kind === 'atom' ? t.value : t.kind === 'string' ? t.value.toString() : 'list')),
    ['URL', '/INBOX/;UID=9', 'TEXT'],
  );
  ev.drop();
  const next = f.push(Buffer.from('a2 NOOP\r\n'));
  assert.equal(next.length, 1);
  assert.ok(next[0]?.type === 'command');
  assert.equal(parseCommand(next[0].parts).name, 'NOOP');
});

test('framer: limits', () => {
  const long = frame(`a1 NOOP ${'x'.repeat(200)}\r\na2 NOOP\r\n`);
  assert.deepEqual(long.map((e) => e.type), ['reject', 'command']);
  const big = frame('a1 LOGIN {51}\r\na2 NOOP\r\n');
  assert.equal(big[0]?.type, 'reject');
  assert.equal(big[0]?.type === 'reject' && big[0].tag, 'a1');
  assert.equal(big[1]?.type, 'command');
  assert.equal(frame('a1 APPEND INBOX {500}\r\n')[0]?.type, 'continue', 'APPEND has its own limit');
  assert.equal(frame('a1 LOGIN {51+}\r\n')[0]?.type, 'fatal', 'an oversized LITERAL+ cannot be skipped');
  assert.deepEqual(frame('a1 X {0}\r\n\r\n').map((e) => e.type), ['continue', 'command']);
  // a line with no end keeps being refused but does not grow memory
  const f = new CommandFramer(limits);
  assert.equal(f.push(Buffer.alloc(500, 'x'))[0]?.type, 'reject');
  assert.deepEqual(f.push(Buffer.alloc(500, 'x')), []);
  assert.deepEqual(f.push(Buffer.from('\r\na NOOP\r\n')).map((e) => e.type), ['command']);
});

test('framer: literals draw on a budget shared by connections', () => {
  let left = 100;
  const budget = { take: (n: number) => (n <= left ? ((left -= n), true) : false), give: (n: number) => void (left += n) };
  const big = { ...limits, maxAppendLiteral: 1000, maxCommand: 2000 };
  const a = new CommandFramer(big, budget);
  const b = new CommandFramer(big, budget);
  const first = a.push(Buffer.from(`x APPEND INBOX {60}\r\n${'m'.repeat(60)}\r\n`));
  assert.deepEqual(first.map((e) => e.type), ['continue', 'command']);
  assert.equal(left, 40, 'held until the command is done');
  const refused = b.push(Buffer.from('y APPEND INBOX {60}\r\n'));
  assert.equal(refused[0]?.type === 'reject' && refused[0].text, 'server busy, try again later');
  budget.give((first[1] as { reserved: number }).reserved);
  assert.equal(b.push(Buffer.from('z APPEND INBOX {60}\r\n'))[0]?.type, 'continue');
  assert.equal(left, 40);
  b.reset();
  assert.equal(left, 100, 'a connection that goes away gives its bytes back');
});

test('tokenizer: atoms, quoted strings, lists, sections, UID commands', () => {
  const c = cmd('A7 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM "TO")]<0.100>)\r\n');
  assert.equal(c.name, 'UID FETCH');
  assert.equal(c.args[0]?.kind === 'atom' && c.args[0].value, '1:*');
  assert.equal(c.args[1]?.kind, 'list');
  const q = cmd('x LOGIN "a \\"b\\" \\\\" pw\r\n');
  assert.equal(q.args[0]?.kind === 'string' && q.args[0].value.toString(), 'a "b" \\');
  for (const bad of ['* NOOP', '+x NOOP', 'a', 'a "unterminated', 'a LOGIN (x', 'a LOGIN x  y', 'a FETCH 1 BODY[', 'a LOGIN "\\x"', 'a 123']) {
    assert.throws(() => cmd(`${bad}\r\n`), ParseError, bad);
  }
  assert.throws(() => cmd('a CREATE caf\u00e9\r\n'), ParseError, '8-bit atom');
  const f = new CommandFramer({ ...limits, maxLine: 100_000, maxCommand: 200_000 });
  const deep = f.push(Buffer.from(`a SEARCH ${'('.repeat(30_000)}ALL${')'.repeat(30_000)}\r\n`))[0]!;
  assert.throws(() => parseCommand((deep as { parts: (string | Buffer)[] }).parts), ParseError, 'deep nesting is a parse error, not a stack overflow');
  assert.throws(() => cmd('a CREATE caf\xe9\r\n'), ParseError, 'latin1 8-bit atom');
});

test('sequence sets are strict', () => {
  assert.deepEqual(parseSequenceSet('1:3,5,*,7:*'), [[1, 3], [5, 5], [-1, -1], [7, -1]]);
  assert.deepEqual(parseSequenceSet('4294967295'), [[4294967295, 4294967295]]);
  for (const bad of ['*:0', '0', '4294967296', '01', '1:', ':1', '1,,2', '', '1:2:3', 'a', '-1', '1 2']) assert.throws(() => parseSequenceSet(bad), ParseError, bad);
  const has = resolveSequenceSet(parseSequenceSet('5:*'), 3);
  assert.deepEqual([1, 2, 3, 4, 5].map(has), [false, false, true, true, true], '5:* with * = 3 means 3:5');
});

test('dates and encoding', () => {
  const d = parseDateTime('02-Jan-2020 03:04:05 +0100');
  assert.equal(d.toISOString(), '2020-01-02T02:04:05.000Z');
  assert.equal(formatDateTime(d), '02-Jan-2020 02:04:05 +0000');
  assert.throws(() => parseDateTime('32-Foo-2020 00:00:00 +0000'), ParseError);
  assert.equal(toBuffer(encodeValue(['a"b', null, 5, atom('\\Seen'), 'caf\u00e9', Buffer.from('x\r\n')])).toString(), '("a\\"b" NIL 5 \\Seen {5}\r\ncafé {3}\r\nx\r\n)');
  assert.equal(compactSet([5, 1, 2, 3, 9]), '1:3,5,9');
});

const MULTI = Buffer.from(
  [
    'From: "Doe, Jane" <jane@example.test>',
    'To: undisclosed-recipients:;',
    'Cc: a@x.test, B <b@y.test>',
    'Subject: =?UTF-8?B?SMOpbGxv?=',
    'Content-Type: multipart/mixed; boundary="XX"',
    '',
    'preamble',
    '--XX',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    'caf=C3=A9 au lait',
    '--XX',
    'Content-Type: message/rfc822',
    'Content-Disposition: attachment; filename="m.eml"',
    '',
    'Subject: inner',
    '',
    'inner body',
    '--XX--',
    '',
  ].join('\r\n'),
);

test('bare LF becomes CRLF; CRLF input is returned as is', () => {
  const crlf = Buffer.from('a\r\nb\r\n');
  assert.equal(toCrlf(crlf), crlf);
  assert.equal(toCrlf(Buffer.from('\na\nb\r\nc')).toString(), '\r\na\r\nb\r\nc');
});

test('MIME tree, BODYSTRUCTURE, sections', () => {
  const root = parseMessage(MULTI);
  assert.equal(root.parts.length, 2);
  const bs = toBuffer(encodeBodyStructure(MULTI, root, true)).toString();
  assert.match(bs, /^\(\("text" "plain" \("charset" "utf-8"\) NIL NIL "QUOTED-PRINTABLE" 17 1 NIL NIL NIL NIL\)\("message" "rfc822" NIL NIL NIL "7BIT" \d+ \(NIL "inner" /);
  assert.match(bs, /\("attachment" \("filename" "m.eml"\)\)/);
  assert.match(bs, / "mixed" \("boundary" "XX"\) NIL NIL NIL\)$/);
  assert.equal(sectionBytes(MULTI, root, parseSection('1')).toString(), 'caf=C3=A9 au lait');
  assert.equal(sectionBytes(MULTI, root, parseSection('2.HEADER')).toString(), 'Subject: inner\r\n\r\n');
  assert.equal(sectionBytes(MULTI, root, parseSection('2.1')).toString(), 'inner body');
  assert.equal(sectionBytes(MULTI, root, parseSection('1.MIME')).toString(), 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n');
  assert.equal(sectionBytes(MULTI, root, parseSection('HEADER.FIELDS (SUBJECT cc)')).toString(), 'Cc: a@x.test, B <b@y.test>\r\nSubject: =?UTF-8?B?SMOpbGxv?=\r\n\r\n');
  assert.equal(sectionBytes(MULTI, root, parseSection('9')).length, 0);
  for (const bad of ['0', 'HEADER.FIELDS', 'MIME', '1.', 'FOO', '1.2.HEADER.FIELDS ()']) assert.throws(() => parseSection(bad), Error, bad);
  const env = toBuffer(encodeValue(envelope(root))).toString();
  assert.match(env, /\(\("Doe, Jane" NIL "jane" "example.test"\)\)/);
  assert.match(env, /\(\(NIL NIL "undisclosed-recipients" NIL\)\(NIL NIL NIL NIL\)\) \(\(NIL NIL "a" "x.test"\)\("B" NIL "b" "y.test"\)\)/);
  assert.deepEqual(parseAddressList('a@x.test, "B" <b@y.test>').map((a) => a.host), ['x.test', 'y.test']);
});

test('SEARCH parsing and matching', () => {
  const tokens = (s: string) => cmd(`a SEARCH ${s}\r\n`).args;
  const c = { seq: 2, uid: 7, flags: ['\\Seen'], modseq: 5, size: MULTI.length, internalDate: new Date('2026-03-02T10:00:00Z'), raw: MULTI, headers: null, maxSeq: 3, maxUid: 9 };
  const yes = ['ALL', 'SEEN', 'UNFLAGGED', 'SUBJECT "héllo"', 'CHARSET UTF-8 BODY "café"', 'FROM jane', 'HEADER To undisclosed', 'OR DELETED UID 7', 'NOT 1', '2:*', 'LARGER 10', 'SINCE 1-Mar-2026', 'ON 2-Mar-2026', 'MODSEQ 5', '(SEEN UID 1:7)', 'TEXT inner', 'KEYWORD \\Seen'];
  for (const s of yes) assert.equal(matches(parseSearch(tokens(s)), c), true, s);
  const no = ['UNSEEN', 'NEW', 'SUBJECT nothere', 'BEFORE 1-Jan-2020', 'UID 1:6', 'SMALLER 10', 'MODSEQ 6', 'NOT ALL', '3'];
  for (const s of no) assert.equal(matches(parseSearch(tokens(s)), c), false, s);
  assert.equal(matches(parseSearch(tokens('OLD')), c), true, 'not recent in this session');
  assert.equal(matches(parseSearch(tokens('RECENT')), c), false);
  const fresh = { ...c, flags: ['\\Recent'] };
  for (const [key, hit] of [['RECENT', true], ['NEW', true], ['OLD', false], ['NOT NEW', false]] as const) assert.equal(matches(parseSearch(tokens(key)), fresh), hit, `${key} on a recent message`);
  assert.equal(matches(parseSearch(tokens('NEW')), { ...c, flags: ['\\Recent', '\\Seen'] }), false, 'NEW is RECENT UNSEEN');
  assert.throws(() => parseSearch(tokens('CHARSET KOI8-R ALL')), BadCharsetError);
  for (const bad of ['FOO', 'SUBJECT', 'OR SEEN', 'UID *:0', 'SINCE yesterday', 'LARGER x']) assert.throws(() => parseSearch(tokens(bad)), ParseError, bad);
});

test('FETCH items', () => {
  const items = (s: string) => parseFetch(cmd(`a FETCH 1 ${s}\r\n`).args.slice(1));
  assert.deepEqual(items('FAST').items.map((i) => i.k), ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE']);
  const r = items('(UID BODY.PEEK[1.MIME]<0.10> RFC822) (CHANGEDSINCE 4)');
  assert.equal(r.changedSince, 4);
  assert.deepEqual(r.items[1], { k: 'SECTION', label: 'BODY[1.MIME]', peek: true, section: { path: [1], specifier: 'MIME', fields: [] }, partial: [0, 10] });
  for (const bad of ['BOGUS', '()', 'BODY[1]<5>', '(FLAGS) (FOO 1)']) assert.throws(() => items(bad), ParseError, bad);
});
