import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, mountTmpfs, tempDir } from '@hearth/testkit';
import { appSql, backupStack, type BackupStack } from './helpers.ts';

/**
 * What goes wrong: a wrong password, a missing or damaged repository, a snapshot from a newer
 * Hearth, an unknown app, a full disk, a database server that is down. Each is one clear
 * line and exit status 1, and what is in place stays as it was.
 */

let s: BackupStack;
let scratch: string;
let wiki: Record<string, string>;
const wikiFile = (): string => path.join(s.t.dataDir, 'apps', 'wiki', 'data', 'page.txt');
const blogFile = (): string => path.join(s.t.dataDir, 'apps', 'blog', 'data', 'post.txt');

async function fails(args: string[], pattern: RegExp, env: Record<string, string> = {}): Promise<void> {
  const r = await s.cli(args, env);
  assert.equal(r.code, 1, `hearth ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
}

before(async () => {
  s = await backupStack();
  scratch = tempDir('hearth-backup-scratch-');
  await s.ok(['user', 'add', 'dora', '--email', 'dora@example.test', '--password-stdin'], 'dora-password-1\n');
  wiki = await s.install('wiki', { localstorage: {}, mysql: {} });
  await s.install('blog', { localstorage: {} });
  fs.writeFileSync(wikiFile(), 'version 1\n');
  fs.writeFileSync(blogFile(), 'post 1\n');
  await appSql('mysql', wiki, "CREATE TABLE pages (title TEXT); INSERT INTO pages VALUES ('home v1'); CREATE TABLE edits (title TEXT)");
  await appSql('mysql', wiki, 'CREATE TRIGGER pages_edit AFTER UPDATE ON pages FOR EACH ROW INSERT INTO edits VALUES (NEW.title); CREATE VIEW titles AS SELECT UPPER(title) AS t FROM pages');
  await s.ok(['backup', 'create']);
  fs.writeFileSync(wikiFile(), 'version 2\n');
  fs.writeFileSync(blogFile(), 'post 2\n');
  await appSql('mysql', wiki, "UPDATE pages SET title = 'home v2'");
});
after(async () => {
  await s?.cleanup();
  fs.rmSync(scratch, { recursive: true, force: true });
});

describe('the repository', () => {
  it('a wrong password is named as such, for every command', async () => {
    const wrong = path.join(scratch, 'wrong-pw');
    fs.writeFileSync(wrong, 'not the password\n', { mode: 0o600 });
    for (const args of [['backup', 'list'], ['backup', 'create'], ['backup', 'restore', 'latest'], ['backup', 'verify']]) {
      await fails(args, /wrong password for the backup repository/, { HEARTH_BACKUP_PASSWORD_FILE: wrong });
    }
    assert.equal(fs.readFileSync(wikiFile(), 'utf8'), 'version 2\n');
  });

  it('a missing repository, an unset one, and a password file others can read are refused', async () => {
    const missing = path.join(scratch, 'no-repo');
    await fails(['backup', 'list'], /no restic repository at .*run "hearth backup create"/, { HEARTH_BACKUP_REPOSITORY: missing });
    await fails(['backup', 'restore', 'latest'], /no restic repository at/, { HEARTH_BACKUP_REPOSITORY: missing });
    await fails(['backup', 'list'], /no backup repository: set HEARTH_BACKUP_REPOSITORY/, { HEARTH_BACKUP_REPOSITORY: '' });
    const open = path.join(scratch, 'open-pw');
    fs.writeFileSync(open, 'x\n', { mode: 0o644 });
    await fails(['backup', 'list'], /readable by others; chmod 600/, { HEARTH_BACKUP_PASSWORD_FILE: open });
    await fails(['backup', 'list'], /invalid setting HEARTH_BACKUP_SCHEDULE/, { HEARTH_BACKUP_SCHEDULE: '25:00' });
  });

  it('unknown snapshots and apps are refused by name', async () => {
    await fails(['backup', 'restore', 'deadbeef'], /no such snapshot: deadbeef/);
    await fails(['backup', 'restore', '../etc'], /no such snapshot/);
    await fails(['backup', 'create', '--app', 'nope'], /no such app: nope/);
    await fails(['backup', 'restore', 'latest', '--app', 'nope'], /holds no app nope/);
    assert.equal((await s.cli(['backup', 'restore'])).code, 2);
  });

  it('a snapshot from a newer Hearth is refused before anything is touched', async () => {
    const stage = path.join(scratch, 'newer');
    fs.mkdirSync(path.join(stage, 'hearth'), { recursive: true });
    const manifest = { format: 1, hearthVersion: '99.0.0', schemaVersion: 999, createdAt: new Date().toISOString(), scope: 'platform', store: 'sqlite', apps: [], skipped: [] };
    fs.writeFileSync(path.join(stage, 'hearth', 'manifest.json'), JSON.stringify(manifest));
    const planted = await s.restic(['backup', '--tag', 'hearth', '--tag', 'platform', 'hearth'], stage);
    assert.equal(planted.code, 0, planted.out);
    await fails(['backup', 'restore', 'latest'], /written by a newer Hearth \(99\.0\.0, schema 999/);
    assert.equal(fs.readFileSync(wikiFile(), 'utf8'), 'version 2\n');
    const id = /snapshot ([0-9a-f]{8}) saved/.exec(planted.out)![1]!;
    assert.equal((await s.restic(['forget', id])).code, 0);
  });
});

describe('restoring one app', () => {
  it('a restore that fails part-way (MySQL down) leaves files and databases as they were', async () => {
    await fails(['backup', 'restore', 'latest', '--app', 'wiki'], /MySQL/, { HEARTH_MYSQL_ADMIN_URL: `mysql://root@127.0.0.1:${await freePort()}` });
    assert.equal(fs.readFileSync(wikiFile(), 'utf8'), 'version 2\n');
    assert.equal(await appSql('mysql', wiki, 'SELECT title FROM pages'), 'home v2');
    assert.equal(await appSql('mysql', wiki, 'SELECT t FROM titles'), 'HOME V2');
    assert.deepEqual(fs.readdirSync(path.join(s.t.dataDir, 'backup')).filter((f) => f.startsWith('restore-')), [], 'nothing left aside');
  });

  it('brings back that app (files, database, credentials) and leaves the others alone', async () => {
    const out = await s.ok(['backup', 'restore', 'latest', '--app', 'wiki']);
    assert.match(out, /data folder of app wiki/);
    assert.doesNotMatch(out, /blog|directory store/);
    assert.equal(fs.readFileSync(wikiFile(), 'utf8'), 'version 1\n');
    assert.equal(await appSql('mysql', wiki, 'SELECT title FROM pages'), 'home v1');
    // the restored database's view and trigger replaced the ones in place (tables with triggers cannot simply be renamed across)
    assert.equal(await appSql('mysql', wiki, 'SELECT t FROM titles'), 'HOME V1');
    assert.equal(await appSql('mysql', wiki, 'SELECT COUNT(*) FROM edits'), '0');
    await appSql('mysql', wiki, "UPDATE pages SET title = 'home v3'");
    assert.equal(await appSql('mysql', wiki, 'SELECT title FROM edits'), 'home v3');
    assert.equal(fs.readFileSync(blogFile(), 'utf8'), 'post 2\n');
  });

  it('--to extracts the snapshot for inspection without applying it', async () => {
    const dir = path.join(scratch, 'extract');
    const out = await s.ok(['backup', 'restore', 'latest', '--app', 'blog', '--to', dir]);
    assert.match(out, /files into/);
    assert.equal(fs.readFileSync(path.join(dir, 'apps', 'blog', 'data', 'post.txt'), 'utf8'), 'post 1\n');
    assert.equal(fs.existsSync(path.join(dir, 'apps', 'wiki')), false);
    assert.equal(fs.readFileSync(blogFile(), 'utf8'), 'post 2\n');
  });
});

