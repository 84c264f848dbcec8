import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MongoClient } from 'mongodb';
import { closedPortUrl, stack, uniqueId, type Stack } from './helpers.ts';

/** No MongoDB server can be installed on the CI machines: these run only against one given in HEARTH_TEST_MONGODB_URL. */
const MONGO_URL = process.env.HEARTH_TEST_MONGODB_URL;
const skip = MONGO_URL ? false : 'HEARTH_TEST_MONGODB_URL is not set: no MongoDB server to test against';
if (skip) console.log(`mongodb integration tests skipped: ${skip}`);

async function withClient<T>(url: string, fn: (c: MongoClient) => Promise<T>): Promise<T> {
  const c = new MongoClient(url, { serverSelectionTimeoutMS: 5000 });
  try {
    await c.connect();
    return await fn(c);
  } finally {
    await c.close();
  }
}

describe('mongodb addon', () => {
  it('install fails naming mongodb when no server is configured or reachable', async () => {
    const s = await stack({ HEARTH_MONGODB_ADMIN_URL: '' });
    try {
      const none = await s.cli(['app', 'install', s.manifest({ mongodb: {} }), '--id', 'm1', '--domain', 'm1.example.test']);
      assert.equal(none.code, 1);
      assert.match(none.stderr, /the mongodb addon needs a server: set HEARTH_MONGODB_ADMIN_URL/);
      const down = await s.cli(['app', 'install', s.manifest({ mongodb: {} }), '--id', 'm1', '--domain', 'm1.example.test'], { HEARTH_MONGODB_ADMIN_URL: await closedPortUrl('mongodb') });
      assert.equal(down.code, 1);
      assert.match(down.stderr, /the mongodb addon cannot connect to mongodb:\/\/admin:\*\*\*@127\.0\.0\.1:\d+ \(HEARTH_MONGODB_ADMIN_URL\)/);
      assert.equal((await s.cli(['app', 'show', 'm1'])).code, 1);
    } finally {
      await s.t.cleanup();
    }
  });

  describe('against a real server', { skip }, () => {
    let s: Stack;
    const a = uniqueId('a.b-c');
    const b = uniqueId('oplog');
    let varsA: Record<string, string>;
    let varsB: Record<string, string>;

    before(async () => {
      s = await stack({ HEARTH_MONGODB_ADMIN_URL: MONGO_URL! });
      varsA = await s.install(a, { mongodb: {} });
      varsB = await s.install(b, { mongodb: { oplog: true } });
    });
    after(async () => {
      await withClient(MONGO_URL!, async (c) => {
        for (const id of [a, b]) {
          const db = c.db(s.dbName(id));
          await db.command({ dropAllUsersFromDatabase: 1 });
          await db.dropDatabase();
        }
      });
      await s.t.cleanup();
    });

    it("works for the app's database and not for another app's", async () => {
      assert.equal(varsA.CLOUDRON_MONGODB_DATABASE, s.dbName(a));
      assert.equal(varsA.CLOUDRON_MONGODB_OPLOG_URL, undefined);
      await withClient(varsA.CLOUDRON_MONGODB_URL!, async (c) => {
        await c.db().collection('t').insertOne({ x: 1 });
        assert.equal(await c.db().collection('t').countDocuments(), 1);
        await assert.rejects(c.db(varsB.CLOUDRON_MONGODB_DATABASE).collection('t').insertOne({ x: 1 }), /not authorized|Unauthorized/);
        await assert.rejects(c.db('local').listCollections().toArray(), /not authorized|Unauthorized/);
      });
    });

    it('oplog: read access to local', async () => {
      assert.ok(varsB.CLOUDRON_MONGODB_OPLOG_URL);
      await withClient(varsB.CLOUDRON_MONGODB_OPLOG_URL!, (c) => c.db('local').listCollections().toArray());
    });

    it('rotate changes the password; uninstall drops user and database', async () => {
      assert.equal((await s.cli(['app', 'rotate', a])).code, 0);
      const rotated = await s.appEnv(a);
      assert.notEqual(rotated.CLOUDRON_MONGODB_PASSWORD, varsA.CLOUDRON_MONGODB_PASSWORD);
      await withClient(rotated.CLOUDRON_MONGODB_URL!, (c) => c.db().collection('t').countDocuments());
      await assert.rejects(withClient(varsA.CLOUDRON_MONGODB_URL!, (c) => c.db().collection('t').countDocuments()), /Authentication failed/);
      assert.equal((await s.cli(['app', 'uninstall', a])).code, 0);
      await withClient(MONGO_URL!, async (c) => {
        const users = (await c.db(s.dbName(a)).command({ usersInfo: 1 })) as { users: unknown[] };
        assert.deepEqual(users.users, []);
        const dbs = await c.db().admin().listDatabases();
        assert.ok(!dbs.databases.some((d) => d.name === s.dbName(a)));
      });
    });
  });
});
