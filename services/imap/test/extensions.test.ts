import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import { loadTls } from '@hearth/tls';
import { run, stack, type Stack } from './helpers.ts';
import { Wire } from './wire.ts';

/**
 * MULTIAPPEND (RFC 3502), CATENATE (RFC 4469), BINARY (RFC 3516) and UTF8=ACCEPT (RFC 6855)
 * over raw sockets, imaplib and imapflow; expected values are the RFCs' examples and rules.
 */

let s: Stack;
before(async () => {
  s = await stack({ quotaBytes: 200_000 });
});
after(() => s.close());

async function login(): Promise<Wire> {
  const w = await Wire.connect(s.imap.ports.imap);
  await w.until(/^\* OK/m);
  assert.match(await w.cmd('L', `LOGIN ${s.user.username} ${s.user.password}`), /^L OK/m);
  return w;
}

/** Sends a command whose `{n}` literals wait for the server's continuation, as a client without LITERAL+ must. */
async function withLiterals(w: Wire, tag: string, pieces: (string | Buffer)[]): Promise<string> {
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i]!;
    if (typeof p === 'string' && /\{\d+\}$/.test(p) && i + 1 < pieces.length) {
      w.write(Buffer.from(`${p}\r\n`, 'latin1'));
      await w.until(/^\+ .*\r\n/m);
    } else w.write(typeof p === 'string' ? Buffer.from(p, 'latin1') : p);
  }
  w.write('\r\n');
  return w.until(new RegExp(`(^|\\r\\n)${tag} (OK|NO|BAD)[^\\r\\n]*\\r\\n`));
}

const crlf = (lines: string[]): string => lines.map((l) => `${l}\r\n`).join('');

// RFC 3502 §6.3.11, the example's two messages
const FRED = crlf([
  'Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)',
  'From: Fred Foobar <foobar@Blurdybloop.example.COM>',
  'Subject: afternoon meeting',
  'To: mooch@owatagu.siam.edu',
  'Message-Id: <B27397-0100000@Blurdybloop.example.COM>',
  'MIME-Version: 1.0',
  'Content-Type: TEXT/PLAIN; CHARSET=US-ASCII',
  '',
  'Hello Joe, do you think we can meet at 3:30 tomorrow?',
]);
const JOE = crlf([
  'Date: Mon, 7 Feb 1994 22:43:04 -0800 (PST)',
  'From: Joe Mooch <mooch@OWaTaGu.siam.EDU>',
  'Subject: Re: afternoon meeting',
  'To: foobar@blurdybloop.example.com',
  'Message-Id: <a0434793874930@OWaTaGu.siam.EDU>',
  'MIME-Version: 1.0',
  'Content-Type: TEXT/PLAIN; CHARSET=US-ASCII',
  '',
  '3:30 is fine with me.',
]);

test('RFC 3502: MULTIAPPEND adds both messages with their own flags and dates, one APPENDUID set', async () => {
  const w = await login();
  assert.match(await w.cmd('c', 'CAPABILITY'), /^\* CAPABILITY .*\bMULTIAPPEND\b/m);
  assert.match(await w.cmd('a', 'CREATE saved-messages'), /^a OK/m);
  const r = await withLiterals(w, 'A003', ['A003 APPEND saved-messages (\\Seen) {' + FRED.length + '}', FRED, ' (\\Seen) " 7-Feb-1994 22:43:04 -0800" {' + JOE.length + '}', JOE]);
  const m = /^A003 OK \[APPENDUID (\d+) (\S+)\]/m.exec(r);
  assert.ok(m, r);
  assert.equal(m[2], '1:2');
  assert.match(await w.cmd('s', 'SELECT saved-messages'), /^\* 2 EXISTS/m);
  const f = await w.cmd('f', 'FETCH 1:2 (FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])');
  assert.ok(f.includes(`* 1 FETCH (FLAGS (\\Seen \\Recent) INTERNALDATE `), f);
  assert.ok(f.includes(` RFC822.SIZE ${FRED.length} BODY[HEADER.FIELDS (SUBJECT)] {30}\r\nSubject: afternoon meeting\r\n\r\n)`), f);
  // the second message's date-time, " 7-Feb-1994 22:43:04 -0800", is 8 Feb 06:43:04 UTC
  assert.ok(f.includes(`* 2 FETCH (FLAGS (\\Seen \\Recent) INTERNALDATE "08-Feb-1994 06:43:04 +0000" RFC822.SIZE ${JOE.length} `), f);
  // RFC 3502: "A004 NO [TRYCREATE]" for a mailbox that does not exist
  assert.match(await withLiterals(w, 'A004', ['A004 APPEND bogusname (\\Flagged) {' + FRED.length + '}', FRED]), /^A004 NO \[TRYCREATE\]/m);
  w.close();
});

