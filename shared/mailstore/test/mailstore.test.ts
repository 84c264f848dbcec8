import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MailStore, decodeMutf7, encodeMutf7, normalizeFolderName, MailStoreError } from '../src/index.ts';
import { flagsToInfo, infoToFlags, splitName } from '../src/flags.ts';
import { parseUidList, serializeUidList } from '../src/uidlist.ts';
import { tryHoldLock } from '../src/lock.ts';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-mailstore-'));
const msg = (subject: string): Buffer => Buffer.from(`From: a@example.test\r\nSubject: ${subject}\r\n\r\nbody ${subject}\r\n`);

test('flag letters map like Dovecot', () => {
  assert.deepEqual(splitName('123.M1P2.host,S=10:2,FS'), { base: '123.M1P2.host,S=10', info: 'FS' });
  assert.deepEqual(infoToFlags('DFRSTab', ['$Label1', 'work']), ['\\Draft', '\\Flagged', '\\Answered', '\\Seen', '\\Deleted', '$Label1', 'work']);
  const kw: string[] = [];
  assert.equal(flagsToInfo(['\\Seen', '\\answered', 'work'], (k) => kw.push(k) - 1, 'P'), 'PRSa');
});

test('uidlist round-trips and ignores a torn last line', () => {
  const list = { uidValidity: 1700000000, nextUid: 5, highestModseq: 9, firstRecentUid: 4, records: [{ uid: 3, base: 'a,S=1', modseq: 4 }, { uid: 4, base: 'b,S=2', modseq: 9 }] };
  assert.deepEqual(parseUidList(serializeUidList(list)), list);
  const torn = serializeUidList(list) + '5 M10 :c,S';
  assert.equal(parseUidList(torn)?.records.length, 2);
  assert.equal(parseUidList('garbage'), null);
  assert.equal(parseUidList('3 V1 N5\n')?.firstRecentUid, 1, 'a uidlist without R (Dovecot\'s) counts everything as not yet recent');
  assert.equal(parseUidList('3 V1 N5 R9\n')?.firstRecentUid, 5, 'R never points past the next UID');
});

test('modified UTF-7 names', () => {
  assert.equal(decodeMutf7('Entw&APw-rfe'), 'Entwürfe');
  assert.equal(encodeMutf7('Entwürfe & Co'), 'Entw&APw-rfe &- Co');
  assert.equal(decodeMutf7('bad&AGE-'), null, 'encoded printable ASCII is refused');
  assert.equal(decodeMutf7('caf\u00e9'), null);
  assert.equal(normalizeFolderName('inbox'), 'INBOX');
  for (const bad of ['', 'a..b', '.x', 'x.', 'a/b', 'INBOX.x', '&Jjo', 'x'.repeat(300)]) assert.throws(() => normalizeFolderName(bad), MailStoreError, bad);
});

