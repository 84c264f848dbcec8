import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { message, run, SkipStack, stack, type Stack } from './helpers.ts';

let s: Stack | null = null;
let skip: string | false = false;

before(async () => {
  try {
    // the whole data directory (directory store, mail, keys) on a file system of its own
    s = await stack({ tmpfsBytes: 16 * 1024 * 1024 });
  } catch (err) {
    if (!(err instanceof SkipStack)) throw err;
    skip = err.message;
  }
});
after(async () => {
  await s?.close();
});

/** runs an imaplib script as the user; the script prints what the test checks */
async function imaplib(body: string): Promise<string> {
  const st = s!;
  const script = `
import imaplib
M = imaplib.IMAP4('127.0.0.1', ${st.imap.ports.imap})
M.login(${JSON.stringify(st.user.username)}, ${JSON.stringify(st.user.password)})
${body}
M.logout()
`;
  const r = await run('python3', ['-c', script]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

function lockFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.name.endsWith('.lock')) out.push(path.join(e.parentPath, e.name));
  return out;
}

test('with the disk full, users open INBOX and delete mail; only what needs space gets NO [OVERQUOTA]; freeing space works at once', { timeout: 120_000 }, async (t) => {
  if (skip) return t.skip(skip);
  const st = s!;
  for (let i = 1; i <= 3; i++) await st.store.deliver(st.user.email, message(`before full ${i}`, 'x'.repeat(20_000)));
  st.disk!.fill();

  const full = await imaplib(`
typ, data = M.select('INBOX')
print('SELECT', typ, data)
typ, data = M.store('1', '+FLAGS', '(\\\\Deleted)')
print('STORE', typ, data)
typ, data = M.expunge()
print('EXPUNGE', typ, data)
`);
  assert.match(full, /^SELECT OK \[b'3'\]$/m, full);
  assert.match(full, /^STORE OK /m, full);
  assert.match(full, /^EXPUNGE OK \[b'1'\]$/m, full);

  // The expunge gave some space back: take it again.
  st.disk!.fill();
  const stillFull = await imaplib(`
typ, data = M.select('INBOX')
print('SELECT', typ, data)
typ, data = M.fetch('1:*', '(FLAGS)')
print('FETCH', typ, len(data))
typ, data = M.append('INBOX', None, None, b'Subject: needs space\\r\\n\\r\\n' + b'y' * 200000 + b'\\r\\n')
print('APPEND', typ, data)
typ, data = M.copy('1', 'Archive')
print('COPY', typ, data)
typ, data = M.select('Archive')
print('SELECT2', typ, data)
`);
  assert.match(stillFull, /^SELECT OK \[b'2'\]$/m, stillFull);
  assert.match(stillFull, /^FETCH OK 2$/m, stillFull);
  assert.match(stillFull, /^APPEND NO \[b'\[OVERQUOTA\] /m, stillFull);
  // a hard link needs no space, so COPY may well succeed; what it must not do is fail as a server bug
  assert.match(stillFull, /^COPY (OK|NO \[b'\[OVERQUOTA\] )/m, stillFull);
  assert.match(stillFull, /^SELECT2 OK /m, stillFull);
  assert.deepEqual(lockFiles(st.env.dataDir), [], 'no lock file is left behind by a failed write');

  // Space back: everything works right away, no failure remembered.
  st.disk!.free();
  const freed = await imaplib(`
typ, data = M.append('INBOX', None, None, b'Subject: after free\\r\\n\\r\\nhello\\r\\n')
print('APPEND', typ, data)
typ, data = M.select('INBOX')
print('SELECT', typ, data)
typ, data = M.copy('1', 'Archive')
print('COPY', typ, data)
typ, data = M.fetch('3', '(BODY[HEADER.FIELDS (SUBJECT)])')
print('FETCH', typ, data[0][1])
`);
  assert.match(freed, /^APPEND OK /m, freed);
  assert.match(freed, /^SELECT OK \[b'3'\]$/m, freed);
  assert.match(freed, /^COPY OK /m, freed);
  assert.match(freed, /^FETCH OK b'Subject: after free/m, freed);
});