test('RFC 3502 §6.3.11: when one message cannot be appended, none is (the quota fits each, not both)', async () => {
  const w = await login();
  assert.match(await w.cmd('a', 'CREATE test'), /^a OK/m);
  // The stack's quota is 200,000 bytes and saved-messages holds 624: each of these fits, both do not.
  const big = crlf(['Subject: hmm...', '', ...Array<string>(110).fill('x'.repeat(998))]);
  const r = await withLiterals(w, 'A005', ['A005 APPEND test (\\Flagged) {' + big.length + '}', big, ' {' + big.length + '}', big]);
  assert.match(r, /^A005 NO \[OVERQUOTA\]/m);
  assert.match(await w.cmd('b', 'STATUS test (MESSAGES UIDNEXT)'), /^\* STATUS "?test"? \(MESSAGES 0 UIDNEXT 1\)/m);
  // a bad second message (its flag list) refuses the whole command before anything is added
  assert.match(await withLiterals(w, 'A006', ['A006 APPEND test {' + FRED.length + '}', FRED, ' (\\Bogus) {' + JOE.length + '}', JOE]), /^A006 BAD/m);
  assert.match(await w.cmd('c', 'STATUS test (MESSAGES)'), /^\* STATUS "?test"? \(MESSAGES 0\)/m);
  w.close();
});

// RFC 3516 §4 style message: a text part and a base64 image part with a NUL in it, a quoted-printable one, an unknown encoding
const IMAGE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0xff]);
const MIXED = crlf([
  'From: Fred Foobar <foobar@example.test>',
  'Subject: binary parts',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="b1"',
  '',
  '--b1',
  'Content-Type: text/plain; charset=iso-8859-1',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  'Gr=FC=DFe, caf=E9 =',
  'soft break',
  '--b1',
  'Content-Type: image/png',
  'Content-Transfer-Encoding: base64',
  '',
  IMAGE.toString('base64'),
  '--b1',
  'Content-Type: application/octet-stream',
  'Content-Transfer-Encoding: x-uuencode',
  '',
  'begin 644 x',
  '--b1--',
]);

test('RFC 3516: BINARY[part] is the decoded content, BINARY.SIZE its length, literal8 when it holds NUL, \\Seen like BODY[]', async () => {
  const w = await login();
  assert.match(await w.cmd('c', 'CAPABILITY'), /^\* CAPABILITY .*\bBINARY\b/m);
  assert.match(await w.cmd('a', 'CREATE bin'), /^a OK/m);
  assert.match(await withLiterals(w, 'b', ['b APPEND bin {' + MIXED.length + '}', MIXED]), /^b OK/m);
  assert.match(await w.cmd('s', 'SELECT bin'), /^s OK/m);
  // quoted-printable: =FC=DF → the two latin1 bytes, a soft line break joins the lines
  const qp = await w.cmd('f1', 'FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])');
  const text = Buffer.from('Grüße, café soft break', 'latin1');
  assert.ok(qp.includes(`BINARY[1] {${text.length}}\r\n${text.toString('latin1')} BINARY.SIZE[1] ${text.length})`), qp);
  // base64 with a NUL: a literal8, "~{13}"
  const png = await w.cmd('f2', 'FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2])');
  assert.ok(png.includes(`BINARY[2] ~{${IMAGE.length}}\r\n${IMAGE.toString('latin1')} BINARY.SIZE[2] ${IMAGE.length})`), png);
  // a partial: <origin> in the response label, as for BODY[]
  assert.match(await w.cmd('f3', 'FETCH 1 (BINARY.PEEK[2]<1.3>)'), /BINARY\[2\]<1> \{3\}\r\nPNG\)/);
  // RFC 3516 §4.3: an encoding the server cannot decode is NO [UNKNOWN-CTE]
  assert.match(await w.cmd('f4', 'FETCH 1 (BINARY.PEEK[3])'), /^f4 NO \[UNKNOWN-CTE\]/m);
  // section-binary is part numbers only
  assert.match(await w.cmd('f5', 'FETCH 1 (BINARY[1.TEXT])'), /^f5 BAD/m);
  assert.doesNotMatch(await w.cmd('f6', 'FETCH 1 FLAGS'), /\\Seen/);
  // BINARY (not PEEK) sets \Seen and reports it
  assert.match(await w.cmd('f7', 'FETCH 1 BINARY[1]'), /FLAGS \(\\Seen( \\Recent)?\)/);
  w.close();
});

