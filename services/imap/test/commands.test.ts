import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { message, stack, type Stack } from './helpers.ts';
import { Wire } from './wire.ts';

let s: Stack;
let w: Wire;

before(async () => {
  s = await stack({ quotaBytes: 50 * 1024 });
  await s.store.deliver(s.user.email, message('alpha', 'first body line\r\nsecond line', 'Cc: Carol <carol@example.test>\r\n'));
  await s.store.deliver(s.user.email, message('beta', 'beta body'));
  w = await Wire.connect(s.imap.ports.imap);
  await w.until(/\* OK/);
  assert.match(await w.cmd('l', `LOGIN ${s.user.email} ${s.user.password}`), /l OK \[CAPABILITY [^\]]*UIDPLUS[^\]]*\]/);
});
after(async () => {
  w.close();
  await s.close();
});

test('CAPABILITY, NAMESPACE, ID, ENABLE', async () => {
  assert.match(await w.cmd('c', 'CAPABILITY'), /\* CAPABILITY IMAP4rev1 .*IDLE.*MOVE.*SPECIAL-USE.*CONDSTORE.*QUOTA/);
  assert.match(await w.cmd('n', 'NAMESPACE'), /\* NAMESPACE \(\("" "\."\)\) NIL NIL/);
  assert.match(await w.cmd('i', 'ID ("name" "test")'), /\* ID \("name" "Hearth"/);
  assert.match(await w.cmd('e', 'ENABLE CONDSTORE X-UNKNOWN'), /\* ENABLED CONDSTORE\r\n/);
});

test('mailbox management: CREATE, LIST, LSUB, SUBSCRIBE, RENAME, DELETE, STATUS', async () => {
  assert.match(await w.cmd('a', 'CREATE Work'), /a OK/);
  assert.match(await w.cmd('b', 'CREATE Work.Reports'), /b OK/);
  assert.match(await w.cmd('c', 'LIST "" %'), /\* LIST \(\\HasChildren\) "\." "Work"/);
  assert.match(await w.cmd('d', 'LIST "Work." %'), /\* LIST \(\\HasNoChildren\) "\." "Work\.Reports"/);
  assert.match(await w.cmd('e', 'LIST (SPECIAL-USE) "" *'), /^(?!.*"Work")(?=[\s\S]*\\Junk)[\s\S]*e OK/);
  assert.match(await w.cmd('f', 'SUBSCRIBE Work.Reports'), /f OK/);
  assert.match(await w.cmd('g', 'LSUB "" *'), /\* LSUB \([^)]*\) "\." "Work\.Reports"/);
  assert.match(await w.cmd('h', 'LIST "" * RETURN (SUBSCRIBED)'), /"\." "Work\.Reports"/);
  assert.match(await w.cmd('h2', 'LIST "" * RETURN (SUBSCRIBED)'), /\\Subscribed\) "\." "Work\.Reports"/);
  assert.match(await w.cmd('i', 'RENAME Work Job'), /i OK/);
  assert.match(await w.cmd('j', 'LSUB "" *'), /"Job\.Reports"/);
  assert.match(await w.cmd('k', 'UNSUBSCRIBE Job.Reports'), /k OK/);
  assert.doesNotMatch(await w.cmd('k2', 'LSUB "" *'), /Job\.Reports/);
  assert.match(await w.cmd('l', 'DELETE Job.Reports'), /l OK/);
  assert.match(await w.cmd('m', 'STATUS Job.Reports (MESSAGES)'), /m NO \[NONEXISTENT\]/);
  assert.match(await w.cmd('o', 'STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)'), /\* STATUS "INBOX" \(MESSAGES 2 UIDNEXT 3 UIDVALIDITY \d+ UNSEEN 2 HIGHESTMODSEQ \d+\)/);
  assert.match(await w.cmd('p', 'LIST "" ""'), /\* LIST \(\\Noselect\) "\." ""/);
});

