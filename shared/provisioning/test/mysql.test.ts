import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { closedPortUrl, dropEverything, mysqlLeftovers, stack, uniqueId, type Stack } from './helpers.ts';

/** Connects as the app would, from its variables. */
async function asApp(vars: Record<string, string>, database?: string): Promise<mysql.Connection> {
  return mysql.createConnection({ host: '127.0.0.1', port: Number(vars.CLOUDRON_MYSQL_PORT), user: vars.CLOUDRON_MYSQL_USERNAME, password: vars.CLOUDRON_MYSQL_PASSWORD, database, connectTimeout: 5000 });
}

async function canUse(vars: Record<string, string>, database: string): Promise<boolean> {
  try {
    const c = await asApp(vars, database);
    await c.end();
    return true;
  } catch (err) {
    assert.match((err as Error).message, /Access denied/);
    return false;
  }
}

describe('mysql addon (MariaDB on 127.0.0.1:3306)', () => {
  let s: Stack;
  const a = uniqueId('a.b-c');
  // 64 characters, the longest id there is, with dots and dashes.
  const b = uniqueId('B'.repeat(20) + '.x-'.repeat(10)).padEnd(64, 'z').slice(0, 64);
  const multi = uniqueId('multi');
  const ids = [a, b, multi];
  let varsA: Record<string, string>;
  let varsB: Record<string, string>;

  before(async () => {
    s = await stack();
    varsA = await s.install(a, { mysql: {} });
    varsB = await s.install(b, { mysql: {} });
  });
  after(async () => {
    await dropEverything(ids.map((id) => s.dbName(id)));
    await s.t.cleanup();
  });

  it('hands out the seed variables with names derived safely from the app id', () => {
    assert.equal(b.length, 64);
    for (const [id, vars] of [[a, varsA], [b, varsB]] as const) {
      const name = s.dbName(id);
      assert.match(name, /^[a-z0-9]+_[0-9a-f]{8}$/);
      assert.ok(name.length <= 32);
      assert.equal(vars.CLOUDRON_MYSQL_DATABASE, name);
      assert.equal(vars.CLOUDRON_MYSQL_USERNAME, name);
      assert.equal(vars.CLOUDRON_MYSQL_HOST, '127.0.0.1');
      assert.equal(vars.CLOUDRON_MYSQL_PORT, '3306');
      assert.equal(vars.CLOUDRON_MYSQL_URL, `mysql://${name}:${vars.CLOUDRON_MYSQL_PASSWORD}@127.0.0.1:3306/${name}`);
      assert.ok(vars.CLOUDRON_MYSQL_PASSWORD!.length >= 32);
      assert.equal(vars.CLOUDRON_MYSQL_DATABASE_PREFIX, undefined);
    }
    assert.notEqual(varsA.CLOUDRON_MYSQL_PASSWORD, varsB.CLOUDRON_MYSQL_PASSWORD);
  });

  it("lets an app into its own database with utf8mb4, and not into another app's", async () => {
    const c = await asApp(varsA, varsA.CLOUDRON_MYSQL_DATABASE);
    const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT @@character_set_database AS cs, @@collation_database AS co');
    assert.deepEqual({ ...rows[0] }, { cs: 'utf8mb4', co: 'utf8mb4_unicode_ci' });
    await c.query('CREATE TABLE t (x INT)');
    await c.query('INSERT INTO t VALUES (1)');
    await assert.rejects(c.query(`SELECT * FROM \`${varsB.CLOUDRON_MYSQL_DATABASE}\`.t`), /denied/);
    await assert.rejects(c.query('CREATE DATABASE other'), /denied/);
    await c.end();
    assert.equal(await canUse(varsA, varsB.CLOUDRON_MYSQL_DATABASE!), false);
    assert.equal(await canUse(varsB, varsB.CLOUDRON_MYSQL_DATABASE!), true);
    // B's password is not A's
    assert.equal(await canUse({ ...varsA, CLOUDRON_MYSQL_PASSWORD: varsB.CLOUDRON_MYSQL_PASSWORD! }, varsA.CLOUDRON_MYSQL_DATABASE!), false);
  });

  it('multipleDatabases: databases starting with the prefix, and nothing else', async () => {
    const vars = await s.install(multi, { mysql: { multipleDatabases: true } });
    const prefix = vars.CLOUDRON_MYSQL_DATABASE_PREFIX!;
    assert.equal(prefix, `${s.dbName(multi)}_`);
    assert.equal(vars.CLOUDRON_MYSQL_URL, undefined);
    assert.equal(vars.CLOUDRON_MYSQL_DATABASE, undefined);
    const c = await asApp(vars);
    await c.query(`CREATE DATABASE \`${prefix}x\``);
    await c.query(`CREATE TABLE \`${prefix}x\`.t (x INT)`);
    const [cs] = await c.query<mysql.RowDataPacket[]>('SELECT default_character_set_name AS cs FROM information_schema.schemata WHERE schema_name = ?', [`${prefix}x`]);
    assert.ok(cs[0], 'the app sees its database');
    await assert.rejects(c.query('CREATE DATABASE other'), /denied/);
    // "_" in the prefix is no wildcard: one character off is another name
    await assert.rejects(c.query(`CREATE DATABASE \`${prefix.slice(0, -1)}Xx\``), /denied/);
    await assert.rejects(c.query(`SELECT * FROM \`${varsA.CLOUDRON_MYSQL_DATABASE}\`.t`), /denied/);
    await c.end();
  });

  it('re-install keeps the password; rotate changes it in the server and the variables together', async () => {
    const again = await s.install(a, { mysql: {} });
    assert.equal(again.CLOUDRON_MYSQL_PASSWORD, varsA.CLOUDRON_MYSQL_PASSWORD);
    assert.equal(await canUse(again, again.CLOUDRON_MYSQL_DATABASE!), true);
    const r = await s.cli(['app', 'rotate', a]);
    assert.equal(r.code, 0, r.stderr);
    const rotated = await s.appEnv(a);
    assert.notEqual(rotated.CLOUDRON_MYSQL_PASSWORD, varsA.CLOUDRON_MYSQL_PASSWORD);
    assert.equal(await canUse(rotated, rotated.CLOUDRON_MYSQL_DATABASE!), true);
    assert.equal(await canUse(varsA, varsA.CLOUDRON_MYSQL_DATABASE!), false);
    varsA = rotated;
    // the table from before is still there
    const c = await asApp(rotated, rotated.CLOUDRON_MYSQL_DATABASE);
    const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT x FROM t');
    assert.equal(rows.length, 1);
    await c.end();
  });

  it('uninstall drops the databases and the user', async () => {
    for (const id of [a, b, multi]) {
      assert.notDeepEqual(await mysqlLeftovers(s.dbName(id)), []);
      const r = await s.cli(['app', 'uninstall', id]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await mysqlLeftovers(s.dbName(id)), []);
    }
  });

  it('install fails with the reason when the server is unreachable or not configured, leaving nothing', async () => {
    const id = uniqueId('down');
    ids.push(id);
    const url = await closedPortUrl('mysql');
    const r = await s.cli(['app', 'install', s.manifest({ mysql: {} }), '--id', id, '--domain', 'down.example.test'], { HEARTH_MYSQL_ADMIN_URL: url });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the mysql addon cannot connect to mysql:\/\/admin:\*\*\*@127\.0\.0\.1:\d+ \(HEARTH_MYSQL_ADMIN_URL\): .*ECONNREFUSED/);
    assert.doesNotMatch(r.stderr, /secret/);
    const none = await s.cli(['app', 'install', s.manifest({ mysql: {} }), '--id', id, '--domain', 'down.example.test'], { HEARTH_MYSQL_ADMIN_URL: '' });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /the mysql addon needs a server: set HEARTH_MYSQL_ADMIN_URL/);
    assert.equal((await s.cli(['app', 'show', id])).code, 1);
    assert.deepEqual(await mysqlLeftovers(s.dbName(id)), []);
  });

  it('refuses bad options by name', async () => {
    const r = await s.cli(['app', 'install', s.manifest({ mysql: { multipleDatabases: 'yes' } }), '--id', 'opt', '--domain', 'opt.example.test']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /invalid mysql addon option\.multipleDatabases/);
    const u = await s.cli(['app', 'install', s.manifest({ mysql: { charset: 'latin1' } }), '--id', 'opt', '--domain', 'opt.example.test']);
    assert.match(u.stderr, /invalid mysql addon option: unknown option charset/);
  });
});