test('RFC 3516 §4.4: APPEND with a literal8 stores binary content as sent', async () => {
  const w = await login();
  // NULs and 8-bit bytes, stored as they are (no bare LF: see the next test)
  const BLOB = Buffer.from([0x00, 0x01, 0xff, 0x0d, 0x0a, 0x00, 0x80]);
  const msg = Buffer.concat([Buffer.from('Subject: nul\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n'), BLOB, Buffer.from('\r\n')]);
  const r = await withLiterals(w, 'a', ['a APPEND bin ~{' + msg.length + '}', msg]);
  assert.match(r, /^a OK \[APPENDUID \d+ 2\]/m);
  assert.match(await w.cmd('s', 'EXAMINE bin'), /^\* 2 EXISTS/m);
  const f = await w.cmd('f', 'UID FETCH 2 (BINARY.PEEK[1] BINARY.SIZE[])');
  assert.ok(f.includes(`BINARY[1] ~{${BLOB.length + 2}}\r\n${BLOB.toString('latin1')}\r\n BINARY.SIZE[] ${msg.length})`), f);
  w.close();
});

test('RFC 3516 §4.2: binary content with bare LFs comes back as sent; a text part decoded to bare LFs comes back with CRLF', async () => {
  const w = await login();
  // a binary part whose octets hold bare LF, bare CR, CRLF and NUL, after a text part encoded in base64 with LF line ends
  const BLOB = Buffer.from([0x0a, 0x41, 0x0a, 0x0d, 0x42, 0x0d, 0x0a, 0x00, 0x0a]);
  const lines = 'one\ntwo\n';
  const head = 'Subject: bare LF\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b2"\r\n\r\n';
  const msg = Buffer.concat([
    Buffer.from(`${head}--b2\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from(lines).toString('base64')}\r\n`),
    Buffer.from('--b2\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n'),
    BLOB,
    Buffer.from('\r\n--b2--\r\n'),
  ]);
  const r = await withLiterals(w, 'a', ['a APPEND bin ~{' + msg.length + '}', msg]);
  const uid = /^a OK \[APPENDUID \d+ (\d+)\]/m.exec(r)?.[1];
  assert.ok(uid, r);
  assert.match(await w.cmd('s', 'EXAMINE bin'), /^s OK/m);
  // "the content of the specified section after removing any Content-Transfer-Encoding-related encoding": the octets sent
  const bin = await w.cmd('f', `UID FETCH ${uid} (BINARY.PEEK[2] BINARY.SIZE[2])`);
  assert.ok(bin.includes(`BINARY[2] ~{${BLOB.length}}\r\n${BLOB.toString('latin1')} BINARY.SIZE[2] ${BLOB.length})`), JSON.stringify(bin));
  // "servers MUST ensure that textual line-oriented sections are always transmitted using the IMAP4 CRLF line termination"
  const text = await w.cmd('t', `UID FETCH ${uid} (BINARY.PEEK[1] BINARY.SIZE[1])`);
  assert.ok(text.includes('BINARY[1] {10}\r\none\r\ntwo\r\n BINARY.SIZE[1] 10)'), JSON.stringify(text));
  w.close();
});

