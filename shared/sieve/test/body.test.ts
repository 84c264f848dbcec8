import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { compileScript, messageBody, runScript, type SieveAction, type SieveMessage } from '../src/index.ts';

const crlf = (s: string): Buffer => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'latin1');

/** RFC 5173 §7's example message. */
const RFC_MESSAGE = crlf(`From: Whomsoever
To: Someone
Date: Whenever
Subject: whatever
Content-Type: multipart/mixed; boundary=outer

This is a multi-part message in MIME format.

--outer
Content-Type: multipart/alternative; boundary=inner

This is a nested multi-part message in MIME format.

--inner
Content-Type: text/plain; charset="us-ascii"

Hello

--inner
Content-Type: text/html; charset="us-ascii"

<html><body>Hello</body></html>

--inner--

This is the end of the inner MIME multipart.

--outer
Content-Type: message/rfc822

From: Someone Else
Subject: hello request

Please say Hello

--outer--

This is the end of the outer MIME multipart.
`);

/** Transfer encodings, charsets, HTML, an attachment, an attached message, a preamble and an epilogue. */
const ENCODED = crlf(`From: a@example.com
To: b@example.com
Subject: test
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XX"

This is the prologue
--XX
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Caf=E9 plain part
--XX
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PGh0bWw+PGJvZHk+PGI+Qm9sZDwvYj4gaHRtbCBwYXJ0PC9ib2R5PjwvaHRtbD4K
--XX
Content-Type: message/rfc822

Subject: inner
From: c@example.com

inner body text
--XX
Content-Type: application/pdf
Content-Transfer-Encoding: base64

JVBERi0xLjQgcGRmZGF0YQ==
--XX--
epilogue here
`);

const PLAIN = crlf('From: a@example.com\nSubject: s\n\nline one\nline two\n');

function sieveMessage(raw: Buffer): SieveMessage {
  return { header: () => [], addresses: () => [], size: raw.length, envelope: { from: 'a@example.com', to: 'b@example.com' }, body: messageBody(raw) };
}

const script = (bodyTest: string): string => `require ["body", "fileinto", "encoded-character", "variables"];\nif body ${bodyTest} { fileinto "yes"; }\n`;
const filed = (actions: SieveAction[]): boolean => actions.some((a) => a.kind === 'fileinto' && a.folder === 'yes');
const ours = (raw: Buffer, bodyTest: string): boolean => filed(runScript(compileScript(script(bodyTest)), sieveMessage(raw)));