test('FETCH sections, partials, ENVELOPE; EXAMINE is read-only', async () => {
  assert.match(await w.cmd('a', 'EXAMINE INBOX'), /\* 2 EXISTS[\s\S]*a OK \[READ-ONLY\]/);
  assert.match(await w.cmd('b', 'FETCH 1 (BODY[HEADER.FIELDS (SUBJECT CC)])'), /BODY\[HEADER\.FIELDS \(SUBJECT CC\)\] \{\d+\}\r\nSubject: alpha\r\nCc: Carol <carol@example.test>\r\n\r\n\)/);
  assert.match(await w.cmd('c', 'FETCH 1 (BODY[TEXT]<6.4>)'), /BODY\[TEXT\]<6> \{4\}\r\nbody\)/);
  assert.match(await w.cmd('d', 'FETCH 1 (ENVELOPE)'), /ENVELOPE \("Mon, 2 Mar 2026 10:00:00 \+0000" "alpha" \(\("Bob" NIL "bob" "example\.test"\)\) .* \(\("Carol" NIL "carol" "example\.test"\)\) NIL NIL "<alpha@example\.test>"\)/);
  assert.match(await w.cmd('e', 'FETCH 1 (BODY[])'), /e OK/);
  assert.doesNotMatch(await w.cmd('f', 'FETCH 1 FLAGS'), /\\Seen/, 'EXAMINE does not set \\Seen');
  assert.match(await w.cmd('g', 'STORE 1 +FLAGS (\\Seen)'), /g NO \[READ-ONLY\]/);
  assert.match(await w.cmd('h', 'FETCH 1 (INTERNALDATE RFC822.SIZE BODY)'), /INTERNALDATE "\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d \+0000" RFC822\.SIZE \d+ BODY \("text" "plain"/);
});

test('APPEND with flags and date, COPY and MOVE with UIDPLUS, UID EXPUNGE, CLOSE, quota', async () => {
  const app = await w.cmd('a', 'APPEND Drafts (\\Draft $Todo) "14-Jul-2025 08:30:00 +0200" {24}\r\nSubject: draft\r\n\r\nhello\r\n');
  const m = /a OK \[APPENDUID (\d+) (\d+)\]/.exec(app);
  assert.ok(m, app);
  assert.match(await w.cmd('b', 'SELECT Drafts'), /\* 1 EXISTS[\s\S]*b OK \[READ-WRITE\]/);
  assert.match(await w.cmd('c', 'FETCH 1 (FLAGS INTERNALDATE)'), /FLAGS \(\\Draft \$Todo \\Recent\) INTERNALDATE "14-Jul-2025 06:30:00 \+0000"/);
  assert.match(await w.cmd('d', 'SELECT INBOX'), /\* 2 RECENT[\s\S]*d OK/, 'the first read-write SELECT (the EXAMINE before left them)');
  assert.match(await w.cmd('d2', 'STORE 1 +FLAGS (Project)'), /\* FLAGS \([^)]*Project\)\r\n\* OK \[PERMANENTFLAGS \([^)]*Project \\\*\)\][^\r]*\r\n\* 1 FETCH \(FLAGS \(Project \\Recent\)[\s\S]*d2 OK/);
  assert.match(await w.cmd('e', 'COPY 1:2 Archive'), /e OK \[COPYUID \d+ 1:2 \d+:\d+\]/);
  assert.match(await w.cmd('f', 'UID MOVE 2 Trash'), /\* OK \[COPYUID \d+ 2 \d+\][\s\S]*\* 2 EXPUNGE[\s\S]*f OK/);
  assert.match(await w.cmd('g', 'STORE 1 +FLAGS.SILENT (\\Deleted)'), /^g OK/);
  assert.match(await w.cmd('h', 'UID EXPUNGE 999'), /^h OK/, 'UID EXPUNGE only touches the given UIDs');
  assert.match(await w.cmd('i', 'UID EXPUNGE 1'), /\* 1 EXPUNGE[\s\S]*i OK/);
  assert.match(await w.cmd('j', 'SELECT Archive'), /\* 2 EXISTS/);
  assert.match(await w.cmd('k', 'STORE 1 +FLAGS (\\Deleted)'), /k OK/);
  assert.match(await w.cmd('l', 'CLOSE'), /l OK/);
  assert.match(await w.cmd('m', 'STATUS Archive (MESSAGES)'), /MESSAGES 1/);
  assert.match(await w.cmd('n', 'GETQUOTAROOT INBOX'), /\* QUOTAROOT "INBOX" ""\r\n\* QUOTA "" \(STORAGE \d+ 50\)/);
  assert.match(await w.cmd('o', 'GETQUOTA ""'), /\* QUOTA "" \(STORAGE/);
  assert.match(await w.cmd('p', 'SETQUOTA "" (STORAGE 1)'), /p NO/);
  const big = 'x'.repeat(60 * 1024);
  assert.match(await w.cmd('q', `APPEND INBOX {${big.length + 14}+}\r\nSubject: q\r\n\r\n${big}`), /q NO \[OVERQUOTA\]/);
  assert.match(await w.cmd('r', 'APPEND Nowhere {5}\r\nhello'), /\+ Ready[\s\S]*r NO \[TRYCREATE\]/);
});