test('imaplib and imapflow read BINARY parts', async () => {
  const py = await run('python3', [
    '-c',
    `
import imaplib
M = imaplib.IMAP4('127.0.0.1', ${s.imap.ports.imap})
M.login(${JSON.stringify(s.user.username)}, ${JSON.stringify(s.user.password)})
M.select('bin', readonly=True)
typ, data = M.fetch('1', '(BINARY.PEEK[2])')
assert typ == 'OK', (typ, data)
print(data[0][1].hex())
M.logout()
`,
  ]);
  assert.equal(py.code, 0, py.stderr);
  assert.equal(py.stdout.trim(), IMAGE.toString('hex'));
  const { cert: ca } = await loadTls(s.env.config);
  const client = new ImapFlow({ host: '127.0.0.1', port: s.imap.ports.imaps, secure: true, tls: { ca }, servername: 'localhost', auth: { user: s.user.username, pass: s.user.password }, logger: false });
  await client.connect();
  try {
    await client.mailboxOpen('bin', { readOnly: true });
    // imapflow downloads a part with BINARY.PEEK when the server offers BINARY
    const { content } = await client.download('1', '2');
    const chunks: Buffer[] = [];
    for await (const c of content) chunks.push(c as Buffer);
    assert.deepEqual(Buffer.concat(chunks), IMAGE);
  } finally {
    await client.logout();
  }
});

test('RFC 4469: CATENATE builds a message from TEXT literals and URLs to messages and sections of this account', async () => {
  const w = await login();
  assert.match(await w.cmd('c', 'CAPABILITY'), /^\* CAPABILITY .*\bCATENATE\b/m);
  const status = await w.cmd('v', 'STATUS bin (UIDVALIDITY)');
  const uidValidity = /UIDVALIDITY (\d+)/.exec(status)![1]!;
  const header = MIXED.slice(0, MIXED.indexOf('\r\n\r\n') + 4);
  const part1Mime = 'Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n';
  const part1 = 'Gr=FC=DFe, caf=E9 =\r\nsoft break';
  const text = 'Added text\r\n';
  const r = await withLiterals(w, 'A003', [
    `A003 APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE (URL "/bin;UIDVALIDITY=${uidValidity}/;UID=1/;section=HEADER" TEXT {${text.length}}`,
    text,
    ` URL "/bin;UIDVALIDITY=${uidValidity}/;UID=1/;section=1.MIME" URL "/bin/;UID=1/;SECTION=1" URL "/bin/;UID=1/;SECTION=1/;PARTIAL=0.4")`,
  ]);
  assert.match(r, /^A003 OK \[APPENDUID \d+ \d+\]/m);
  const uid = /APPENDUID \d+ (\d+)/.exec(r)![1]!;
  assert.match(await w.cmd('s', 'EXAMINE Drafts'), /^s OK/m);
  const f = await w.cmd('f', `UID FETCH ${uid} (FLAGS BODY.PEEK[])`);
  const expected = header + text + part1Mime + part1 + 'Gr=F';
  assert.ok(f.includes(`BODY[] {${expected.length}}\r\n${expected})`), f);
  assert.match(f, /FLAGS \(\\Seen \\Draft \$MDNSent\)|FLAGS \(\$MDNSent \\Seen \\Draft\)|FLAGS \([^)]*\$MDNSent[^)]*\)/);
  // a URL to no message, a stale UIDVALIDITY, another account's mailbox: NO [BADURL url], nothing added
  const before = await w.cmd('n', 'STATUS Drafts (MESSAGES)');
  assert.match(await w.cmd('b1', 'APPEND Drafts CATENATE (URL "/bin/;UID=99")'), /^b1 NO \[BADURL \/bin\/;UID=99\]/m);
  assert.match(await w.cmd('b2', 'APPEND Drafts CATENATE (URL "/bin;UIDVALIDITY=1/;UID=1")'), /^b2 NO \[BADURL /m);
  assert.match(await w.cmd('b3', `APPEND Drafts CATENATE (URL "imap://${s.app.username}@localhost/INBOX/;UID=1")`), /^b3 NO \[BADURL /m);
  assert.equal(await w.cmd('n', 'STATUS Drafts (MESSAGES)'), before);
  w.close();
});