/** Each body test and whether it is true: from RFC 5173 §§5, 7, and what Pigeonhole answers (checked below). */
const CASES: [Buffer, string, boolean][] = [
  // §7 (RFC 5173's own list over its example message)
  [RFC_MESSAGE, ':raw :contains "MIME"', true],
  [RFC_MESSAGE, ':content "multipart" :contains "MIME"', true],
  [RFC_MESSAGE, ':content "multipart" :contains "Hello"', false],
  [RFC_MESSAGE, ':content "" :contains "MIME"', true],
  [RFC_MESSAGE, ':content "" :contains "Hello"', true],
  [RFC_MESSAGE, ':content "text/html" :contains "Hello"', true],
  [RFC_MESSAGE, ':content "text/plain" :contains "Hello"', true],
  [RFC_MESSAGE, ':content "text/plain" :contains "<html>"', false],
  [RFC_MESSAGE, ':content "message/rfc822" :contains "hello request"', true],
  [RFC_MESSAGE, ':content "message/rfc822" :contains "Please say Hello"', false],
  [RFC_MESSAGE, ':content "text" :contains "Please say Hello"', true],
  [RFC_MESSAGE, ':content "message" :contains "Content-Type"', false],
  [RFC_MESSAGE, ':text :contains "Please say Hello"', true],
  [RFC_MESSAGE, ':text :contains "end of the outer"', false],
  [RFC_MESSAGE, ':contains "Hello"', true],
  // §5.2: a type that begins or ends with "/" or has two slashes matches nothing
  [ENCODED, ':content "text/" :contains "plain part"', false],
  [ENCODED, ':content "/plain" :contains "plain part"', false],
  [ENCODED, ':content "text/plain/x" :contains "plain part"', false],
  [ENCODED, ':content "TEXT/PLAIN" :contains "plain part"', true],
  // transfer encodings undone, charsets read, in :content and :text; never in :raw
  [ENCODED, ':raw :contains "Caf=E9"', true],
  [ENCODED, ':raw :contains "Café"', false],
  [ENCODED, ':raw :contains "--XX"', true],
  [ENCODED, ':raw :contains "Subject: test"', false],
  [ENCODED, ':raw :matches "This is the prologue*epilogue here${hex:0D 0A}"', true],
  [ENCODED, ':content "text" :contains "Café"', true],
  [ENCODED, ':content "text" :is "Café plain part"', true],
  [ENCODED, ':content "text" :contains "--XX"', false],
  [ENCODED, ':content "text" :contains "Content-Type"', false],
  [ENCODED, ':text :contains "Café"', true],
  [ENCODED, ':contains "Café"', true],
  [ENCODED, ':content "text/html" :contains "<b>Bold"', true],
  [ENCODED, ':content "application" :is "%PDF-1.4 pdfdata"', true],
  [ENCODED, ':text :contains "pdfdata"', false],
  // :text takes the markup out of HTML
  [ENCODED, ':text :contains "<b>"', false],
  [ENCODED, ':text :contains "Bold"', true],
  [ENCODED, ':text :contains "html part"', true],
  // a multipart's preamble and epilogue, each its own string; an attached message's header section
  [ENCODED, ':content "multipart" :is "This is the prologue"', true],
  [ENCODED, ':content "multipart" :is "epilogue here${hex:0D 0A}"', true],
  [ENCODED, ':content "multipart" :contains "Café"', false],
  [ENCODED, ':content "message/rfc822" :is "Subject: inner${hex:0D 0A}From: c@example.com${hex:0D 0A}"', true],
  [ENCODED, ':content "message/rfc822" :contains "inner body"', false],
  [ENCODED, ':content "" :contains "inner body"', true],
  [ENCODED, ':text :contains "inner body"', true],
  [ENCODED, ':text :contains "prologue"', false],
  // a single-part message: the body as it is, line breaks kept
  [PLAIN, ':raw :is "line one${hex:0D 0A}line two${hex:0D 0A}"', true],
  [PLAIN, ':text :is "line one${hex:0D 0A}line two${hex:0D 0A}"', true],
  [PLAIN, ':content "text" :is "line one${hex:0D 0A}line two${hex:0D 0A}"', true],
  [PLAIN, ':text :is "line one${hex:0A}line two${hex:0A}"', false],
  [PLAIN, ':content "multipart" :contains ""', false],
];

test('body transforms (RFC 5173 §5): :raw, :content by type, :text, over the one MIME reader', () => {
  for (const [raw, bodyTest, want] of CASES) assert.equal(ours(raw, bodyTest), want, `body ${bodyTest}`);
});

test('body :matches sets no match variables (RFC 5173 §6): ${1} is still what the header test matched', () => {
  const src = 'require ["body", "fileinto", "variables"]; if header :matches "subject" "*" { } if body :matches "line*" { fileinto "${1}"; }';
  const msg = { ...sieveMessage(PLAIN), header: (n: string) => (n === 'subject' ? ['kept'] : []) };
  assert.deepEqual(runScript(compileScript(src), msg), [{ kind: 'fileinto', folder: 'kept', create: false, flags: [] }]);
});

/** Dovecot Pigeonhole's sieve-test run on the same script and message: its verdict. */
function pigeonhole(dir: string, raw: Buffer, bodyTest: string): boolean {
  fs.writeFileSync(path.join(dir, 's.sieve'), script(bodyTest));
  fs.writeFileSync(path.join(dir, 'm.eml'), raw);
  const r = spawnSync('sieve-test', ['-c', path.join(dir, 'dovecot.conf'), path.join(dir, 's.sieve'), path.join(dir, 'm.eml')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return /store message in folder: yes$/m.test(r.stdout);
}

test('Pigeonhole (sieve-test) gives the same verdict on every case', (t) => {
  if (spawnSync('sieve-test', ['-h'], { stdio: 'ignore' }).error) return t.skip('sieve-test (dovecot-sieve) not installed');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-sieve-body-'));
  try {
    // sieve-test drops privileges to mail_uid, never root
    const user = os.userInfo().uid === 0 ? 'nobody' : os.userInfo().username;
    fs.chmodSync(dir, 0o777);
    fs.mkdirSync(path.join(dir, 'run'), { mode: 0o777 });
    fs.writeFileSync(path.join(dir, 'dovecot.conf'), `base_dir = ${dir}/run\nprotocols =\nssl = no\nmail_uid = ${user}\nmail_gid = ${os.userInfo().uid === 0 ? 'nogroup' : os.userInfo().gid}\nmail_location = maildir:${dir}/mail\n`);
    spawnSync('chown', ['-R', user, dir]);
    for (const [raw, bodyTest, want] of CASES) assert.equal(pigeonhole(dir, raw, bodyTest), want, `Pigeonhole: body ${bodyTest}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
