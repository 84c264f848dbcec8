import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCommand, waitFor } from '@hearth/testkit';
import { PASSWORDS, sftpStack, type SftpStack } from './helpers.ts';

/** OpenSSH's sftp and lftp against the daemon: who gets in, where they land, what they may do. */

let s: SftpStack;
/** the per-address cap of this stack: the tests before the last one never hold more than two connections */
const PER_ADDRESS = 3;
const asRoot = process.getuid?.() === 0;

before(async () => {
  s = await sftpStack({ HEARTH_SFTP_QUOTA_MB: '2', HEARTH_SFTP_MAX_CONNECTIONS_PER_ADDRESS: String(PER_ADDRESS) });
  fs.writeFileSync(path.join(s.scratch, 'upload.txt'), 'uploaded over sftp\n');
});
after(() => s?.cleanup());

describe('who gets in', () => {
  it('a user on the access list uploads and downloads with OpenSSH sftp; files belong to the manifest uid', async () => {
    const r = await s.sftp('alice@wiki.example.test', [`put ${path.join(s.scratch, 'upload.txt')} notes.txt`, 'mkdir docs', `get notes.txt ${path.join(s.scratch, 'back.txt')}`, 'ls -l'], { password: PASSWORDS.alice });
    assert.equal(r.code, 0, r.out);
    assert.equal(fs.readFileSync(path.join(s.wikiData, 'notes.txt'), 'utf8'), 'uploaded over sftp\n');
    assert.equal(fs.readFileSync(path.join(s.scratch, 'back.txt'), 'utf8'), 'uploaded over sftp\n');
    if (asRoot) {
      for (const f of ['notes.txt', 'docs']) {
        const st = fs.statSync(path.join(s.wikiData, f));
        assert.deepEqual([st.uid, st.gid], [33, 33], f);
      }
    }
    assert.match(r.out, /notes\.txt/);
  });

  it('lftp works the same way (the app may also be named by its id)', async () => {
    const r = await s.lftp('alice@wiki', PASSWORDS.alice, [`put ${path.join(s.scratch, 'upload.txt')} -o lftp.txt`, 'cls -l', 'cat notes.txt']);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /uploaded over sftp/);
    assert.equal(fs.readFileSync(path.join(s.wikiData, 'lftp.txt'), 'utf8'), 'uploaded over sftp\n');
  });

  it("requests are applied in the order sent: lftp's pipelined WRITE, FSETSTAT (size, times) and CLOSE leave the data written", async () => {
    // lftp sends these three without waiting for replies; applied out of order, the CLOSE could beat the
    // WRITE and the FSETSTAT then grew the empty file to its size with NUL bytes (a flake once seen here).
    const { Client } = await import('ssh2');
    const c = new Client();
    await new Promise<void>((resolve, reject) => c.on('ready', () => resolve()).on('error', reject).connect({ host: '127.0.0.1', port: s.port, username: 'alice@wiki.example.test', password: PASSWORDS.alice }));
    try {
      const sftp = await new Promise<import('ssh2').SFTPWrapper>((resolve, reject) => c.sftp((err, x) => (err ? reject(err) : resolve(x))));
      const replies: string[] = [];
      for (let i = 0; i < 20; i++) {
        const data = Buffer.alloc(24 * 1024 + i, `pipelined ${i} `);
        const handle = await new Promise<Buffer>((resolve, reject) => sftp.open(`pipelined-${i}.txt`, 'w', (err, h) => (err ? reject(err) : resolve(h))));
        const mtime = 1_700_000_000 + i;
        await Promise.all([
          new Promise<void>((resolve) => sftp.write(handle, data, 0, data.length, 0, (err) => resolve(void replies.push(`write ${i} ${err?.message ?? 'ok'}`)))),
          new Promise<void>((resolve) => sftp.fsetstat(handle, { size: data.length, atime: mtime, mtime }, (err) => resolve(void replies.push(`fsetstat ${i} ${err?.message ?? 'ok'}`)))),
          new Promise<void>((resolve) => sftp.close(handle, (err) => resolve(void replies.push(`close ${i} ${err?.message ?? 'ok'}`)))),
        ]);
        const file = path.join(s.wikiData, `pipelined-${i}.txt`);
        assert.ok(fs.readFileSync(file).equals(data), `pipelined-${i}.txt holds what was written`);
        assert.equal(fs.statSync(file).mtimeMs, mtime * 1000);
        fs.rmSync(file);
      }
      assert.deepEqual(replies, Array.from({ length: 20 }, (_, i) => [`write ${i} ok`, `fsetstat ${i} ok`, `close ${i} ok`]).flat(), 'answered in order, all ok');
    } finally {
      c.end();
    }
  });

  it('an admin gets in without being on the access list', async () => {
    const r = await s.sftp('ada@wiki.example.test', ['ls'], { password: PASSWORDS.ada });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /notes\.txt/);
  });

  it('a user outside the access list, a wrong password, an app without the ftp option and a bare user name are refused', async () => {
    for (const [user, password] of [
      ['bob@wiki.example.test', PASSWORDS.bob],
      ['alice@wiki.example.test', 'not-her-password'],
      ['alice@plain.example.test', PASSWORDS.alice],
      ['alice@nope.example.test', PASSWORDS.alice],
      ['alice', PASSWORDS.alice],
    ] as const) {
      const r = await s.sftp(user, ['ls'], { password });
      assert.notEqual(r.code, 0, `${user}: ${r.out}`);
      assert.match(r.out, /Permission denied/, user);
    }
    const lf = await s.lftp('bob@wiki.example.test', PASSWORDS.bob, ['ls']);
    assert.notEqual(lf.code, 0, lf.out);
    const audit = JSON.parse(await s.ok(['audit', '--protocol', 'sftp', '--json', '--limit', '50'])) as { username: string; ok: boolean; detail: string | null }[];
    assert.ok(audit.some((e) => e.username === 'bob' && !e.ok && e.detail === 'not_allowed'), JSON.stringify(audit));
    assert.ok(audit.some((e) => e.username === 'alice' && e.ok));
  });

  it('a registered public key logs in; once deleted it does not', async () => {
    const key = path.join(s.scratch, 'id_ed25519');
    const gen = await runCommand('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'alice laptop', '-f', key]);
    assert.equal(gen.code, 0, gen.out);
    const before = await s.sftp('alice@wiki.example.test', ['ls'], { identity: key });
    assert.notEqual(before.code, 0, before.out);
    assert.match(await s.ok(['user', 'ssh-key', 'add', 'alice', '--file', `${key}.pub`]), /added ssh-ed25519 key SHA256:/);
    const fingerprint = (await runCommand('ssh-keygen', ['-l', '-f', `${key}.pub`])).stdout.split(' ')[1]!;
    const listed = JSON.parse(await s.ok(['user', 'ssh-key', 'list', 'alice', '--json'])) as { fingerprint: string; comment: string }[];
    assert.deepEqual(listed.map((k) => [k.fingerprint, k.comment]), [[fingerprint, 'alice laptop']], 'the fingerprint ssh-keygen prints');
    const r = await s.sftp('alice@wiki.example.test', ['ls'], { identity: key });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /notes\.txt/);
    // the key is alice's, not a way into an app she may not use
    assert.notEqual((await s.sftp('alice@plain.example.test', ['ls'], { identity: key })).code, 0);
    await s.ok(['user', 'ssh-key', 'del', 'alice', fingerprint]);
    assert.notEqual((await s.sftp('alice@wiki.example.test', ['ls'], { identity: key })).code, 0);
    const bad = await s.cli(['user', 'ssh-key', 'add', 'alice', 'ssh-ed25519 bm90IGEga2V5']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /not a ssh-ed25519 public key/);
  });

  it('the host key is made once, kept 0600, and the same after a restart', async () => {
    const file = path.join(s.t.dataDir, 'sftp', 'host_key');
    const first = fs.readFileSync(file, 'utf8');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);
    await s.restart();
    assert.equal(fs.readFileSync(file, 'utf8'), first);
    const r = await s.sftp('alice@wiki.example.test', ['ls'], { password: PASSWORDS.alice });
    assert.equal(r.code, 0, `the known_hosts entry from before still matches: ${r.out}`);
  });
});

