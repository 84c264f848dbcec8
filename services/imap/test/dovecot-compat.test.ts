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

/**
 * A Maildir++ folder whose parent level has no folder of its own (".Projects.2026" without
 * ".Projects"), as another program may leave it: Hearth and Dovecot, serving the same Maildir,
 * list the parent the same way and refuse to open or delete it the same way.
 */
test('a parent level without a folder: \\Noselect for LIST, \\NonExistent for an extended LIST (RFC 5258 §3), as Dovecot on the same Maildir', async () => {
  const h = await stack({ env: { HEARTH_LISTEN: '127.0.0.32' } });
  const root = tempDir('hearth-dovecot-nonexistent-');
  fs.chmodSync(root, 0o755);
  try {
    const maildir = h.store.mailboxPath(h.user.email);
    await h.store.deliver(h.user.email, Buffer.from('Subject: x\r\n\r\nhi\r\n'));
    // the child's Maildir++ folder only, as Dovecot's own CREATE Projects.2026 makes it
    for (const sub of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(maildir, '.Projects.2026', sub), { recursive: true });
    fs.writeFileSync(path.join(maildir, '.Projects.2026', 'maildirfolder'), '');
    handToDovecot(h.env.dataDir);
    // plain LISTs (RFC 3501 §6.3.8) and extended ones (RFC 5258 §3: selection options, several patterns or RETURN)
    const plain = ['LIST "" "*"', 'LIST "" "%"'];
    const extended = ['LIST "" "*" RETURN (CHILDREN)', 'LIST "" "%" RETURN (CHILDREN)', 'LIST () "" "%"', 'LIST "" ("Projects" "Nothing")', 'LIST "" "%" RETURN (SUBSCRIBED)', 'LIST "" "Projects" RETURN (STATUS (MESSAGES))'];
    const commands = [...plain, ...extended, 'STATUS Projects (MESSAGES)', 'SELECT Projects', 'DELETE Projects', 'ENABLE IMAP4rev2', ...plain, extended[0]!];
    // per command: the attributes of Projects' LIST line (null: none), whether a STATUS line came, and the tagged result up to its code
    const script = (port: number, login: string, password: string): string => `
import json, re, socket
s = socket.create_connection(('127.0.0.32', ${port}))
f = s.makefile('rb')
f.readline()
def cmd(c):
    s.sendall(b'T ' + c.encode() + b'\\r\\n')
    lines = []
    while True:
        l = f.readline().decode().rstrip('\\r\\n')
        if l.startswith('T '):
            return lines, re.match(r'T (OK|NO|BAD)( \\[[A-Z]+\\])?', l).group(0)
        lines.append(l)
cmd('LOGIN ${login} ${password}')
out = []
for c in json.loads(${JSON.stringify(JSON.stringify(commands))}):
    lines, result = cmd(c)
    attrs = [sorted(m.group(1).split()) for m in (re.match(r'\\* LIST \\(([^)]*)\\) "." "?Projects"?$', l) for l in lines) if m]
    out.append([c, attrs[0] if attrs else None, any(l.startswith('* STATUS') for l in lines), result])
print(json.dumps(out))
`;
    type Answer = [command: string, attributes: string[] | null, status: boolean, result: string];
    const answers = async (port: number, login: string, password: string): Promise<Answer[]> => {
      const r = await run('/usr/bin/python3', ['-c', script(port, login, password)]);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as Answer[];
    };
    const ours = await answers(h.imap.ports.imap, h.user.username, h.user.password);
    const dovecot = await startDovecot({ dir: path.join(root, 'dovecot'), maildir, login: 'u', password: 'pw', host: '127.0.0.32' });
    let theirs: Answer[];
    try {
      theirs = await answers(dovecot.port, 'u', 'pw');
    } finally {
      await dovecot.stop();
    }
    // Hearth (CHILDREN advertised) always says whether a name has children; Dovecot only when asked
    // (RETURN (CHILDREN) or a plain LIST): elsewhere only \Noselect/\NonExistent are compared. Of the
    // tagged results, OK/NO (Dovecot gives SELECT and STATUS of a missing name no response code).
    const comparable = ([c, attrs, status, result]: Answer): unknown[] => [
      c,
      c.includes('CHILDREN') || plain.includes(c) ? attrs : attrs?.filter((a) => a === '\\Noselect' || a === '\\NonExistent'),
      status,
      result.split(' ')[1],
    ];
    assert.deepEqual(ours.map(comparable), theirs.map(comparable));
    // what the RFCs ask, whoever answers
    for (const answer of [ours, theirs]) {
      for (const [c, attrs, status, result] of answer.filter(([c]) => c.startsWith('LIST'))) {
        assert.equal(result, 'T OK', c);
        assert.ok(attrs?.includes(plain.includes(c) ? '\\Noselect' : '\\NonExistent'), `${c}: ${attrs?.join(' ')}`);
        if (c.includes('CHILDREN') || plain.includes(c)) assert.ok(attrs?.includes('\\HasChildren'), c);
        assert.equal(status, false, `${c}: no STATUS for a name that is not a mailbox (RFC 5819 §2)`);
      }
      assert.equal(answer.find(([c]) => c === 'DELETE Projects')?.[3], 'T NO [NONEXISTENT]');
    }
  } finally {
    await h.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
});
