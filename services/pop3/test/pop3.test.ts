import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Directory } from '@hearth/directory';
import { createLogger } from '@hearth/log';
import { MailStore } from '@hearth/mailstore';
import { loadTls } from '@hearth/tls';
import { runCommand, testEnv, type TestEnv } from '@hearth/testkit';
import { startPop3, type RunningPop3 } from '../src/server.ts';
import { multiline, parseLine, topOf, uidl } from '../src/pop3-codec.ts';

let env: TestEnv;
let directory: Directory;
let store: MailStore;
let pop: RunningPop3;
let caFile: string;
const app = { username: 'blog.app@example.test', password: 'blog-secret-123', address: 'blog.app@example.test' };

const msg = (subject: string, body: string): Buffer => Buffer.from(`From: a@example.test\r\nSubject: ${subject}\r\n\r\n${body}\r\n`);

before(async () => {
  env = await testEnv();
  const logger = createLogger('pop3-test', 'warn');
  directory = await Directory.open(env.config, { watch: true, logger });
  await directory.putApp(
    { id: 'app-blog', domain: 'blog.example.test', manifest: { addons: { recvmail: {} } }, access: null, upstream: null, credentials: { recvmail: { ...app } }, createdAt: new Date().toISOString() },
    [app.address],
  );
  await directory.addUser({ username: 'dave', email: 'dave@example.test', password: 'dave-password-1' });
  await directory.addMailbox('dave@example.test', 'dave');
  store = new MailStore(env.dataDir);
  pop = await startPop3({ config: env.config, directory, logger, ports: { pop3: 0, pop3s: 0 } });
  caFile = (await loadTls(env.config)).certFile;
  await store.deliver(app.address, msg('first', 'line one\r\n.starts with a dot\r\nline three'));
  await store.deliver(app.address, msg('second', 'two'));
  await store.deliver(app.address, msg('third', 'three'));
});
after(async () => {
  await pop.close();
  await directory.close();
  await env.cleanup();
});

async function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await runCommand(cmd, args, { timeoutMs: 30_000 });
  return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function python(script: string): Promise<string> {
  const r = await run('python3', ['-c', script]);
  assert.equal(r.code, 0, `python failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout.trim();
}

/**
 * A raw connection to `port`; `until(re)` waits (up to 5 s) for `re` in what arrived since
 * the last call, asserts it is there, and returns that text.
 */
function rawClient(port: number): { sock: net.Socket; until: (re: RegExp) => Promise<string> } {
  const sock = net.connect(port, '127.0.0.1');
  let buf = '';
  sock.on('data', (d) => (buf += d.toString('latin1')));
  const until = async (re: RegExp): Promise<string> => {
    for (let i = 0; i < 250 && !re.test(buf); i++) await new Promise((r) => setTimeout(r, 20));
    assert.match(buf, re);
    const b = buf;
    buf = '';
    return b;
  };
  return { sock, until };
}

test('codec: commands, dot-stuffing, TOP, UIDL format', () => {
  assert.deepEqual(parseLine('user bob'), { name: 'USER', args: ['bob'], rest: 'bob' });
  assert.equal(parseLine('RETR\x001'), null);
  assert.equal(parseLine('x'.repeat(2000)), null);
  assert.equal(multiline(Buffer.from('a\n.b\r\n..c')).toString(), 'a\r\n..b\r\n...c\r\n.\r\n');
  assert.equal(topOf(Buffer.from('H: 1\r\n\r\nl1\r\nl2\r\nl3\r\n'), 1).toString(), 'H: 1\r\n\r\nl1\r\n');
  assert.equal(topOf(Buffer.from('H: 1\n\nl1\nl2\n'), 0).toString(), 'H: 1\n\n');
  assert.equal(uidl(26, 1700000000), '0000001A6553F100');
});

test('poplib: USER/PASS, STAT, LIST, UIDL, TOP, RETR, DELE, QUIT removes; UIDL stable', async () => {
  const out = await python(`
import poplib
P = poplib.POP3('127.0.0.1', ${pop.ports.pop3})
caps = P.capa()
assert 'UIDL' in caps and 'TOP' in caps and 'STLS' in caps and 'SASL' in caps, caps
P.user(${JSON.stringify(app.username)})
P.pass_(${JSON.stringify(app.password)})
count, size = P.stat()
assert count == 3, count
resp, lines, octets = P.list()
assert len(lines) == 3
resp, uids, _ = P.uidl()
resp, lines, _ = P.retr(1)
assert b'.starts with a dot' in lines and b'line three' in lines, lines
resp, lines, _ = P.top(2, 0)
assert lines[-1] == b'' and b'Subject: second' in lines, lines
P.dele(2)
try:
    P.retr(2)
    raise SystemExit('deleted message still readable')
except poplib.error_proto:
    pass
P.quit()
Q = poplib.POP3('127.0.0.1', ${pop.ports.pop3})
Q.user(${JSON.stringify(app.username)})
Q.pass_(${JSON.stringify(app.password)})
assert Q.stat()[0] == 2
resp, uids2, _ = Q.uidl()
assert [u.split()[1] for u in uids2] == [uids[0].split()[1], uids[2].split()[1]], (uids, uids2)
Q.quit()
print('ok')
`);
  assert.equal(out, 'ok');
  const inbox = await (await store.open(app.address)).folder('INBOX');
  await inbox.refresh();
  assert.equal(inbox.messages.length, 2);
  assert.ok(inbox.messages[0]!.flags.includes('\\Seen'), 'RETR marks the message seen at QUIT');
});

test('RFC 2449 IN-USE: one POP3 session per maildrop; the lock goes with QUIT or a dropped connection', async () => {
  const out = await python(`
import poplib, socket, time
def login():
    c = poplib.POP3('127.0.0.1', ${pop.ports.pop3})
    c.user(${JSON.stringify(app.username)})
    c.pass_(${JSON.stringify(app.password)})
    return c
P = login()
try:
    login()
    raise SystemExit('a second session got the maildrop')
except poplib.error_proto as e:
    assert str(e).startswith("b'-ERR [IN-USE]"), e
P.quit()
R = login()
R.sock.shutdown(socket.SHUT_RDWR)
R.sock.close()
for i in range(100):
    try:
        S = login()
        break
    except poplib.error_proto as e:
        assert '[IN-USE]' in str(e), e
        time.sleep(0.05)
else:
    raise SystemExit('the lock of a dropped connection was never released')
S.quit()
print('ok')
`);
  assert.equal(out, 'ok');
});

test('TLS: STLS and POP3S with the generated certificate; AUTH PLAIN; user login', async () => {
  const out = await python(`
import poplib, ssl, base64
ctx = ssl.create_default_context(cafile=${JSON.stringify(caFile)})
P = poplib.POP3('127.0.0.1', ${pop.ports.pop3})
P.stls(context=ctx)
assert 'STLS' not in P.capa()
P.user('dave')
P.pass_('dave-password-1')
assert P.stat()[0] == 0
P.quit()
S = poplib.POP3_SSL('127.0.0.1', ${pop.ports.pop3s}, context=ctx)
auth = base64.b64encode(b'\\0' + ${JSON.stringify(app.username)}.encode() + b'\\0' + ${JSON.stringify(app.password)}.encode()).decode()
r = S._shortcmd('AUTH PLAIN ' + auth)
assert r.startswith(b'+OK'), r
assert S.stat()[0] == 2
S.quit()
B = poplib.POP3_SSL('127.0.0.1', ${pop.ports.pop3s}, context=ctx)
B.user('dave')
try:
    B.pass_('wrong')
    raise SystemExit('wrong password accepted')
except poplib.error_proto as e:
    assert b'[AUTH]' in e.args[0], e
print('ok')
`);
  assert.equal(out, 'ok');
});

test('curl: pop3:// with STLS and pop3s://', async () => {
  const base = ['-s', '--max-time', '20', '--user', `${app.username}:${app.password}`, '--cacert', caFile];
  const list = await run('curl', [...base, '--ssl-reqd', `pop3://127.0.0.1:${pop.ports.pop3}/`]);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^1 \d+\r?\n2 \d+/);
  const one = await run('curl', [...base, `pop3s://localhost:${pop.ports.pop3s}/1`]);
  assert.equal(one.code, 0, one.stderr);
  assert.match(one.stdout, /Subject: first/);
});

