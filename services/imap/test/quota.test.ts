import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { run, stack, type Stack } from './helpers.ts';

let s: Stack;
before(async () => {
  s = await stack({ quotaBytes: 1024 * 1024 });
});
after(() => s.close());

test('imaplib: APPEND within a 1 MB quota is stored; the one that would pass it gets NO [OVERQUOTA] and leaves nothing behind', async () => {
  const r = await run('python3', [
    '-c',
    `
import imaplib
M = imaplib.IMAP4('127.0.0.1', ${s.imap.ports.imap})
M.login(${JSON.stringify(s.user.username)}, ${JSON.stringify(s.user.password)})
big = b'Subject: part\\r\\n\\r\\n' + (b'x' * 74 + b'\\r\\n') * 4000
for i in range(3):
    typ, data = M.append('INBOX', None, None, big)
    assert typ == 'OK', (i, data)
try:
    typ, data = M.append('INBOX', None, None, big)
    print('APPEND', typ, data)
except M.error as e:
    print('APPEND error', e)
typ, data = M.getquotaroot('INBOX')
print('QUOTA', data)
typ, data = M.status('INBOX', '(MESSAGES)')
print('STATUS', data)
M.logout()
`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^APPEND NO \[b'\[OVERQUOTA\] /m, r.stdout);
  // 3 × (16 + 4000 × 76) bytes = 891 KiB
  assert.match(r.stdout, /STORAGE 891 1024/, r.stdout);
  assert.match(r.stdout, /MESSAGES 3\)/, r.stdout);
  const root = path.join(s.env.dataDir, 'mail', 'example.test', 'alice');
  assert.deepEqual(fs.readdirSync(path.join(root, 'tmp')), []);
  assert.equal(fs.readdirSync(path.join(root, 'cur')).length, 3);
});
