import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { loadConfig, type HearthConfig } from '@hearth/config';
import { Directory } from '@hearth/directory';
import { tempDir } from '@hearth/testkit';

const mode = (p: string): string => `0${(fs.statSync(p).mode & 0o777).toString(8)}`;
const STORE_FILES = ['hearth.db', 'hearth.db-wal', 'hearth.db-shm'];

/** What another local account sees: `cat` as nobody (only meaningful when the tests run as root). */
function readAsNobody(file: string): { status: number | null; stderr: string } {
  const r = spawnSync('runuser', ['-u', 'nobody', '--', 'cat', file], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

describe('the directory store on disk', () => {
  let parent: string;
  let umask: number;
  const config = (dataDir: string): HearthConfig => loadConfig({ ...process.env, HEARTH_DATA_DIR: dataDir, HEARTH_DATABASE_URL: '' });

  before(() => {
    // the usual umask and a world-traversable parent, so only Hearth's own modes keep other users out
    umask = process.umask(0o022);
    parent = tempDir();
    fs.chmodSync(parent, 0o755);
  });
  after(() => {
    process.umask(umask);
    fs.rmSync(parent, { recursive: true, force: true });
  });

  it('creates the data directory 0700 and the store, its WAL and shared memory 0600, unreadable by other users', async () => {
    const dataDir = path.join(parent, 'fresh');
    const d = await Directory.open(config(dataDir));
    try {
      await d.addUser({ username: 'alice', email: 'alice@example.test', password: 'correct horse' });
      assert.equal(mode(dataDir), '0700');
      for (const f of STORE_FILES) assert.equal(mode(path.join(dataDir, f)), '0600', f);
      if (process.getuid?.() === 0) {
        for (const f of STORE_FILES) {
          const r = readAsNobody(path.join(dataDir, f));
          assert.notEqual(r.status, 0, `nobody read ${f}`);
          assert.match(r.stderr, /Permission denied/);
        }
        fs.chmodSync(dataDir, 0o755); // even with the directory opened up, the files themselves refuse
        assert.match(readAsNobody(path.join(dataDir, 'hearth.db')).stderr, /Permission denied/);
      }
    } finally {
      await d.close();
    }
  });

  it('tightens an existing store and data directory at start, with one log line saying so', async () => {
    const dataDir = path.join(parent, 'old');
    fs.mkdirSync(dataDir, { mode: 0o755 });
    const file = path.join(dataDir, 'hearth.db');
    // an older Hearth's store: 0644, and an open connection keeps its -wal and -shm (SQLite copies the 0644)
    const old = new Database(file);
    old.pragma('journal_mode = WAL');
    old.exec('CREATE TABLE t (x)');
    fs.chmodSync(file, 0o644);
    old.exec('INSERT INTO t VALUES (1)');
    for (const f of STORE_FILES) fs.chmodSync(path.join(dataDir, f), 0o644);
    const lines: { msg: string; tightened?: string[] }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()));
        done();
      },
    });
    const d = await Directory.open(config(dataDir), { logger: pino({ level: 'info' }, sink) });
    try {
      assert.equal(mode(dataDir), '0700');
      for (const f of STORE_FILES) assert.equal(mode(path.join(dataDir, f)), '0600', f);
      const said = lines.filter((l) => /permission/i.test(l.msg));
      assert.equal(said.length, 1, JSON.stringify(lines));
      assert.deepEqual(said[0]!.tightened, ['data directory 0755→0700', 'hearth.db 0644→0600', 'hearth.db-wal 0644→0600', 'hearth.db-shm 0644→0600']);
    } finally {
      await d.close();
      old.close();
    }
    // already private: nothing to say the next time
    lines.length = 0;
    const again = await Directory.open(config(dataDir), { logger: pino({ level: 'info' }, sink) });
    await again.close();
    assert.equal(lines.filter((l) => /permission/i.test(l.msg)).length, 0);
  });
});