test('RFC 4469 §5: a bad URL before a synchronizing TEXT literal is answered NO [BADURL] in place of the continuation', async () => {
  const w = await login();
  const before = await w.cmd('n', 'STATUS Drafts (MESSAGES)');
  // RFC 3501 §2.2.1: a tagged response instead of the "+" rejects the command; the client sends no more of it
  w.write('c1 APPEND Drafts CATENATE (URL "/bin/;UID=99" TEXT {5}\r\n');
  const r = await w.until(/(^|\r\n)(\+ |c1 (OK|NO|BAD))[^\r\n]*\r\n/);
  assert.match(r, /^c1 NO \[BADURL \/bin\/;UID=99\]/m);
  assert.doesNotMatch(r, /^\+ /m);
  // the connection reads the next command as a command
  assert.match(await w.cmd('c2', 'NOOP'), /^c2 OK/m);
  // a good URL before the literal still gets the continuation (withLiterals waits for it), and a bad one after it fails the command at its end
  const good = await withLiterals(w, 'c3', ['c3 APPEND Drafts CATENATE (URL "/bin/;UID=1/;SECTION=HEADER" TEXT {5}', 'hello', ' URL "/bin/;UID=98")']);
  assert.match(good, /^c3 NO \[BADURL \/bin\/;UID=98\]/m);
  assert.equal(await w.cmd('n', 'STATUS Drafts (MESSAGES)'), before);
  w.close();
});

test('RFC 6855: after ENABLE UTF8=ACCEPT mailbox names are UTF-8 both ways (stored as modified UTF-7), APPEND UTF8 (...)', async () => {
  const w = await login();
  assert.match(await w.cmd('c', 'CAPABILITY'), /^\* CAPABILITY .*\bUTF8=ACCEPT\b/m);
  assert.match(await w.cmd('e', 'ENABLE UTF8=ACCEPT'), /^\* ENABLED UTF8=ACCEPT\r\ne OK/m);
  const name = Buffer.from('Entwürfe', 'utf8');
  assert.match(await w.cmd('a', Buffer.concat([Buffer.from('CREATE "'), name, Buffer.from('"')])), /^a OK/m);
  // Dovecot's Maildir++ layout keeps the modified UTF-7 name (RFC 3501 §5.1.3): ü is &APw-
  const root = s.store.mailboxPath(s.user.email);
  assert.ok(fs.existsSync(path.join(root, '.Entw&APw-rfe')), fs.readdirSync(root).join(' '));
  const list = await w.cmd('l', Buffer.concat([Buffer.from('LIST "" "Entw'), Buffer.from('ü', 'utf8'), Buffer.from('*"')]));
  assert.ok(Buffer.from(list, 'latin1').toString('utf8').match(/^\* LIST \([^)]*\) "\." "Entwürfe"\r\n/m), list);
  const msg = Buffer.from('Subject: Grüße\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nÄpfel\r\n', 'utf8');
  const r = await withLiterals(w, 'p', [Buffer.concat([Buffer.from('p APPEND "'), name, Buffer.from(`" UTF8 (~{${msg.length}}`)]).toString('latin1'), msg, ')']);
  assert.match(r, /^p OK \[APPENDUID/m);
  w.close();
  // a client that did not enable it sees the modified UTF-7 name
  const other = await login();
  assert.match(await other.cmd('l', 'LIST "" Entw*'), /^\* LIST \([^)]*\) "\." "?Entw&APw-rfe"?\r\n/m);
  assert.match(await other.cmd('s', 'STATUS Entw&APw-rfe (MESSAGES)'), /MESSAGES 1\)/);
  // UTF8 (...) without the ENABLE is a syntax error (RFC 6855 §4)
  assert.match(await other.cmd('u', 'APPEND INBOX UTF8 ({3+}\r\nx\r\n)'), /^u BAD/m);
  other.close();
});

test('imaplib with UTF8=ACCEPT enabled creates, lists, selects and copies into a UTF-8 name', async () => {
  // (imaplib's own APPEND in UTF-8 mode puts "UTF8 (" inside the literal, a Python bug; the message is copied in instead)
  const py = await run('python3', [
    '-c',
    `
import imaplib
M = imaplib.IMAP4('127.0.0.1', ${s.imap.ports.imap})
M.login(${JSON.stringify(s.user.username)}, ${JSON.stringify(s.user.password)})
typ, data = M.enable('UTF8=ACCEPT')
assert typ == 'OK' and M.untagged_responses.get('ENABLED') == [b'UTF8=ACCEPT'], (typ, M.untagged_responses)
typ, data = M.create('"Привет"')
assert typ == 'OK', (typ, data)
M.select('saved-messages', readonly=True)
typ, data = M.copy('1', '"Привет"')
assert typ == 'OK', (typ, data)
typ, data = M.list('""', '"Прив*"')
print(data[0].decode('utf-8'))
typ, data = M.select('"Привет"')
assert typ == 'OK', (typ, data)
typ, data = M.fetch('1', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
print(data[0][1].decode('utf-8').strip())
M.logout()
`,
  ]);
  assert.equal(py.code, 0, py.stderr);
  assert.deepEqual(py.stdout.trim().split('\n'), ['(\\HasNoChildren) "." "Привет"', 'Subject: afternoon meeting']);
});

