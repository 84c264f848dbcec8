import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { closedPortUrl, cuttingProxy, dropEverything, MYSQL_ADMIN_URL, mysqlLeftovers, PG_ADMIN_URL, pgLeftovers, stack, uniqueId, type Stack } from './helpers.ts';

/** redis-server processes working in this test's data dir. */
function redisProcessesIn(dataDir: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return fs.readlinkSync(`/proc/${p}/cwd`).startsWith(dataDir) && fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('redis');
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function mysqlLogin(vars: Record<string, string>): Promise<boolean> {
  try {
    const c = await mysql.createConnection({ host: '127.0.0.1', port: Number(vars.CLOUDRON_MYSQL_PORT), user: vars.CLOUDRON_MYSQL_USERNAME, password: vars.CLOUDRON_MYSQL_PASSWORD, connectTimeout: 5000 });
    await c.end();
    return true;
  } catch {
    return false;
  }
}

describe('database addons: failures halfway leave nothing behind', () => {
  let s: Stack;
  const ids: string[] = [];
  const all = { mysql: {}, postgresql: {}, redis: {}, mongodb: {} };

  before(async () => {
    s = await stack({ HEARTH_MONGODB_ADMIN_URL: '' });
  });
  after(async () => {
    await dropEverything(ids.map((id) => s.dbName(id)));
    for (const pid of redisProcessesIn(s.t.dataDir)) process.kill(pid, 'SIGKILL');
    await s.t.cleanup();
  });

  it('an install failing at its last addon undoes the databases, users and redis of the others', async () => {
    const id = uniqueId('half.way');
    ids.push(id);
    const r = await s.cli(['app', 'install', s.manifest(all), '--id', id, '--domain', 'half.example.test']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the mongodb addon needs a server: set HEARTH_MONGODB_ADMIN_URL/);
    assert.deepEqual(await mysqlLeftovers(s.dbName(id)), []);
    assert.deepEqual(await pgLeftovers(s.dbName(id)), []);
    assert.deepEqual(redisProcessesIn(s.t.dataDir), []);
    assert.equal(fs.existsSync(`${s.t.dataDir}/apps/${id}`), false);
    assert.equal((await s.cli(['app', 'show', id])).code, 1);
  });

  it('a server that is down in the middle (PostgreSQL after MySQL) rolls back what came before', async () => {
    const id = uniqueId('mid');
    ids.push(id);
    const r = await s.cli(['app', 'install', s.manifest({ mysql: {}, postgresql: {}, redis: {} }), '--id', id, '--domain', 'mid.example.test'], {
      HEARTH_POSTGRESQL_ADMIN_URL: await closedPortUrl('postgres', '/postgres'),
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the postgresql addon cannot connect/);
    assert.deepEqual(await mysqlLeftovers(s.dbName(id)), []);
    assert.deepEqual(redisProcessesIn(s.t.dataDir), []);
  });

  it('a connection lost in the middle of the mysql addon: the database made before it is dropped again', async () => {
    const id = uniqueId('cut.my');
    ids.push(id);
    const proxy = await cuttingProxy(Number(new URL(MYSQL_ADMIN_URL).port || 3306), 'CREATE USER');
    try {
      const r = await s.cli(['app', 'install', s.manifest({ mysql: {} }), '--id', id, '--domain', 'cut.example.test'], { HEARTH_MYSQL_ADMIN_URL: `mysql://root@127.0.0.1:${proxy.port}` });
      assert.equal(proxy.cuts(), 1, 'the proxy cut the install at CREATE USER');
      assert.equal(r.code, 1);
      assert.match(r.stderr, /the mysql addon failed: /);
      assert.deepEqual(await mysqlLeftovers(s.dbName(id)), []);
    } finally {
      await proxy.close();
    }
  });

  it('a lost connection in the postgresql addon: the role made before it is dropped again', async () => {
    const id = uniqueId('cut.pg');
    ids.push(id);
    const proxy = await cuttingProxy(Number(new URL(PG_ADMIN_URL).port || 5432), 'CREATE DATABASE');
    try {
      const r = await s.cli(['app', 'install', s.manifest({ postgresql: {} }), '--id', id, '--domain', 'cut.example.test'], { HEARTH_POSTGRESQL_ADMIN_URL: `postgres://postgres@127.0.0.1:${proxy.port}/postgres` });
      assert.equal(proxy.cuts(), 1, 'the proxy cut the install at CREATE DATABASE');
      assert.equal(r.code, 1);
      assert.match(r.stderr, /the postgresql addon failed: /);
      assert.deepEqual(await pgLeftovers(s.dbName(id)), []);
    } finally {
      await proxy.close();
    }
  });

  it('a server that stays away after cutting an install: the error names what is left there', async () => {
    const id = uniqueId('cut.gone');
    ids.push(id);
    const proxy = await cuttingProxy(Number(new URL(MYSQL_ADMIN_URL).port || 3306), 'CREATE USER', true);
    try {
      const r = await s.cli(['app', 'install', s.manifest({ mysql: {} }), '--id', id, '--domain', 'cut.example.test'], { HEARTH_MYSQL_ADMIN_URL: `mysql://root@127.0.0.1:${proxy.port}` });
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`could not undo, left on the server: database ${s.dbName(id)}, user ${s.dbName(id)}`));
      assert.deepEqual(await mysqlLeftovers(s.dbName(id)), [`database ${s.dbName(id)}`], 'the user statement never reached the server');
    } finally {
      await proxy.close();
    }
  });

  it('rotate with a server down changes nothing anywhere', async () => {
    const id = uniqueId('rot');
    ids.push(id);
    const vars = await s.install(id, { mysql: {}, postgresql: {} });
    const r = await s.cli(['app', 'rotate', id], { HEARTH_POSTGRESQL_ADMIN_URL: await closedPortUrl('postgres', '/postgres') });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the postgresql addon cannot connect/);
    assert.deepEqual(await s.appEnv(id), vars);
    assert.ok(await mysqlLogin(vars), 'MySQL has the stored password back');
    assert.equal((await s.cli(['app', 'uninstall', id])).code, 0);
  });

  it('uninstall with one server down removes everything else and says what is left', async () => {
    const id = uniqueId('gone');
    ids.push(id);
    await s.install(id, { mysql: {}, postgresql: {}, redis: {}, localstorage: {} });
    assert.equal(redisProcessesIn(s.t.dataDir).length, 1);
    const r = await s.cli(['app', 'uninstall', id], { HEARTH_MYSQL_ADMIN_URL: await closedPortUrl('mysql') });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`app ${id.replace('.', '\\.')} is uninstalled, but some of its data is left behind: mysql name [a-z0-9_]+: the mysql addon cannot connect`));
    assert.equal((await s.cli(['app', 'show', id])).code, 1);
    assert.deepEqual(await pgLeftovers(s.dbName(id)), []);
    assert.deepEqual(redisProcessesIn(s.t.dataDir), []);
    assert.equal(fs.existsSync(`${s.t.dataDir}/apps/${id}`), false);
    assert.equal((await mysqlLeftovers(s.dbName(id))).length, 2, 'the database and user on the server that was down');
    await dropEverything([s.dbName(id)]);
    assert.deepEqual(await mysqlLeftovers(s.dbName(id)), []);
  });
});
