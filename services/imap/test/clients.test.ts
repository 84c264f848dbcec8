import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { loadTls } from '@hearth/tls';
import { waitFor } from '@hearth/testkit';
import { message, run, stack, type Stack } from './helpers.ts';
import { Wire } from './wire.ts';

let s: Stack;
let ca: string;
let caFile: string;

before(async () => {
  s = await stack();
  const tls = await loadTls(s.env.config);
  ca = tls.cert;
  caFile = tls.certFile;
});
after(() => s.close());

async function python(script: string): Promise<string> {
  const r = await run('python3', ['-c', script]);
  assert.equal(r.code, 0, `python failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

test('imaplib: recvmail login, read a delivered message, flags, search, move, expunge, append', async () => {
  await s.store.deliver(s.app.address, message('Hello imaplib', 'first body'));
  await s.store.deliver(s.app.address, message('Second one', 'second body'));
  const out = await python(`
import imaplib, re
M = imaplib.IMAP4('127.0.0.1', ${s.imap.ports.imap})
typ, _ = M.login(${JSON.stringify(s.app.username)}, ${JSON.stringify(s.app.password)})
assert typ == 'OK'
typ, data = M.select('INBOX')
assert data == [b'2'], data
typ, data = M.fetch('1', '(BODY.PEEK[])')
assert b'Subject: Hello imaplib' in data[0][1] and b'first body' in data[0][1], data
typ, data = M.fetch('1', '(FLAGS)')
assert b'\\\\Seen' not in data[0], data
typ, data = M.fetch('1', '(RFC822)')
typ, data = M.fetch('1', '(FLAGS)')
assert b'\\\\Seen' in data[0], data
typ, data = M.store('2', '+FLAGS', '(\\\\Flagged $Important)')
assert b'\\\\Flagged' in data[0] and b'$Important' in data[0], data
typ, data = M.search(None, 'FLAGGED')
assert data == [b'2'], data
typ, data = M.search('UTF-8', 'BODY', 'second')
assert data == [b'2'], data
typ, data = M.uid('SEARCH', None, 'UNSEEN')
uid2 = data[0]
typ, data = M.uid('MOVE', uid2, 'Archive')
assert typ == 'OK', data
typ, data = M.status('Archive', '(MESSAGES)')
assert b'MESSAGES 1' in data[0], data
typ, data = M.store('1', '+FLAGS', '(\\\\Deleted)')
typ, data = M.expunge()
assert data[-1] == b'1', data
typ, data = M.append('INBOX', '(\\\\Seen)', None, b'Subject: appended\\r\\n\\r\\nhi\\r\\n')
assert typ == 'OK' and b'APPENDUID' in M.untagged_responses.get('APPENDUID', [b'x'])[0] or typ == 'OK', data
typ, data = M.fetch('1:*', '(UID FLAGS RFC822.SIZE)')
assert len(data) == 1 and b'\\\\Seen' in data[0], data
typ, data = M.list()
assert any(b'\\\\Sent' in l and b'"Sent"' in l for l in data), data
typ, data = M.create('Projects.2026')
typ, data = M.list('""', 'Projects.%')
assert data == [b'(\\\\HasNoChildren) "." "Projects.2026"'], data
M.close()
M.logout()
print('ok')
`);
  assert.equal(out.trim(), 'ok');
  const inbox = await (await s.store.open(s.app.address)).folder('INBOX');
  await inbox.refresh();
  assert.equal(inbox.messages.length, 1, 'the expunge and the move reached the Maildir');
});

test('TLS on both ports: STARTTLS and implicit, clients trust the generated certificate; user logins', async () => {
  const out = await python(`
import imaplib, ssl
ctx = ssl.create_default_context(cafile=${JSON.stringify(caFile)})
M = imaplib.IMAP4('127.0.0.1', ${s.imap.ports.imap})
assert 'STARTTLS' in M.capabilities
M.starttls(ssl_context=ctx)
assert 'STARTTLS' not in M.capabilities
M.login(${JSON.stringify(s.user.username)}, ${JSON.stringify(s.user.password)})
typ, data = M.select('INBOX')
assert typ == 'OK'
M.logout()
S = imaplib.IMAP4_SSL('127.0.0.1', ${s.imap.ports.imaps}, ssl_context=ctx)
S.login(${JSON.stringify(s.user.email)}, ${JSON.stringify(s.user.password)})
typ, data = S.select('Sent')
assert typ == 'OK'
S.logout()
try:
    B = imaplib.IMAP4_SSL('127.0.0.1', ${s.imap.ports.imaps}, ssl_context=ctx)
    B.login(${JSON.stringify(s.user.username)}, 'wrong-password')
    raise SystemExit('bad password accepted')
except imaplib.IMAP4.error as e:
    assert 'AUTHENTICATIONFAILED' in str(e), e
print('ok')
`);
  assert.equal(out.trim(), 'ok');
});

test('curl reads over imap:// (STARTTLS required) and imaps://', async () => {
  const msg = await s.store.deliver(s.user.email, message('For curl', 'curl body'));
  assert.ok(msg);
  const base = ['-s', '--max-time', '20', '--user', `${s.user.username}:${s.user.password}`, '--cacert', caFile];
  const a = await run('curl', [...base, '--ssl-reqd', `imap://127.0.0.1:${s.imap.ports.imap}/INBOX;UID=1`]);
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stdout, /Subject: For curl/);
  const b = await run('curl', [...base, `imaps://localhost:${s.imap.ports.imaps}/INBOX;UID=1;SECTION=TEXT`]);
  assert.equal(b.code, 0, b.stderr);
  assert.match(b.stdout, /curl body/);
  const c = await run('curl', [...base, `imap://127.0.0.1:${s.imap.ports.imap}/INBOX`, '-X', 'SEARCH SUBJECT curl']);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /\* SEARCH 1/);
});