test('RFC 4978: after COMPRESS DEFLATE both directions are raw DEFLATE (imaplib over a zlib-wrapped socket)', async () => {
  const body = 'All work and no play makes Jack a dull boy.\r\n'.repeat(2000);
  const w = await login();
  assert.match(await withLiterals(w, 'a', [`a APPEND INBOX {${body.length + 21}}`, `Subject: repeated\r\n\r\n${body}`]), /^a OK/m);
  w.close();
  const py = await run('python3', [
    '-c',
    `
import imaplib, zlib
imaplib.Commands['COMPRESS'] = ('AUTH', 'SELECTED')
class Deflated(imaplib.IMAP4):
    raw_in = 0
    def compress(self):
        typ, data = self._simple_command('COMPRESS', 'DEFLATE')
        assert typ == 'OK', (typ, data)
        self.zout = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.zin = zlib.decompressobj(-15)
        self.inbuf = b''
    def send(self, data):
        if hasattr(self, 'zout'):
            data = self.zout.compress(data) + self.zout.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)
    def fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError('closed')
        self.raw_in += len(chunk)
        self.inbuf += self.zin.decompress(chunk)
    def read(self, size):
        if not hasattr(self, 'zin'):
            return super().read(size)
        while len(self.inbuf) < size:
            self.fill()
        out, self.inbuf = self.inbuf[:size], self.inbuf[size:]
        return out
    def readline(self):
        if not hasattr(self, 'zin'):
            return super().readline()
        while b'\\n' not in self.inbuf:
            self.fill()
        i = self.inbuf.index(b'\\n') + 1
        out, self.inbuf = self.inbuf[:i], self.inbuf[i:]
        return out
M = Deflated('127.0.0.1', ${s.imap.ports.imap})
M.login(${JSON.stringify(s.user.username)}, ${JSON.stringify(s.user.password)})
typ, data = M.capability()
assert b'COMPRESS=DEFLATE' in data[0].split(), data
M.compress()
typ, data = M._simple_command('COMPRESS', 'DEFLATE')
print(typ, 'COMPRESSIONACTIVE' in M.untagged_responses, data)
M.select('INBOX', readonly=True)
typ, data = M.search(None, 'SUBJECT', 'repeated')
uid = data[0].split()[-1]
typ, data = M.fetch(uid, '(BODY.PEEK[TEXT])')
text = data[0][1]
print(len(text), text == ${JSON.stringify(body)}.encode(), M.raw_in < len(text) // 10)
M.logout()
`,
  ]);
  assert.equal(py.code, 0, py.stderr);
  // a second COMPRESS: NO [COMPRESSIONACTIVE]; the body arrives whole, in far fewer bytes than its length
  assert.deepEqual(py.stdout.trim().split('\n'), ["NO True [b'[COMPRESSIONACTIVE] Compression is already on']", `${body.length} True True`]);
});

test('imapflow negotiates COMPRESS=DEFLATE by itself and works through it', async () => {
  const { cert: ca } = await loadTls(s.env.config);
  const client = new ImapFlow({ host: '127.0.0.1', port: s.imap.ports.imaps, secure: true, tls: { ca }, servername: 'localhost', auth: { user: s.user.username, pass: s.user.password }, logger: false });
  await client.connect();
  try {
    assert.ok((client as unknown as { _deflate: unknown })._deflate, 'imapflow did not turn compression on');
    const lock = await client.getMailboxLock('saved-messages');
    try {
      const msgs = [];
      for await (const m of client.fetch('1:*', { envelope: true, flags: true })) msgs.push(m.envelope?.subject);
      assert.deepEqual(msgs, ['afternoon meeting', 'Re: afternoon meeting']);
    } finally {
      lock.release();
    }
  } finally {
    await client.logout();
  }
});