describe('the chroot', () => {
  it('".." stops at the data folder; paths and symlinks leading out are refused; symlinks cannot be made', async () => {
    fs.symlinkSync('/etc', path.join(s.wikiData, 'etc-link'));
    fs.symlinkSync('notes.txt', path.join(s.wikiData, 'inside-link'));
    const r = await s.sftp('alice@wiki.example.test', ['cd ../../..', 'pwd', 'ls', `get ../../hearth.db ${path.join(s.scratch, 'stolen.db')}`, `get etc-link/passwd ${path.join(s.scratch, 'passwd')}`, 'ls etc-link/', `get inside-link ${path.join(s.scratch, 'via-link.txt')}`, 'symlink /etc made-link', `put ${path.join(s.scratch, 'upload.txt')} ../../escaped.txt`], { password: PASSWORDS.alice });
    assert.match(r.out, /Remote working directory: \/\n/);
    assert.equal(fs.existsSync(path.join(s.scratch, 'stolen.db')), false, 'hearth.db is not reachable');
    assert.equal(fs.existsSync(path.join(s.scratch, 'passwd')), false);
    // OpenSSH's sftp reports any refused stat as "not found"; the daemon logs why.
    assert.match(r.out, /File "\/etc-link\/passwd" not found/);
    assert.match(s.daemon.output(), /"reason":"\/etc-link\/passwd is outside the app's data folder".*"msg":"sftp path refused"/);
    assert.equal(fs.readFileSync(path.join(s.scratch, 'via-link.txt'), 'utf8'), 'uploaded over sftp\n');
    assert.equal(fs.existsSync(path.join(s.wikiData, 'made-link')), false);
    // "../../escaped.txt" is "/escaped.txt" inside the chroot
    assert.equal(fs.existsSync(path.join(s.wikiData, 'escaped.txt')), true);
    assert.equal(fs.existsSync(path.join(s.t.dataDir, 'escaped.txt')), false);
    assert.equal(fs.existsSync(path.join(path.dirname(s.t.dataDir), 'escaped.txt')), false);
  });

  it('an upload over the quota fails with a clear message and leaves the files in place', async () => {
    const big = path.join(s.scratch, 'big.bin');
    fs.writeFileSync(big, Buffer.alloc(3 * 1024 * 1024, 7));
    const r = await s.sftp('alice@wiki.example.test', [`put ${big} big.bin`, 'ls'], { password: PASSWORDS.alice });
    assert.match(r.out, /write remote "\/big\.bin": Failure/);
    assert.match(s.daemon.output(), /"app":"wiki".*"msg":"sftp upload refused: over the quota"/);
    assert.ok(fs.statSync(path.join(s.wikiData, 'big.bin')).size < 3 * 1024 * 1024);
    assert.equal(fs.readFileSync(path.join(s.wikiData, 'notes.txt'), 'utf8'), 'uploaded over sftp\n');
  });

  it('a user disabled mid-session is out within a second or two', async () => {
    const { Client } = await import('ssh2');
    const c = new Client();
    const closed = new Promise<void>((resolve) => c.on('close', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      c.on('ready', () => resolve()).on('error', reject).connect({ host: '127.0.0.1', port: s.port, username: 'alice@wiki.example.test', password: PASSWORDS.alice });
    });
    await new Promise<void>((resolve, reject) => c.sftp((err) => (err ? reject(err) : resolve())));
    await s.ok(['user', 'disable', 'alice']);
    const t0 = Date.now();
    await waitFor(async () => (await Promise.race([closed.then(() => true), new Promise((r) => setTimeout(() => r(false), 100))])) as boolean, 5000);
    assert.ok(Date.now() - t0 < 3000);
    await s.ok(['user', 'enable', 'alice']);
    // The daemon sees the change on its next directory reload; later tests log in as alice.
    await waitFor(async () => (await s.sftp('alice@wiki.example.test', ['ls'], { password: PASSWORDS.alice })).code === 0, 20_000);
  });
});

