import assert from 'node:assert/strict';
import path from 'node:path';
import { it } from 'node:test';
import Database from 'better-sqlite3';
import { Directory, LATEST_SCHEMA_VERSION, MIGRATIONS, SqliteStore } from '@hearth/directory';
import { tempDir, testEnv } from '@hearth/testkit';

it('a store file from schema version 1 migrates to the latest and keeps its data', async () => {
  const t = await testEnv();
  const file = path.join(t.dataDir, 'hearth.db');
  const db = new Database(file);
  db.exec(MIGRATIONS[0]!.sqlite);
  db.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', '1')").run();
  db.prepare("INSERT INTO users (id, username, email, display_name, role, active, password_hash, created_at) VALUES ('uid-1', 'old', 'old@example.test', 'Old', 'user', 1, 'x', '2020-01-01')").run();
  db.close();
  const d = await Directory.open(t.config);
  assert.equal(d.findUser('old')?.email, 'old@example.test');
  await d.store.kvSet('ns', 'k', 'v', null); // table from version 2
  await d.close();
  const check = new Database(file);
  assert.equal((check.prepare("SELECT value FROM meta WHERE key='schema_version'").get() as { value: string }).value, String(LATEST_SCHEMA_VERSION));
  check.close();
  await t.cleanup();
});

it('a store file from a newer version is refused and left untouched', async () => {
  const file = path.join(tempDir(), 'hearth.db');
  const s = new SqliteStore(file);
  await s.migrate();
  await s.close();
  const db = new Database(file);
  db.prepare("UPDATE meta SET value = '999' WHERE key = 'schema_version'").run();
  db.close();
  const again = new SqliteStore(file);
  await assert.rejects(again.migrate(), /newer Hearth \(schema 999/);
  await again.close();
  const check = new Database(file);
  assert.equal((check.prepare("SELECT value FROM meta WHERE key='schema_version'").get() as { value: string }).value, '999');
  check.close();
});