test('imapflow: two sessions see each other\'s changes; IDLE sees a delivery', async () => {
  const opts = { host: '127.0.0.1', port: s.imap.ports.imaps, secure: true, tls: { ca }, servername: 'localhost', auth: { user: s.app.username, pass: s.app.password }, logger: false as const };
  const a = new ImapFlow(opts);
  const b = new ImapFlow(opts);
  await a.connect();
  await b.connect();
  try {
    await a.mailboxOpen('INBOX');
    await b.mailboxOpen('INBOX');
    const start = (b.mailbox as { exists: number }).exists;
    const events: string[] = [];
    b.on('exists', (d: { count: number }) => events.push(`exists ${d.count}`));
    b.on('flags', (d: { uid?: number; flags: Set<string> }) => events.push(`flags ${[...d.flags].join(' ')}`));
    b.on('expunge', () => events.push('expunge'));
    void b.idle();
    const t0 = Date.now();
    await s.store.deliver(s.app.address, message('Pushed'));
    await waitFor(() => events.includes(`exists ${start + 1}`), 5000, 10);
    const latency = Date.now() - t0;
    console.log(`# IDLE saw the delivery after ${latency} ms`);
    const appended = await a.append('INBOX', message('From A'), ['\\Draft']);
    await waitFor(() => events.includes(`exists ${start + 2}`), 5000, 10);
    await a.messageFlagsAdd({ uid: String((appended as { uid: number }).uid) }, ['\\Flagged'], { uid: true });
    await waitFor(() => events.some((e) => e.startsWith('flags') && e.includes('\\Flagged')), 5000, 10);
    await a.messageDelete({ uid: String((appended as { uid: number }).uid) }, { uid: true });
    await waitFor(() => events.includes('expunge'), 5000, 10);
    const list = await a.list();
    assert.ok(list.some((m) => m.path === 'Trash' && m.specialUse === '\\Trash'));
    const q = await a.getQuota('INBOX');
    assert.ok(q && typeof q === 'object' && 'storage' in q);
  } finally {
    await a.logout().catch(() => {});
    await b.logout().catch(() => {});
  }
});