describe('retention', () => {
  it('prune keeps the configured series per scope (the platform and each app apart)', async () => {
    await s.ok(['backup', 'create', '--app', 'blog']);
    await s.ok(['backup', 'create', '--app', 'blog']);
    const keepOne = { HEARTH_BACKUP_KEEP_DAILY: '1', HEARTH_BACKUP_KEEP_WEEKLY: '0', HEARTH_BACKUP_KEEP_MONTHLY: '0' };
    const r = await s.cli(['backup', 'prune'], keepOne);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /kept 2 snapshot\(s\), removed 1/);
    const scopes = (JSON.parse(await s.ok(['backup', 'list', '--json'])) as { scope: string }[]).map((b) => b.scope).sort();
    assert.deepEqual(scopes, ['blog', 'platform']);
  });
});

describe('damage and full disks', () => {
  it('a damaged repository fails verify and restore with a clear line, and nothing is restored', async () => {
    fs.writeFileSync(wikiFile(), 'version 3\n');
    const packs = fs.readdirSync(path.join(s.repo, 'data'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    const copies = packs.map((p) => {
      const file = path.join(p.parentPath, p.name);
      const orig = fs.readFileSync(file);
      fs.chmodSync(file, 0o600);
      const bad = Buffer.from(orig);
      for (let i = 0; i < bad.length; i += 97) bad[i] = bad[i]! ^ 0xff;
      fs.writeFileSync(file, bad);
      return { file, orig };
    });
    try {
      await fails(['backup', 'verify', '--read-data'], /verify failed/);
      await fails(['backup', 'restore', 'latest', '--app', 'blog'], /restore failed/);
      assert.equal(fs.readFileSync(wikiFile(), 'utf8'), 'version 3\n');
      assert.equal(fs.readFileSync(blogFile(), 'utf8'), 'post 2\n');
    } finally {
      for (const c of copies) fs.writeFileSync(c.file, c.orig);
    }
    assert.match(await s.ok(['backup', 'verify', '--read-data']), /no errors were found/);
  });

  it('a full disk during backup and during restore: one clear line, the data in place intact', async (t) => {
    const mnt = path.join(scratch, 'full');
    fs.mkdirSync(mnt);
    const disk = mountTmpfs(mnt, 4 * 1024 * 1024);
    if (typeof disk === 'string') return t.skip(disk);
    try {
      // backup: the repository sits on the full disk
      const big = path.join(s.t.dataDir, 'apps', 'blog', 'data', 'big.bin');
      fs.writeFileSync(big, randomBytes(6 * 1024 * 1024));
      await s.ok(['backup', 'create', '--app', 'blog']);
      await fails(['backup', 'create', '--app', 'blog'], /no space left on device/, { HEARTH_BACKUP_REPOSITORY: path.join(mnt, 'repo') });
      // restore: the data dir sits on the full disk
      const full = path.join(mnt, 'data');
      fs.cpSync(s.t.dataDir, full, { recursive: true, filter: (src) => !src.includes(`${path.sep}backup${path.sep}`) && !src.endsWith('big.bin') });
      fs.writeFileSync(path.join(full, 'apps', 'blog', 'data', 'post.txt'), 'post on the small disk\n');
      await fails(['backup', 'restore', 'latest', '--app', 'blog'], /no space left on device/, { HEARTH_DATA_DIR: full });
      assert.equal(fs.readFileSync(path.join(full, 'apps', 'blog', 'data', 'post.txt'), 'utf8'), 'post on the small disk\n');
      assert.deepEqual(fs.readdirSync(path.join(full, 'backup')).filter((f) => f.startsWith('restore-')), []);
      fs.rmSync(big);
    } finally {
      disk.unmount();
    }
  });
});
