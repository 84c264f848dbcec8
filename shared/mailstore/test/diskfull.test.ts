import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { mountTmpfs, tempDir } from '@hearth/testkit';
import { withFileLock, writeFileAtomic } from '../src/lock.ts';
import { isNoSpace, MailStore } from '../src/index.ts';

const msg = (subject: string, size = 100): Buffer => Buffer.from(`From: a@example.test\r\nSubject: ${subject}\r\n\r\n${'x'.repeat(size)}\r\n`);

test('on a full file system a failed write leaves nothing behind and nothing is remembered once space returns', { timeout: 60_000 }, async (t) => {
  const dir = tempDir('hearth-mailstore-full-');
  const disk = mountTmpfs(dir, 2 * 1024 * 1024);
  if (typeof disk === 'string') {
    fs.rmSync(dir, { recursive: true, force: true });
    return t.skip(disk);
  }
  t.after(() => {
    disk.unmount();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const store = new MailStore(dir);
  await store.deliver('bob@example.test', msg('one'));
  const account = await store.open('bob@example.test');
  const inbox = await account.folder('INBOX');
  await inbox.open();
  const lock = path.join(dir, 'test.lock');
  const settings = path.join(dir, 'settings');
  fs.writeFileSync(settings, 'old');
  disk.fill();

  // The lock is taken (its pid line does not fit) and removed after: none is left for the 30 s stale rule.
  assert.equal(await withFileLock(lock, async () => fs.existsSync(lock)), true);
  assert.equal(fs.existsSync(lock), false);
  // And a failing operation under it removes it too.
  await assert.rejects(withFileLock(lock, () => writeFileAtomic(settings, 'x'.repeat(100_000))), (err) => isNoSpace(err));
  assert.equal(fs.existsSync(lock), false);
  assert.equal(fs.readFileSync(settings, 'utf8'), 'old', 'the old content stays');
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temp file left');

  await assert.rejects(store.deliver('bob@example.test', msg('two', 100_000)), (err) => isNoSpace(err));
  await assert.rejects(inbox.append(msg('three', 100_000)), (err) => isNoSpace(err));
  const maildir = store.mailboxPath('bob@example.test');
  assert.deepEqual(fs.readdirSync(path.join(maildir, 'tmp')), [], 'no half-written message in tmp/');
  assert.equal(inbox.uids.length, 1);

  disk.free();
  // at once: no cached failure, and no lock left to wait for (a wait would time out after 10 s)
  await store.deliver('bob@example.test', msg('four'));
  await inbox.append(msg('five'));
  await inbox.refresh();
  assert.equal(inbox.uids.length, 3);
});
