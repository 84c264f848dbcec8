import assert from 'node:assert/strict';
import path from 'node:path';
import { it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Directory, FIRST_GID_NUMBER, FIRST_UID_NUMBER, LATEST_SCHEMA_VERSION, MIGRATIONS } from '@hearth/directory';
import { SqliteStore } from '../src/sqlite.ts';
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

/** Three users written by a version-2 store, out of creation order. */
const V2_USERS = [
  ['uid-b', 'bea', '2021-05-01T00:00:00.000Z'],
  ['uid-a', 'ann', '2020-01-01T00:00:00.000Z'],
  ['uid-c', 'cid', '2022-09-09T00:00:00.000Z'],
];

const V2_GROUPS: [string, string, number][] = [
  ['gid-1', 'staff', FIRST_GID_NUMBER],
  ['gid-2', 'ops-old', FIRST_GID_NUMBER + 7],
];

for (const backend of ['sqlite', 'postgres'] as const) {
  it(`${backend}: versions 3 and 4 give existing users uid numbers in creation order, and new users and groups never reuse a number`, async () => {
    const t = await testEnv({ backend });
    const v2 = MIGRATIONS.filter((m) => m.version <= 2);
    const insertUser = `INSERT INTO users (id, username, email, display_name, role, active, password_hash, created_at) VALUES `;
    if (backend === 'sqlite') {
      const db = new Database(path.join(t.dataDir, 'hearth.db'));
      for (const m of v2) db.exec(m.sqlite);
      db.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', '2')").run();
      for (const [id, name, at] of V2_USERS) db.prepare(`${insertUser} (?, ?, ?, ?, 'user', 1, 'x', ?)`).run(id, name, `${name}@example.test`, name, at);
      for (const [id, name, gid] of V2_GROUPS) db.prepare('INSERT INTO groups (id, name, gid_number) VALUES (?, ?, ?)').run(id, name, gid);
      db.close();
    } else {
      const c = new pg.Client({ connectionString: t.config.databaseUrl! });
      await c.connect();
      for (const m of v2) await c.query(m.postgres);
      await c.query("INSERT INTO meta (key, value) VALUES ('schema_version', '2')");
      for (const [id, name, at] of V2_USERS) await c.query(`${insertUser} ($1, $2, $3, $4, 'user', true, 'x', $5)`, [id, name, `${name}@example.test`, name, at]);
      for (const [id, name, gid] of V2_GROUPS) await c.query('INSERT INTO groups (id, name, gid_number) VALUES ($1, $2, $3)', [id, name, gid]);
      await c.end();
    }
    let d = await Directory.open(t.config);
    const uidNumber = (name: string): number | undefined => d.findUser(name)?.uidNumber;
    assert.deepEqual(['ann', 'bea', 'cid'].map(uidNumber), [FIRST_UID_NUMBER, FIRST_UID_NUMBER + 1, FIRST_UID_NUMBER + 2]);
    const dan = await d.addUser({ username: 'dan', email: 'dan@example.test', password: 'long enough' });
    assert.equal(dan.uidNumber, FIRST_UID_NUMBER + 3);
    // Deleting the newest and the oldest user frees nothing: numbers are never handed out twice.
    await d.deleteUser('dan');
    await d.deleteUser('ann');
    const eve = await d.addUser({ username: 'eve', email: 'eve@example.test', password: 'long enough' });
    assert.equal(eve.uidNumber, FIRST_UID_NUMBER + 4);
    // Groups: the next gid follows the highest existing one, and the newest group's gid is not handed out again.
    const ops = await d.addGroup('ops');
    assert.equal(ops.gidNumber, FIRST_GID_NUMBER + 8);
    await d.deleteGroup('ops');
    assert.equal((await d.addGroup('ops2')).gidNumber, FIRST_GID_NUMBER + 9);
    await d.close();
    // ...and they survive a restart unchanged.
    d = await Directory.open(t.config);
    assert.deepEqual(['bea', 'cid', 'eve'].map(uidNumber), [FIRST_UID_NUMBER + 1, FIRST_UID_NUMBER + 2, FIRST_UID_NUMBER + 4]);
    await d.close();
    await t.cleanup();
  });
}
