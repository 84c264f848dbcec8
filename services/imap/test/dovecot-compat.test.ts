import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MailStore } from '@hearth/mailstore';
import { tempDir } from '@hearth/testkit';
import { toCrlf } from '@hearth/message';
import { handToDovecot, startDovecot } from './dovecot.ts';
import { run, stack } from './helpers.ts';

/**
 * The Maildir is Dovecot's own format: Dovecot, pointed at a mailbox Hearth wrote, reads
 * the same UIDVALIDITY, UIDs, flags and keywords, and a message Dovecot adds gets the
 * next UID in Hearth's view too.
 */
test('Dovecot serves a Hearth Maildir with the same UIDs, flags and keywords', async () => {
  const root = tempDir('hearth-dovecot-compat-');
  fs.chmodSync(root, 0o755);
  const dataDir = path.join(root, 'data');
  const store = new MailStore(dataDir);
  const address = 'compat@example.test';
  for (let i = 0; i < 5; i++) await store.deliver(address, Buffer.from(`Subject: m${i}\r\n\r\nbody ${i}\r\n`));
  const inbox = await (await store.open(address)).folder('INBOX');
  await inbox.expunge([2], true);
  await inbox.store([3], 'add', ['\\Seen', 'Work']);
  await inbox.store([4], 'add', ['$Label1', '\\Flagged']);
  const ours = inbox.messages.map((m) => `${m.uid}:${m.flags.join(' ')}`);
  const account = await store.open(address);
  await account.createFolder('FromHearth');
  const hearthValidity = (await account.folder('FromHearth')).uidValidity;
  assert.deepEqual(await inbox.claimRecent(), [1, 3, 4, 5]);

  const maildir = store.mailboxPath(address);
  handToDovecot(dataDir);
  const dovecot = await startDovecot({ dir: path.join(root, 'dovecot'), maildir, login: 'compat', password: 'compat-pw' });
  try {
    const r = await run('python3', [
      '-c',
      `
import imaplib, re
M = imaplib.IMAP4('127.0.0.1', ${dovecot.port})
M.login('compat', 'compat-pw')
M.select('INBOX')
print(M.response('UIDVALIDITY')[1][0].decode())
typ, data = M.uid('FETCH', '1:*', '(FLAGS)')
for line in data:
    m = re.match(rb'\\d+ \\(UID (\\d+) FLAGS \\(([^)]*)\\)\\)', line)
    print('%s:%s' % (m.group(1).decode(), m.group(2).decode()))
M.append('INBOX', '(\\\\Answered)', None, b'Subject: from dovecot\\r\\n\\r\\nhi\\r\\n')
M.create('FromDovecot')
print(M.status('FromDovecot', '(UIDVALIDITY)')[1][0].decode())
M.logout()
`,
    ]);
    assert.equal(r.code, 0, r.stderr + fs.readFileSync(dovecot.logFile, 'utf8'));
    const lines = r.stdout.trim().split('\n');
    const dovecotFolder = Number(/UIDVALIDITY (\d+)/.exec(lines.pop()!)?.[1]);
    const [validity, ...theirs] = lines;
    assert.equal(Number(validity), inbox.uidValidity);
    assert.deepEqual(theirs, ours);
    // One UIDVALIDITY counter for the account (dovecot-uidvalidity): Dovecot continues Hearth's, and Hearth Dovecot's.
    assert.ok(dovecotFolder > hearthValidity, `Dovecot's new folder ${dovecotFolder} after Hearth's ${hearthValidity}`);
    await account.createFolder('AfterDovecot');
    assert.ok((await account.folder('AfterDovecot')).uidValidity > dovecotFolder);
    await inbox.refresh();
    const added = inbox.messages[inbox.messages.length - 1]!;
    assert.equal(added.uid, 6, 'the message Dovecot appended has the next UID for Hearth too');
    assert.deepEqual(added.flags, ['\\Answered']);
    assert.deepEqual(inbox.unclaimedRecent(), [6], "Dovecot keeps Hearth's \\Recent mark (R in the uidlist header)");
    // Dovecot stores LF line endings and records the CRLF size as W=; Hearth serves CRLF with that size.
    assert.equal(toCrlf(await inbox.read(added)).toString(), 'Subject: from dovecot\r\n\r\nhi\r\n');
    assert.equal(inbox.knownSize(added), 'Subject: from dovecot\r\n\r\nhi\r\n'.length);
  } finally {
    await dovecot.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
});

/**
 * DELETE of a mailbox with inferiors (RFC 3501 §6.3.4): its messages go, its children stay,
 * and the name remains as a level that cannot be selected until it is created again. The
 * same client script runs against Dovecot and Hearth and must get the same answers.
 */
test('DELETE of a folder with children answers as Dovecot does', async () => {
  const root = tempDir('hearth-dovecot-delete-');
  fs.chmodSync(root, 0o755);
  const maildir = path.join(root, 'mail');
  for (const d of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(maildir, d), { recursive: true });
  handToDovecot(maildir);
  const script = (port: number, login: string, password: string): string => `
import imaplib
M = imaplib.IMAP4('127.0.0.1', ${port})
M.login('${login}', '${password}')
def step(r):
    print(r[0])
def names():
    return sorted(n.split(b' "." ')[1].strip(b'"').decode() + (' noselect' if b'Noselect' in n else '') for n in M.list('""', 'a*')[1] if n)
step(M.create('a'))
step(M.create('a.b'))
step(M.append('a', None, None, b'Subject: x\\\\r\\\\n\\\\r\\\\nhi\\\\r\\\\n'))
step(M.delete('a'))
print(names())
step(M.select('a'))
step(M.delete('a'))
step(M.create('a'))
print(M.status('a', '(MESSAGES)')[1][0].decode().replace('"', ''))
step(M.delete('a.b'))
step(M.delete('a'))
print(names())
`;
  const dovecot = await startDovecot({ dir: path.join(root, 'dovecot'), maildir, login: 'u', password: 'pw' });
  let theirs: string;
  try {
    const r = await run('python3', ['-c', script(dovecot.port, 'u', 'pw')]);
    assert.equal(r.code, 0, r.stderr);
    theirs = r.stdout;
  } finally {
    await dovecot.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
  const h = await stack();
  try {
    const r = await run('python3', ['-c', script(h.imap.ports.imap, h.user.username, h.user.password)]);
    assert.equal(r.code, 0, r.stderr);
    // Dovecot lists the emptied level without \Noselect; RFC 3501 §6.3.4 gives it \Noselect, as Hearth does.
    assert.equal(r.stdout, theirs.replace("['a', 'a.b']", "['a noselect', 'a.b']"));
    assert.match(theirs, /^OK\nOK\nOK\nOK\n\['a', 'a\.b'\]\nNO\nNO\nOK\na \(MESSAGES 0\)\nOK\nOK\n\[\]\n$/);
  } finally {
    await h.close();
  }
});