describe('the connection layer (shared/lineserver)', () => {
  it('an address over its share of connections is refused before the handshake; a slot freed lets OpenSSH sftp in again', async () => {
    const { Client } = await import('ssh2');
    const held: InstanceType<typeof Client>[] = [];
    try {
      for (let i = 0; i < PER_ADDRESS; i++) {
        const c = new Client();
        await new Promise<void>((resolve, reject) => c.on('ready', () => resolve()).on('error', reject).connect({ host: '127.0.0.1', port: s.port, username: 'alice@wiki.example.test', password: PASSWORDS.alice, readyTimeout: 20_000 }));
        held.push(c);
      }
      const refused = await s.sftp('alice@wiki.example.test', ['ls'], { password: PASSWORDS.alice });
      assert.notEqual(refused.code, 0, refused.out);
      assert.doesNotMatch(refused.out, /notes\.txt/);
      const logged = new RegExp(`"msg":"SFTP connection refused: ${PER_ADDRESS} connections already open from this address \\(limit ${PER_ADDRESS}\\)"`);
      await waitFor(async () => logged.test(s.daemon.output()), 10_000);
      held.pop()!.end();
      await waitFor(async () => (await s.sftp('alice@wiki.example.test', ['ls'], { password: PASSWORDS.alice })).code === 0, 20_000);
    } finally {
      for (const c of held) c.end();
    }
  });
});