test('raw sessions: EXISTS, FETCH FLAGS and EXPUNGE reach the other session; CONDSTORE', async () => {
  const addr = s.user.email;
  await s.store.deliver(addr, message('shared one'));
  const a = await Wire.connect(s.imap.ports.imap);
  const b = await Wire.connect(s.imap.ports.imap);
  try {
    for (const w of [a, b]) {
      await w.until(/\* OK/);
      assert.match(await w.cmd('l', `LOGIN ${s.user.username} ${s.user.password}`), /l OK/);
    }
    const sel = await a.cmd('s', 'SELECT INBOX (CONDSTORE)');
    const exists = Number(/\* (\d+) EXISTS/.exec(sel)![1]);
    assert.match(sel, /HIGHESTMODSEQ \d+/);
    // \Recent (a session-only flag) shows up when a's SELECT was the first to see the message.
    await b.cmd('s', 'SELECT INBOX');
    assert.match(await b.cmd('f', `STORE ${exists} +FLAGS (\\Answered)`), /FLAGS \(\\Answered\)/);
    assert.match(await a.cmd('n', 'NOOP'), new RegExp(`\\* ${exists} FETCH \\(FLAGS \\(\\\\Answered(?: \\\\Recent)?\\) MODSEQ \\(\\d+\\)\\)`));
    const modseq = Number(/HIGHESTMODSEQ (\d+)/.exec(await a.cmd('st', 'STATUS INBOX (HIGHESTMODSEQ)'))![1]);
    assert.match(await a.cmd('c', `STORE ${exists} (UNCHANGEDSINCE 1) +FLAGS (\\Seen)`), /OK \[MODIFIED \d+\]/);
    assert.match(await a.cmd('c2', `FETCH 1:* (FLAGS) (CHANGEDSINCE ${modseq - 1})`), new RegExp(`\\* ${exists} FETCH`));
    await b.cmd('d', `STORE ${exists} +FLAGS.SILENT (\\Deleted)`);
    await b.cmd('e', 'EXPUNGE');
    assert.match(await a.cmd('n2', 'NOOP'), new RegExp(`\\* ${exists} EXPUNGE`));
    // IDLE on a raw connection: a delivery shows up as EXISTS without any command.
    a.write('i IDLE\r\n');
    await a.until(/\+ idling/);
    await s.store.deliver(addr, message('during idle'));
    await a.until(/\* \d+ EXISTS/, 5000);
    a.write('DONE\r\n');
    assert.match(await a.until(/i (OK|BAD|NO)/), /i OK IDLE terminated/);
  } finally {
    a.close();
    b.close();
  }
});

test('disabling a user ends their sessions', async () => {
  await s.directory.addUser({ username: 'carol', email: 'carol@example.test', password: 'carol-password-1' });
  await s.directory.addMailbox('carol@example.test', 'carol');
  const w = await Wire.connect(s.imap.ports.imap);
  await w.until(/\* OK/);
  assert.match(await w.cmd('l', 'LOGIN carol carol-password-1'), /l OK/);
  await w.cmd('s', 'SELECT INBOX');
  w.write('i IDLE\r\n');
  await w.until(/\+ idling/);
  await s.directory.setActive('carol', false);
  const bye = await w.until(/\* BYE/, 3000);
  assert.match(bye, /revoked/);
  await w.waitClosed(3000);
  const again = await Wire.connect(s.imap.ports.imap);
  await again.until(/\* OK/);
  assert.match(await again.cmd('l', 'LOGIN carol carol-password-1'), /l NO/);
  again.close();
});

test('logins are audited; failures throttled together with other protocols', async () => {
  await s.directory.addUser({ username: 'frank', email: 'frank@example.test', password: 'frank-password-1' });
  await s.directory.addMailbox('frank@example.test', 'frank');
  const w = await Wire.connect(s.imap.ports.imap);
  await w.until(/\* OK/);
  assert.match(await w.cmd('a', 'LOGIN frank wrong-password'), /a NO \[AUTHENTICATIONFAILED\]/);
  const b64 = Buffer.from('\0frank\0frank-password-1').toString('base64');
  assert.match(await w.cmd('b', `AUTHENTICATE PLAIN ${b64}`), /b OK/, 'SASL-IR');
  w.close();
  const events = await s.directory.store.listAudit({ username: 'frank', protocol: 'imap' });
  assert.deepEqual(events.map((e) => e.ok).sort(), [false, true]);
  // Ten failures over LDAP from frank's own address lock the account out of IMAP there too, even with
  // the right password (failures from elsewhere would not: that address signed in successfully above).
  for (let i = 0; i < 10; i++) await s.directory.authenticate({ login: 'frank', password: 'nope', protocol: 'ldap', remote: '127.0.0.1' });
  const v = await Wire.connect(s.imap.ports.imap);
  await v.until(/\* OK/);
  v.write('c AUTHENTICATE PLAIN\r\n');
  await v.until(/\+ \r\n/);
  v.write(`${b64}\r\n`);
  assert.match(await v.until(/c (OK|NO|BAD)[^\r]*\r\n/), /c NO \[UNAVAILABLE\]/);
  v.close();
});