test('RFC 7162 QRESYNC: VANISHED instead of EXPUNGE, SELECT (QRESYNC ...) and UID FETCH (CHANGEDSINCE m VANISHED) report expunges since a MODSEQ', async () => {
  const a = await login();
  assert.match(await a.cmd('c', 'CAPABILITY'), /^\* CAPABILITY .*\bQRESYNC\b/m);
  assert.match(await a.cmd('e', 'ENABLE QRESYNC'), /^\* ENABLED QRESYNC\r\n/m);
  assert.match(await a.cmd('n', 'CREATE qr'), /^n OK/m);
  const five = Array.from({ length: 5 }, (_, i) => crlf([`Subject: m${i + 1}`, '', 'x']));
  const pieces: string[] = [];
  five.forEach((m, i) => pieces.push(`${i ? ' ' : 'p APPEND qr '}{${m.length}}`, m));
  assert.match(await withLiterals(a, 'p', pieces), /^p OK \[APPENDUID \d+ 1:5\]/m);
  const sel = await a.cmd('s', 'SELECT qr');
  const uidValidity = /UIDVALIDITY (\d+)/.exec(sel)![1]!;
  const modseq = Number(/HIGHESTMODSEQ (\d+)/.exec(sel)![1]!);
  // another session flags 2 and expunges 3 and 4
  const b = await login();
  assert.match(await b.cmd('s', 'SELECT qr'), /^s OK/m);
  assert.match(await b.cmd('f', 'STORE 2 +FLAGS.SILENT (\\Flagged)'), /^f OK/m);
  assert.match(await b.cmd('d', 'STORE 3:4 +FLAGS.SILENT (\\Deleted)'), /^d OK/m);
  assert.match(await b.cmd('x', 'EXPUNGE'), /^\* 4 EXPUNGE\r\n\* 3 EXPUNGE\r\n/m);
  b.close();
  // RFC 7162 §3.2.10: once QRESYNC is enabled, "* VANISHED 3:4" and no EXPUNGE
  const noop = await a.cmd('o', 'NOOP');
  assert.match(noop, /^\* VANISHED 3:4\r\n/m);
  assert.doesNotMatch(noop, /EXPUNGE/);
  // §3.2.4: unsolicited FETCH responses carry the UID once QRESYNC is enabled
  assert.match(noop, /^\* 2 FETCH \(FLAGS \(\\Flagged( \\Recent)?\) UID 2 MODSEQ \(\d+\)\)/m);
  a.close();
  // a resyncing client: §3.2.5.2's example shape, VANISHED (EARLIER) first, then the changed flags with UIDs
  const c = await login();
  assert.match(await c.cmd('e', 'ENABLE QRESYNC'), /^e OK/m);
  const r = await c.cmd('s', `SELECT qr (QRESYNC (${uidValidity} ${modseq} 1:5))`);
  assert.match(r, /^\* VANISHED \(EARLIER\) 3:4\r\n/m);
  assert.match(r, /^\* 2 FETCH \(FLAGS \(\\Flagged( \\Recent)?\) UID 2 MODSEQ \(\d+\)\)\r\n/m);
  assert.doesNotMatch(r, /^\* [135] FETCH/m);
  // known-uids limits what is reported
  assert.match(await c.cmd('s2', `SELECT qr (QRESYNC (${uidValidity} ${modseq} 4:5))`), /^\* VANISHED \(EARLIER\) 4\r\n(?![\s\S]*\* \d+ FETCH)/m);
  // a stale UIDVALIDITY: no VANISHED, no FETCH (the client must start over)
  assert.doesNotMatch(await c.cmd('s3', `SELECT qr (QRESYNC (1 ${modseq}))`), /VANISHED|FETCH/);
  // §3.2.6: UID FETCH 1:* (FLAGS) (CHANGEDSINCE m VANISHED)
  const f = await c.cmd('f', `UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${modseq} VANISHED)`);
  assert.match(f, /^\* VANISHED \(EARLIER\) 3:4\r\n\* 2 FETCH \(UID 2 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)\r\nf OK/m);
  c.close();
  // without ENABLE QRESYNC the parameter and the modifier are errors
  const d = await login();
  assert.match(await d.cmd('s', `SELECT qr (QRESYNC (${uidValidity} ${modseq}))`), /^s BAD/m);
  assert.match(await d.cmd('s', 'SELECT qr'), /^s OK/m);
  assert.match(await d.cmd('f', `UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${modseq} VANISHED)`), /^f BAD/m);
  d.close();
});