test('bad input: wrong state, bad numbers, long lines, garbage; server keeps serving', async () => {
  const { sock, until } = rawClient(pop.ports.pop3);
  await until(/\+OK/);
  sock.write('STAT\r\n');
  assert.match(await until(/-ERR/), /not valid in this state/);
  sock.write('PASS nouser\r\n');
  await until(/-ERR/);
  sock.write(`USER ${'x'.repeat(5000)}\r\n`);
  assert.match(await until(/-ERR/), /too long/);
  sock.write(`USER ${app.username}\r\nPASS ${app.password}\r\n`);
  await until(/\+OK Logged in/);
  for (const bad of ['RETR 0', 'RETR 99', 'RETR -1', 'RETR 1x', 'TOP 1', 'TOP 1 x', 'DELE 4294967296', 'LIST 00']) {
    sock.write(`${bad}\r\n`);
    assert.match(await until(/-ERR[^\r]*\r\n/), /-ERR/, bad);
  }
  sock.write('\x00\xff\r\n');
  await until(/-ERR/);
  sock.write('RSET\r\nQUIT\r\n');
  await until(/\+OK Bye/);
  sock.destroy();
  const out = await python(`
import poplib
P = poplib.POP3('127.0.0.1', ${pop.ports.pop3})
P.user(${JSON.stringify(app.username)}); P.pass_(${JSON.stringify(app.password)})
print(P.stat()[0])
P.quit()
`);
  assert.equal(out, '2');
});

test('disabling a user ends their POP3 session', async () => {
  await directory.addUser({ username: 'gina', email: 'gina@example.test', password: 'gina-password-1' });
  await directory.addMailbox('gina@example.test', 'gina');
  const sock = net.connect(pop.ports.pop3, '127.0.0.1');
  let buf = '';
  let closed = false;
  sock.on('data', (d) => (buf += d.toString('latin1')));
  sock.on('close', () => (closed = true));
  sock.write('USER gina\r\nPASS gina-password-1\r\n');
  for (let i = 0; i < 250 && !/Logged in/.test(buf); i++) await new Promise((r) => setTimeout(r, 20));
  assert.match(buf, /\+OK Logged in/);
  await directory.setActive('gina', false);
  for (let i = 0; i < 250 && !closed; i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(closed, 'connection closed');
  assert.match(buf, /-ERR Access revoked/);
});

test('AUTH PLAIN with a continuation; AUTH without arguments lists mechanisms', async () => {
  const { sock, until } = rawClient(pop.ports.pop3);
  await until(/\+OK/);
  sock.write('AUTH\r\n');
  assert.match(await until(/\r\n\.\r\n/), /PLAIN/);
  sock.write('AUTH PLAIN\r\n');
  await until(/^\+ /m);
  sock.write(`${Buffer.from(`\0${app.username}\0${app.password}`).toString('base64')}\r\n`);
  assert.match(await until(/\+OK Logged in/), /\+OK Logged in, \d+ messages/);
  sock.write('QUIT\r\n');
  await until(/\+OK Bye/);
  sock.destroy();
});
