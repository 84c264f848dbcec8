import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { scramVerifier } from '../src/databases/scram.ts';
import { closedPortUrl, dropEverything, pgLeftovers, pgQuery, PG_ADMIN_URL, stack, uniqueId, type Stack } from './helpers.ts';

/** Runs sql as the app, with the URL it was given (the local server trusts loopback: CONNECT rights are what keeps apps apart here). */
async function asApp<T extends pg.QueryResultRow>(vars: Record<string, string>, sql: string, database?: string): Promise<T[]> {
  const url = new URL(vars.CLOUDRON_POSTGRESQL_URL!);
  if (database) url.pathname = `/${database}`;
  const c = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

describe('postgresql addon (PostgreSQL on 127.0.0.1:5432)', () => {
  let s: Stack;
  const a = uniqueId('a.b-c');
  const b = uniqueId('x'.repeat(40) + '.-_').padEnd(64, '9').slice(0, 64);
  const ids = [a, b];
  let varsA: Record<string, string>;
  let varsB: Record<string, string>;

  before(async () => {
    s = await stack();
    varsA = await s.install(a, { postgresql: {} });
    varsB = await s.install(b, { postgresql: { locale: 'C.UTF-8' } });
  });
  after(async () => {
    await dropEverything(ids.map((id) => s.dbName(id)));
    await s.t.cleanup();
  });

  it('hands out the seed variables', () => {
    const name = s.dbName(a);
    const port = new URL(PG_ADMIN_URL).port || '5432';
    assert.equal(varsA.CLOUDRON_POSTGRESQL_URL, `postgres://${name}:${varsA.CLOUDRON_POSTGRESQL_PASSWORD}@127.0.0.1:${port}/${name}`);
    assert.equal(varsA.CLOUDRON_POSTGRESQL_HOST, '127.0.0.1');
    assert.equal(varsA.CLOUDRON_POSTGRESQL_PORT, port);
    assert.equal(varsA.CLOUDRON_POSTGRESQL_DATABASE, name);
    assert.equal(varsA.CLOUDRON_POSTGRESQL_USERNAME, name);
    assert.equal(varsB.CLOUDRON_POSTGRESQL_DATABASE, s.dbName(b));
  });

  it("the app owns its database; other apps' roles cannot connect to it", async () => {
    const [row] = await asApp<{ owner: string; u: string }>(varsA, 'SELECT pg_get_userbyid(datdba) AS owner, current_user AS u FROM pg_database WHERE datname = current_database()');
    assert.equal(row!.owner, varsA.CLOUDRON_POSTGRESQL_USERNAME);
    await asApp(varsA, 'CREATE TABLE t (x int); INSERT INTO t VALUES (1)');
    await assert.rejects(asApp(varsA, 'SELECT 1', varsB.CLOUDRON_POSTGRESQL_DATABASE), /permission denied for database/);
    await assert.rejects(asApp(varsB, 'SELECT 1', varsA.CLOUDRON_POSTGRESQL_DATABASE), /permission denied for database/);
    const [acl] = await pgQuery<{ acl: string }>('SELECT datacl::text AS acl FROM pg_database WHERE datname = $1', [s.dbName(a)]);
    assert.doesNotMatch(acl!.acl, /(^|[{,])=/, 'no privileges for PUBLIC');
  });

  it('the locale option sets LC_COLLATE and LC_CTYPE at creation', async () => {
    const [row] = await asApp<{ datcollate: string; datctype: string; enc: string }>(varsB, 'SELECT datcollate, datctype, pg_encoding_to_char(encoding) AS enc FROM pg_database WHERE datname = current_database()');
    assert.deepEqual({ ...row }, { datcollate: 'C.UTF-8', datctype: 'C.UTF-8', enc: 'UTF8' });
    const bad = await s.cli(['app', 'install', s.manifest({ postgresql: { locale: 'xx_NOPE.UTF-8' } }), '--id', `${a}-l`, '--domain', 'loc.example.test']);
    ids.push(`${a}-l`);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /postgresql addon: locale "xx_NOPE.UTF-8" is not usable/);
    assert.deepEqual(await pgLeftovers(s.dbName(`${a}-l`)), []);
    const quote = await s.cli(['app', 'install', s.manifest({ postgresql: { locale: "C'; DROP" } }), '--id', `${a}-l`, '--domain', 'loc.example.test']);
    assert.match(quote.stderr, /invalid postgresql addon option\.locale/);
  });

  it('whitelisted extensions can be created by the app; others cannot', async () => {
    for (const ext of ['citext', 'pg_trgm', 'uuid-ossp', 'hstore']) await asApp(varsA, `CREATE EXTENSION IF NOT EXISTS "${ext}"`);
    const made = await asApp<{ extname: string }>(varsA, 'SELECT extname FROM pg_extension ORDER BY 1');
    for (const ext of ['citext', 'pg_trgm', 'uuid-ossp', 'hstore']) assert.ok(made.some((e) => e.extname === ext), ext);
    // whitelisted but untrusted: created for the app up front
    const available = await pgQuery<{ name: string }>("SELECT name FROM pg_available_extensions WHERE name IN ('pg_stat_statements', 'postgres_fdw')");
    for (const { name } of available) {
      await asApp(varsA, `CREATE EXTENSION IF NOT EXISTS ${name}`);
      assert.ok((await asApp(varsA, `SELECT 1 FROM pg_extension WHERE extname = '${name}'`)).length, name);
    }
    // tablefunc is trusted (a database owner could create it) but not on the whitelist; dblink is neither
    const off = await pgQuery<{ name: string }>("SELECT name FROM pg_available_extensions WHERE name IN ('tablefunc', 'dblink', 'intarray', 'ltree')");
    assert.ok(off.length >= 2, 'the server has non-whitelisted extensions to try');
    for (const { name } of off) await assert.rejects(asApp(varsA, `CREATE EXTENSION ${name}`), /not available to apps|permission denied|superuser/, name);
    const after = await asApp<{ extname: string }>(varsA, 'SELECT extname FROM pg_extension');
    for (const { name } of off) assert.ok(!after.some((e) => e.extname === name), `${name} was not created`);
    // the guard cannot be switched off by the app
    await assert.rejects(asApp(varsA, 'DROP EVENT TRIGGER hearth_extension_guard'), /must be owner|permission denied/);
    await assert.rejects(asApp(varsA, 'DROP SCHEMA hearth CASCADE'), /must be owner|permission denied/);
    await assert.rejects(asApp(varsA, "SET session_replication_role = 'replica'"), /permission denied/);
  });

  it('stores SCRAM verifiers the server itself would make', async () => {
    const role = `hearth_scram_${process.pid}`;
    await pgQuery(`DROP ROLE IF EXISTS ${role}`);
    await pgQuery("SET password_encryption = 'scram-sha-256'; CREATE ROLE " + role + " PASSWORD 'pencil-123'");
    try {
      const [row] = await pgQuery<{ p: string }>('SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1', [role]);
      const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(row!.p)!;
      assert.equal(scramVerifier('pencil-123', Buffer.from(m[2]!, 'base64'), Number(m[1])), row!.p);
    } finally {
      await pgQuery(`DROP ROLE IF EXISTS ${role}`);
    }
  });

  it('re-install keeps the password; rotate changes it in the server and the variables', async () => {
    const verifier = async (): Promise<string> => (await pgQuery<{ p: string }>('SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1', [s.dbName(a)]))[0]!.p;
    const again = await s.install(a, { postgresql: {} });
    assert.equal(again.CLOUDRON_POSTGRESQL_PASSWORD, varsA.CLOUDRON_POSTGRESQL_PASSWORD);
    const matches = async (password: string): Promise<boolean> => {
      const v = await verifier();
      const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(v)!;
      return scramVerifier(password, Buffer.from(m[2]!, 'base64'), Number(m[1])) === v;
    };
    assert.ok(await matches(varsA.CLOUDRON_POSTGRESQL_PASSWORD!));
    assert.equal((await s.cli(['app', 'rotate', a])).code, 0);
    const rotated = await s.appEnv(a);
    assert.notEqual(rotated.CLOUDRON_POSTGRESQL_PASSWORD, varsA.CLOUDRON_POSTGRESQL_PASSWORD);
    assert.ok(await matches(rotated.CLOUDRON_POSTGRESQL_PASSWORD!));
    assert.equal((await asApp<{ x: number }>(rotated, 'SELECT x FROM t'))[0]!.x, 1);
  });

  it('uninstall drops the database and the role, even with the app connected', async () => {
    const held = new pg.Client({ connectionString: varsB.CLOUDRON_POSTGRESQL_URL });
    held.on('error', () => {});
    await held.connect();
    for (const id of [a, b]) {
      assert.equal((await pgLeftovers(s.dbName(id))).length, 2);
      const r = await s.cli(['app', 'uninstall', id]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await pgLeftovers(s.dbName(id)), []);
    }
    await held.end().catch(() => {});
  });

  it('install fails with the reason when the server is unreachable, leaving nothing', async () => {
    const id = uniqueId('down');
    ids.push(id);
    const r = await s.cli(['app', 'install', s.manifest({ postgresql: {} }), '--id', id, '--domain', 'down.example.test'], { HEARTH_POSTGRESQL_ADMIN_URL: await closedPortUrl('postgres', '/postgres') });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the postgresql addon cannot connect to postgres:\/\/admin:\*\*\*@127\.0\.0\.1:\d+\/postgres \(HEARTH_POSTGRESQL_ADMIN_URL\)/);
    assert.deepEqual(await pgLeftovers(s.dbName(id)), []);
  });
});