test('imapflow with qresync: true resyncs a mailbox through SELECT (QRESYNC ...) and hears expunges as VANISHED', async () => {
  const { cert: ca } = await loadTls(s.env.config);
  const flow = (): ImapFlow =>
    new ImapFlow({ host: '127.0.0.1', port: s.imap.ports.imaps, secure: true, tls: { ca }, servername: 'localhost', auth: { user: s.user.username, pass: s.user.password }, qresync: true, logger: false });
  const w = await login();
  assert.match(await w.cmd('n', 'CREATE flowqr'), /^n OK/m);
  const three = Array.from({ length: 3 }, (_, i) => crlf([`Subject: f${i + 1}`, '', 'x']));
  const pieces: string[] = [];
  three.forEach((m, i) => pieces.push(`${i ? ' ' : 'p APPEND flowqr '}{${m.length}}`, m));
  assert.match(await withLiterals(w, 'p', pieces), /^p OK \[APPENDUID \d+ 1:3\]/m);
  // the state a client keeps: UIDVALIDITY and HIGHESTMODSEQ
  const first = flow();
  await first.connect();
  assert.ok(first.enabled.has('QRESYNC'), `imapflow did not enable QRESYNC: ${[...first.enabled].join(' ')}`);
  const known = await first.mailboxOpen('flowqr');
  await first.logout();
  assert.ok(known.highestModseq, 'no HIGHESTMODSEQ');
  // while it is away another session flags UID 1 and expunges UID 2
  assert.match(await w.cmd('s', 'SELECT flowqr'), /^s OK/m);
  assert.match(await w.cmd('f', 'UID STORE 1 +FLAGS.SILENT (\\Flagged)'), /^f OK/m);
  assert.match(await w.cmd('d', 'UID STORE 2 +FLAGS.SILENT (\\Deleted)'), /^d OK/m);
  assert.match(await w.cmd('x', 'EXPUNGE'), /^x OK/m);
  const client = flow();
  const flags: { uid?: number; flags: Set<string> }[] = [];
  const expunges: { uid?: number; vanished?: boolean; earlier?: boolean }[] = [];
  client.on('flags', (e: { uid?: number; flags: Set<string> }) => flags.push(e));
  client.on('expunge', (e: { uid?: number; vanished?: boolean; earlier?: boolean }) => expunges.push(e));
  await client.connect();
  try {
    // RFC 7162 §3.2.5: SELECT ... (QRESYNC (uidvalidity modseq)) answers VANISHED (EARLIER) for the expunged UIDs
    // and a FETCH with the UID for each message whose flags changed since modseq
    const mailbox = (await client.mailboxOpen('flowqr', { uidValidity: known.uidValidity, changedSince: known.highestModseq } as Parameters<ImapFlow['mailboxOpen']>[1])) as { qresync?: boolean; exists: number };
    assert.equal(mailbox.qresync, true);
    assert.equal(mailbox.exists, 2);
    assert.deepEqual(
      expunges.map((e) => [e.uid, e.vanished, e.earlier]),
      [[2, true, true]],
    );
    assert.deepEqual(
      flags.map((e) => [e.uid, [...e.flags].sort()]),
      [[1, ['\\Flagged']]],
    );
    // §3.2.10: once QRESYNC is enabled an expunge by another session arrives as VANISHED (no EXPUNGE), with the UID
    assert.match(await w.cmd('d2', 'UID STORE 3 +FLAGS.SILENT (\\Deleted)'), /^d2 OK/m);
    assert.match(await w.cmd('x2', 'EXPUNGE'), /^x2 OK/m);
    await client.noop();
    assert.deepEqual(
      expunges.map((e) => [e.uid, e.vanished, e.earlier]),
      [
        [2, true, true],
        [3, true, false],
      ],
    );
  } finally {
    await client.logout();
    w.close();
  }
});