test('deliver, open, UIDs persist across processes and survive flag changes', async () => {
  const dir = tmp();
  try {
    const store = new MailStore(dir);
    await store.deliver('Box@Example.test', msg('one'));
    await store.deliver('box@example.test', msg('two'));
    const acc = await store.open('box@example.test');
    const names = (await acc.listFolders()).map((f) => [f.name, f.specialUse]);
    assert.deepEqual(names, [['INBOX', null], ['Archive', '\\Archive'], ['Drafts', '\\Drafts'], ['Junk', '\\Junk'], ['Sent', '\\Sent'], ['Trash', '\\Trash']]);
    assert.deepEqual((await acc.subscriptions()).sort(), ['Archive', 'Drafts', 'Junk', 'Sent', 'Trash']);
    const inbox = await acc.folder('INBOX');
    assert.deepEqual(inbox.messages.map((m) => m.uid), [1, 2]);
    assert.equal(fs.readdirSync(path.join(acc.root, 'new')).length, 0, 'new/ moved to cur/');
    const validity = inbox.uidValidity;
    const before = inbox.highestModseq;
    const { changed } = await inbox.store([2], 'add', ['\\Seen', 'Work']);
    assert.deepEqual(changed[0]?.flags, ['\\Seen', 'Work']);
    assert.ok(changed[0]!.modseq > before);
    assert.match(changed[0]!.file, /:2,Sa$/);
    assert.equal((await inbox.read(changed[0]!)).toString(), msg('two').toString());

    // A second process (a fresh MailStore) reads the same UIDs, flags and MODSEQs.
    const other = await (await new MailStore(dir).open('box@example.test')).folder('INBOX');
    assert.equal(other.uidValidity, validity);
    assert.deepEqual(other.messages.map((m) => [m.uid, m.flags.join(' '), m.modseq]), inbox.messages.map((m) => [m.uid, m.flags.join(' '), m.modseq]));

    const conditional = await inbox.store([1, 2], 'add', ['\\Flagged'], before);
    assert.deepEqual(conditional.failed, [2]);
    assert.deepEqual(conditional.changed.map((r) => r.uid), [1]);

    const appended = await inbox.append(msg('three'), ['\\Draft'], new Date('2020-01-02T03:04:05Z'));
    assert.equal(appended.uid, 3);
    assert.equal((await inbox.internalDate(appended)).toISOString(), '2020-01-02T03:04:05.000Z');
    assert.equal(await inbox.size(appended), msg('three').length);

    const trash = await acc.folder('Trash');
    const pairs = await inbox.copyTo([1, 3], trash);
    assert.deepEqual(pairs, [[1, 1], [3, 2]]);
    assert.deepEqual(trash.get(2)?.flags, ['\\Draft']);

    await inbox.store([1], 'add', ['\\Deleted']);
    assert.deepEqual(await inbox.expunge(), [1]);
    assert.deepEqual(await inbox.expunge([2], true), [2]);
    assert.deepEqual(inbox.messages.map((m) => m.uid), [3]);
    await other.refresh();
    assert.deepEqual(other.messages.map((m) => m.uid), [3]);

    const usage = await acc.usage();
    assert.equal(usage.messages, 3);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a watched folder notices a delivery from another process', async () => {
  const dir = tmp();
  try {
    const store = new MailStore(dir);
    const inbox = await (await store.open('w@example.test')).folder('INBOX');
    const stop = inbox.watch();
    const seen = new Promise<void>((resolve) => inbox.on('change', () => inbox.messages.length === 1 && resolve()));
    await new MailStore(dir).deliver('w@example.test', msg('x'));
    await seen;
    stop();
    assert.equal(inbox.messages[0]?.uid, 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a file Dovecot stored with LF endings keeps its W= size (the CRLF size) after a stat for INTERNALDATE", async () => {
  const dir = tmp();
  try {
    const inbox = await (await new MailStore(dir).open('lf@example.test')).folder('INBOX');
    const lf = Buffer.from('Subject: lf\n\nline one\nline two\n');
    const lines = lf.toString().split('\n').length - 1;
    // as Dovecot names it: S= the bytes on disk, W= the size with CRLF line endings (RFC822.SIZE)
    fs.writeFileSync(path.join(inbox.dir, 'cur', `1700000000.M1P1.host,S=${lf.length},W=${lf.length + lines}:2,`), lf);
    fs.utimesSync(path.join(inbox.dir, 'cur'), new Date(), new Date(Date.now() + 5000));
    await inbox.refresh();
    const rec = inbox.messages[0]!;
    // (Stats.mtime rounds to the millisecond, a Date from mtimeMs truncates: compare what IMAP shows, seconds)
    assert.equal(Math.floor((await inbox.internalDate(rec)).getTime() / 1000), Math.floor(fs.statSync(inbox.filePath(rec)).mtimeMs / 1000));
    assert.equal(inbox.knownSize(rec), lf.length + lines);
    assert.equal(await inbox.size(rec), lf.length + lines);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('folders: create, rename with children, delete, bad names', async () => {
  const dir = tmp();
  try {
    const acc = await new MailStore(dir).open('f@example.test');
    await acc.createFolder('Projects');
    await acc.createFolder('Projects.2024');
    await assert.rejects(acc.createFolder('Projects'), (e: MailStoreError) => e.code === 'exists');
    await acc.subscribe('Projects.2024');
    const f = await acc.folder('Projects');
    await acc.renameFolder('Projects', 'Work');
    assert.equal(f.gone, true);
    const names = (await acc.listFolders()).map((x) => x.name);
    assert.ok(names.includes('Work') && names.includes('Work.2024') && !names.includes('Projects'));
    assert.ok((await acc.subscriptions()).includes('Work.2024'));
    assert.ok(fs.existsSync(path.join(acc.root, '.Work.2024', 'maildirfolder')));
    await acc.deleteFolder('Work.2024');
    await assert.rejects(acc.folder('Work.2024'), (e: MailStoreError) => e.code === 'nonexistent');
    await assert.rejects(acc.deleteFolder('INBOX'), MailStoreError);
    const inbox = await acc.folder('INBOX');
    await inbox.append(Buffer.from('Subject: x\r\n\r\ny\r\n'));
    await acc.renameFolder('INBOX', 'Old');
    assert.equal(inbox.messages.length, 0, 'RENAME INBOX empties INBOX');
    assert.equal((await acc.folder('Old')).messages.length, 1);
    await assert.rejects(acc.createFolder('a\u00ff'), MailStoreError);
    // A level made by another program without its parent is listed as \Noselect.
    fs.mkdirSync(path.join(acc.root, '.Lists.Dev', 'cur'), { recursive: true });
    const lists = (await acc.listFolders()).filter((f) => f.name.startsWith('Lists'));
    assert.deepEqual(lists.map((f) => [f.name, f.noSelect, f.hasChildren]), [['Lists', true, true], ['Lists.Dev', false, false]]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('concurrent appends from two stores get distinct UIDs', async () => {
  const dir = tmp();
  try {
    const a = await (await new MailStore(dir).open('c@example.test')).folder('INBOX');
    const b = await (await new MailStore(dir).open('c@example.test')).folder('INBOX');
    const recs = await Promise.all([...Array(10)].map((_, i) => (i % 2 ? a : b).append(msg(String(i)))));
    assert.equal(new Set(recs.map((r) => r.uid)).size, 10);
    await a.refresh();
    assert.equal(a.messages.length, 10);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('each message is claimed as recent once, across stores (processes)', async () => {
  const dir = tmp();
  try {
    const store = new MailStore(dir);
    await store.deliver('r@example.test', msg('one'));
    await store.deliver('r@example.test', msg('two'));
    const a = await (await store.open('r@example.test')).folder('INBOX');
    const b = await (await new MailStore(dir).open('r@example.test')).folder('INBOX');
    assert.deepEqual(b.unclaimedRecent(), [1, 2]);
    assert.deepEqual(await a.claimRecent(), [1, 2]);
    assert.deepEqual(await b.claimRecent(), [], 'the other store sees the claim on disk');
    await b.refresh();
    assert.deepEqual(b.unclaimedRecent(), []);
    await Promise.all([...Array(6)].map((_, i) => store.deliver('r@example.test', msg(`n${i}`))));
    // Claims racing with each other and with deliveries never hand out a UID twice.
    const claims = await Promise.all([a.claimRecent(), b.claimRecent(), a.claimRecent(), b.claimRecent()]);
    const all = claims.flat().sort((x, y) => x - y);
    assert.deepEqual(all, [3, 4, 5, 6, 7, 8]);
    const fresh = await (await new MailStore(dir).open('r@example.test')).folder('INBOX');
    assert.equal(fresh.firstRecentUid, 9, 'the mark is persisted');
    assert.deepEqual(fresh.unclaimedRecent(), []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('idle folders are forgotten beyond a bound; watched ones stay', async () => {
  const dir = tmp();
  try {
    const store = new MailStore(dir);
    const acc = await store.open('many@example.test');
    const inbox = await acc.folder('INBOX');
    const stop = inbox.watch();
    for (let i = 0; i < 300; i++) {
      await acc.createFolder(`F${i}`);
      await acc.folder(`F${i}`);
    }
    const cached = (store as unknown as { folders: Map<string, unknown> }).folders;
    assert.ok(cached.size <= 256, `cache holds ${cached.size}`);
    assert.equal(await acc.folder('INBOX'), inbox, 'the watched folder is still the shared one');
    stop();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('session lock on a shared file system: a holder on another host counts while it touches the lock, a dead one here does not', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-hold-'));
  try {
    const file = path.join(dir, 'dovecot-pop3-session.lock');
    const release = await tryHoldLock(file);
    assert.ok(release, 'free: taken');
    assert.match(fs.readFileSync(file, 'latin1'), new RegExp(`^${process.pid}@`));
    assert.equal(await tryHoldLock(file), null, 'held by this live process');
    await release();
    // pid 1 exists on every Linux host: on another host's replica it says nothing about the holder
    fs.writeFileSync(file, '1@replica-elsewhere');
    assert.equal(await tryHoldLock(file), null, 'another host, touched just now: held');
    const old = new Date(Date.now() - 4 * 60_000);
    fs.utimesSync(file, old, old);
    const takeover = await tryHoldLock(file);
    assert.ok(takeover, 'another host, untouched for 4 minutes: taken over');
    await takeover();
    // this host, a pid that is not running
    fs.writeFileSync(file, `2147483646@${os.hostname()}`);
    const fromDead = await tryHoldLock(file);
    assert.ok(fromDead, 'this host, dead pid: taken over');
    await fromDead();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a process killed between the copies of one ingestAll: rollBackInterrupted removes the copies in place, and the retry stores each once', async () => {
  const dir = tmp();
  const targets = [{ folder: 'A', create: true }, { folder: 'B', create: true, flags: ['\\Flagged'] }, {}];
  // the child is killed (SIGKILL, no undo runs) as it moves the third copy into place (A, B in place)
  const child = `
    import fs from 'node:fs';
    import { MailStore } from ${JSON.stringify(new URL("../src/index.ts", import.meta.url).href)};
    const rename = fs.promises.rename;
    let n = 0;
    fs.promises.rename = async (a, b) => { if (/[/]new[/]/.test(String(b)) && ++n === 2) process.kill(process.pid, 'SIGKILL'); return rename(a, b); };
    await new MailStore(${JSON.stringify(dir)}).ingestAll('u@example.test', Buffer.from(${JSON.stringify(msg('once').toString())}), ${JSON.stringify(targets)});`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child], { encoding: 'utf8' });
  assert.equal(r.signal, 'SIGKILL', r.stderr);
  const store = new MailStore(dir);
  const root = store.mailboxPath('u@example.test');
  const count = (folder: string): number => ['new', 'cur'].reduce((n, sub) => n + fs.readdirSync(path.join(folder === 'INBOX' ? root : path.join(root, `.${folder}`), sub)).length, 0);
  assert.deepEqual([count('A'), count('B'), count('INBOX')], [1, 1, 0], 'the crash left two copies of three in place');
  assert.equal(fs.readdirSync(root).filter((n) => n.startsWith('.hearth-ingest.')).length, 1, 'and its journal');
  assert.equal(await store.rollBackInterrupted('u@example.test'), 1);
  assert.deepEqual([count('A'), count('B'), count('INBOX')], [0, 0, 0]);
  assert.equal(fs.readdirSync(path.join(root, '.A', 'tmp')).length + fs.readdirSync(path.join(root, '.B', 'tmp')).length, 0, 'no staged copy left');
  await store.ingestAll('u@example.test', msg('once'), targets);
  assert.deepEqual([count('A'), count('B'), count('INBOX')], [1, 1, 1]);
  assert.equal(fs.readdirSync(root).filter((n) => n.startsWith('.hearth-ingest.')).length, 0, 'a finished ingest leaves no journal');
  assert.equal(await store.rollBackInterrupted('u@example.test'), 0, 'nothing to undo once it finished');
  assert.deepEqual([count('A'), count('B'), count('INBOX')], [1, 1, 1]);
  fs.rmSync(dir, { recursive: true, force: true });
});
