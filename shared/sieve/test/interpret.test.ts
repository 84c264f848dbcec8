import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileScript, runScript, type SieveMessage } from '../src/index.ts';

function message(headers: Record<string, string[]>, opts: { size?: number; from?: string; to?: string; body?: string } = {}): SieveMessage {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    header: (n) => lower[n.toLowerCase()] ?? [],
    addresses: (n) => (lower[n.toLowerCase()] ?? []).flatMap((v) => v.split(',').map((a) => (/<([^>]+)>/.exec(a)?.[1] ?? a).trim().toLowerCase())),
    size: opts.size ?? 1000,
    envelope: { from: opts.from ?? 'sender@remote.test', to: opts.to ?? 'me@example.com' },
    body: () => opts.body ?? '',
  };
}

const run = (src: string, msg: SieveMessage) => runScript(compileScript(src), msg);

const RFC5228_EXAMPLE = `require ["fileinto"];
if header :is "Sender" "owner-ietf-mta-filters@imc.org" { fileinto "filter"; }
elsif address :DOMAIN :is ["From", "To"] "example.com" { keep; }
elsif anyof (NOT address :all :contains ["To", "Cc", "Bcc"] "me@example.com",
             header :matches "subject" ["*make*money*fast*", "*university*dipl*mas*"]) { fileinto "spam"; }
else { fileinto "personal"; }`;

test('RFC 5228 §9: each branch of the example script files the message where the RFC says', () => {
  assert.deepEqual(run(RFC5228_EXAMPLE, message({ Sender: ['owner-ietf-mta-filters@imc.org'], To: ['me@example.com'] })), [{ kind: 'fileinto', folder: 'filter', create: false, flags: [] }]);
  assert.deepEqual(run(RFC5228_EXAMPLE, message({ From: ['Boss <boss@EXAMPLE.com>'], To: ['me@example.com'] })), [{ kind: 'keep', flags: [] }]);
  assert.deepEqual(run(RFC5228_EXAMPLE, message({ From: ['x@spam.test'], To: ['someone@else.test'] })), [{ kind: 'fileinto', folder: 'spam', create: false, flags: [] }]);
  assert.deepEqual(run(RFC5228_EXAMPLE, message({ From: ['x@spam.test'], To: ['me@example.com.relay.test'], Subject: ['MAKE lots of MONEY FAST now'] })), [{ kind: 'fileinto', folder: 'spam', create: false, flags: [] }]);
  assert.deepEqual(run(RFC5228_EXAMPLE, message({ From: ['friend@other.test'], To: ['me@example.com.relay.test'], Subject: ['lunch?'] })), [{ kind: 'fileinto', folder: 'personal', create: false, flags: [] }]);
});

test('implicit keep (§2.10.2): kept unless cancelled; discard cancels; fileinto :copy keeps it', () => {
  assert.deepEqual(run('if false { discard; }', message({})), [{ kind: 'keep', flags: [] }]);
  assert.deepEqual(run('discard;', message({})), []);
  assert.deepEqual(run('require ["fileinto", "copy"]; fileinto :copy "Archive";', message({})), [
    { kind: 'keep', flags: [] },
    { kind: 'fileinto', folder: 'Archive', create: false, flags: [] },
  ]);
  // stop ends the script; what came before stands (§3.3)
  assert.deepEqual(run('require "fileinto"; fileinto "A"; stop; fileinto "B";', message({})), [{ kind: 'fileinto', folder: 'A', create: false, flags: [] }]);
});

test('size, exists, envelope, :matches with ${1} (variables), subaddress, relational, imap4flags, reject', () => {
  assert.equal(run('if size :over 100K { discard; }', message({}, { size: 200 * 1024 })).length, 0);
  assert.equal(run('if size :over 100K { discard; }', message({}, { size: 100 * 1024 })).length, 1);
  assert.equal(run('if exists ["From", "Date"] { discard; }', message({ From: ['a@b'] })).length, 1);
  const sub = 'require ["envelope", "subaddress", "fileinto", "variables", "mailbox"]; if envelope :detail :matches "to" "*" { fileinto :create "${1}"; }';
  assert.deepEqual(run(sub, message({}, { to: 'me+lists@example.com' })), [{ kind: 'fileinto', folder: 'lists', create: true, flags: [] }]);
  assert.deepEqual(run(sub, message({}, { to: 'me@example.com' })), [{ kind: 'keep', flags: [] }]);
  const rel = 'require ["relational", "comparator-i;ascii-numeric"]; if header :value "ge" :comparator "i;ascii-numeric" "X-Spam-Score" "5" { discard; }';
  assert.equal(run(rel, message({ 'X-Spam-Score': ['7'] })).length, 0);
  assert.equal(run(rel, message({ 'X-Spam-Score': ['3'] })).length, 1);
  assert.equal(run('require "relational"; if header :count "ge" "received" "3" { discard; }', message({ Received: ['a', 'b', 'c'] })).length, 0);
  assert.deepEqual(run('require ["imap4flags", "fileinto"]; addflag ["\\\\Flagged", "$Work"]; removeflag "$Work"; fileinto "W";', message({})), [{ kind: 'fileinto', folder: 'W', create: false, flags: ['\\Flagged'] }]);
  assert.deepEqual(run('require "reject"; if header :contains "subject" "spam" { reject "no thanks"; }', message({ Subject: ['SPAM offer'] })), [{ kind: 'reject', reason: 'no thanks' }]);
  // i;octet is case-sensitive; the default i;ascii-casemap is not
  assert.equal(run('if header :is :comparator "i;octet" "subject" "hello" { discard; }', message({ Subject: ['Hello'] })).length, 1);
  assert.equal(run('if header :is "subject" "hello" { discard; }', message({ Subject: ['Hello'] })).length, 0);
});

test('an action not carried out at delivery is a run-time error (the caller keeps the message)', () => {
  assert.throws(() => run('redirect "x@y.test";', message({})), /line 1: redirect is not supported/);
});
