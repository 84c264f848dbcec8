import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { MailStore } from '@hearth/mailstore';
import { freePort, tempDir, waitFor } from '@hearth/testkit';
import { toCrlf } from '../src/mime.ts';
import { run } from './helpers.ts';

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
  assert.deepEqual(await inbox.claimRecent(), [1, 3, 4, 5]);

  const maildir = store.mailboxPath(address);
  const dir = path.join(root, 'dovecot');
  for (const sub of ['run', 'state', 'index', 'home']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  fs.writeFileSync(path.join(dir, 'passwd'), 'compat:{PLAIN}compat-pw::::::\n');
  const isRoot = process.getuid?.() === 0;
  const me = os.userInfo().username;
  const [mailUser, internalUser, loginUser] = isRoot ? ['dovecot', 'dovecot', 'dovenull'] : [me, me, me];
  if (isRoot) spawnSync('chown', ['-R', 'dovecot:dovecot', dataDir, path.join(dir, 'index'), path.join(dir, 'home')]);
  const port = await freePort();
  const conf = path.join(dir, 'dovecot.conf');
  fs.writeFileSync(
    conf,
    `base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
first_valid_uid = 1
mail_privileged_group =
default_internal_user = ${internalUser}
default_login_user = ${loginUser}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/passwd
}
userdb {
  driver = static
  args = uid=${mailUser} gid=${mailUser} home=${dir}/home
}
mail_location = maildir:${maildir}:INDEX=${dir}/index
service imap-login {
  inet_listener imap {
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
  chroot =
}
service anvil {
  chroot =
}
`,
  );
  const child = spawn('dovecot', ['-F', '-c', conf], { stdio: 'ignore' });
  let spawnError: Error | null = null;
  child.on('error', (err) => (spawnError = err));
  try {
    await waitFor(
      () =>
        new Promise<boolean>((resolve, reject) => {
          if (spawnError) return reject(new Error(`dovecot (Debian dovecot-imapd) is needed: ${String(spawnError)}`));
          const s = net.connect(port, '127.0.0.1', () => {
            s.destroy();
            resolve(true);
          });
          s.on('error', () => resolve(false));
        }),
      15_000,
      100,
    );
    const r = await run('python3', [
      '-c',
      `
import imaplib, re
M = imaplib.IMAP4('127.0.0.1', ${port})
M.login('compat', 'compat-pw')
M.select('INBOX')
print(M.response('UIDVALIDITY')[1][0].decode())
typ, data = M.uid('FETCH', '1:*', '(FLAGS)')
for line in data:
    m = re.match(rb'\\d+ \\(UID (\\d+) FLAGS \\(([^)]*)\\)\\)', line)
    print('%s:%s' % (m.group(1).decode(), m.group(2).decode()))
M.append('INBOX', '(\\\\Answered)', None, b'Subject: from dovecot\\r\\n\\r\\nhi\\r\\n')
M.logout()
`,
    ]);
    assert.equal(r.code, 0, r.stderr + fs.readFileSync(path.join(dir, 'dovecot.log'), 'utf8'));
    const [validity, ...theirs] = r.stdout.trim().split('\n');
    assert.equal(Number(validity), inbox.uidValidity);
    assert.deepEqual(theirs, ours);
    await inbox.refresh();
    const added = inbox.messages[inbox.messages.length - 1]!;
    assert.equal(added.uid, 6, 'the message Dovecot appended has the next UID for Hearth too');
    assert.deepEqual(added.flags, ['\\Answered']);
    assert.deepEqual(inbox.unclaimedRecent(), [6], "Dovecot keeps Hearth's \\Recent mark (R in the uidlist header)");
    // Dovecot stores LF line endings and records the CRLF size as W=; Hearth serves CRLF with that size.
    assert.equal(toCrlf(await inbox.read(added)).toString(), 'Subject: from dovecot\r\n\r\nhi\r\n');
    assert.equal(inbox.knownSize(added), 'Subject: from dovecot\r\n\r\nhi\r\n'.length);
  } finally {
    spawnSync('dovecot', ['-c', conf, 'stop']);
    await new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, 5000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
    fs.rmSync(root, { recursive: true, force: true });
  }
});
