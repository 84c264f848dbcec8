import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { dropEverything, stack, uniqueId, type Stack } from './helpers.ts';

/**
 * Two Hearth installations on one MySQL and one PostgreSQL server (Cloudron's "one database
 * server for several machines"): the same app id installed on both must get two databases and
 * two roles, each working with its own credentials only.
 */
describe('two installations sharing one database server', () => {
  const id = uniqueId('shared.app');
  let first: Stack;
  let second: Stack;
  let one: Record<string, string>;
  let two: Record<string, string>;

  before(async () => {
    first = await stack({ HEARTH_MONGODB_ADMIN_URL: '' });
    second = await stack({ HEARTH_MONGODB_ADMIN_URL: '' });
    one = await first.install(id, { mysql: {}, postgresql: {} });
    two = await second.install(id, { mysql: {}, postgresql: {} });
  });
  after(async () => {
    await dropEverything([first.dbName(id), second.dbName(id)]);
    await first.t.cleanup();
    await second.t.cleanup();
  });

  it('give the same app id different names on the server', () => {
    assert.notEqual(one.CLOUDRON_POSTGRESQL_USERNAME, two.CLOUDRON_POSTGRESQL_USERNAME);
    assert.notEqual(one.CLOUDRON_POSTGRESQL_DATABASE, two.CLOUDRON_POSTGRESQL_DATABASE);
    assert.notEqual(one.CLOUDRON_MYSQL_USERNAME, two.CLOUDRON_MYSQL_USERNAME);
    assert.notEqual(one.CLOUDRON_MYSQL_DATABASE, two.CLOUDRON_MYSQL_DATABASE);
  });

  it("each app uses its own PostgreSQL database and cannot reach the other installation's", async () => {
    for (const [mine, theirs] of [[one, two], [two, one]] as const) {
      const c = new pg.Client({ connectionString: mine.CLOUDRON_POSTGRESQL_URL!.replace(`@${mine.CLOUDRON_POSTGRESQL_HOST}:`, '@127.0.0.1:') });
      await c.connect();
      try {
        await c.query('CREATE TABLE t (x int)');
      } finally {
        await c.end();
      }
      const other = new pg.Client({ host: '127.0.0.1', port: Number(mine.CLOUDRON_POSTGRESQL_PORT), user: mine.CLOUDRON_POSTGRESQL_USERNAME, password: mine.CLOUDRON_POSTGRESQL_PASSWORD, database: theirs.CLOUDRON_POSTGRESQL_DATABASE });
      other.on('error', () => {});
      await assert.rejects(other.connect(), /permission denied for database/);
      await other.end().catch(() => {});
    }
  });

  it("each app uses its own MySQL database and cannot reach the other installation's", async () => {
    for (const [mine, theirs] of [[one, two], [two, one]] as const) {
      const opts = { host: '127.0.0.1', port: Number(mine.CLOUDRON_MYSQL_PORT), user: mine.CLOUDRON_MYSQL_USERNAME, password: mine.CLOUDRON_MYSQL_PASSWORD, connectTimeout: 5000 };
      const c = await mysql.createConnection({ ...opts, database: mine.CLOUDRON_MYSQL_DATABASE });
      await c.query('CREATE TABLE t (x int)');
      await c.end();
      await assert.rejects(mysql.createConnection({ ...opts, database: theirs.CLOUDRON_MYSQL_DATABASE }), /Access denied/);
    }
  });
});
