import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '@hearth/config';
import { mongodbOptionsSchema, mongoServer, mongoUrls, mongodbAddon } from '../src/addons/mongodb.ts';
import { mysqlAddon, mysqlOptionsSchema } from '../src/addons/mysql.ts';
import { postgresqlOptionsSchema } from '../src/addons/postgresql.ts';
import { redisAddon, redisOptionsSchema } from '../src/addons/redis.ts';
import type { AddonContext } from '../src/addon.ts';
import { databaseName, isDatabaseName, publicHost, redactUrl } from '../src/databases/names.ts';
import { parseDatabaseSettings } from '../src/databases/settings.ts';

const config = loadConfig({ HEARTH_HOSTNAME: 'hearth.example.test', HEARTH_DATA_DIR: '/nonexistent' });
const ctx = { config } as AddonContext;
const INSTALLATION = '0123456789abcdef';

describe('database names from app ids', () => {
  const nasty = ['a.b-c', 'a_b-c', 'ab.c', 'abc', 'ABC', "x'; DROP DATABASE mysql; --", 'a'.repeat(64), `${'a'.repeat(63)}b`, '9lives', 'a..b', 'ä', 'a`b"c'];

  it('are short, lowercase, quote-free, and one per id', () => {
    const names = nasty.map((id) => databaseName(INSTALLATION, id));
    for (const n of names) {
      assert.match(n, /^[a-z0-9]{1,23}_[0-9a-f]{8}$/);
      assert.ok(n.length <= 32, n);
      assert.ok(isDatabaseName(n));
    }
    assert.equal(new Set(names).size, names.length);
    assert.equal(databaseName(INSTALLATION, 'a.b-c'), databaseName(INSTALLATION, 'a.b-c'));
    assert.match(databaseName(INSTALLATION, 'a.b-c'), /^abc_/);
  });

  it('differ between installations for the same app id (one server shared by two installations)', () => {
    assert.notEqual(databaseName('0123456789abcdef', 'wiki'), databaseName('fedcba9876543210', 'wiki'));
  });

  it("never make one app's name a prefix of another's `name_` (MySQL multipleDatabases grants)", () => {
    const names = nasty.map((id) => databaseName(INSTALLATION, id));
    for (const x of names) for (const y of names) if (x !== y) assert.ok(!y.startsWith(`${x}_`) && !`${y}_`.startsWith(`${x}_`), `${x} / ${y}`);
  });

  it('stored names of another shape are refused', () => {
    for (const bad of ['abc', 'a"b_12345678', 'abc_1234567', 'ABC_12345678', `${'a'.repeat(24)}_12345678`]) assert.equal(isDatabaseName(bad), false, bad);
  });
});

describe('settings', () => {
  it('default to the local servers and no MongoDB', () => {
    const s = parseDatabaseSettings({});
    assert.equal(s.mysqlAdminUrl, 'mysql://root@127.0.0.1:3306');
    assert.equal(s.postgresqlAdminUrl, 'postgres://postgres@127.0.0.1:5432/postgres');
    assert.equal(s.mongodbAdminUrl, undefined);
    assert.equal(s.redisServerBin, 'redis-server');
    assert.deepEqual([s.redisPortMin, s.redisPortMax, s.redisMaxmemory], [6380, 6479, '256mb']);
  });

  it('an empty admin URL means "no such server"', () => {
    const s = parseDatabaseSettings({ HEARTH_MYSQL_ADMIN_URL: '', HEARTH_POSTGRESQL_ADMIN_URL: '' });
    assert.equal(s.mysqlAdminUrl, undefined);
    assert.equal(s.postgresqlAdminUrl, undefined);
  });

  it('bad values name the setting', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ HEARTH_MYSQL_ADMIN_URL: 'postgres://x' }, /invalid setting HEARTH_MYSQL_ADMIN_URL: must be a URL such as mysql:\/\//],
      [{ HEARTH_POSTGRESQL_ADMIN_URL: 'localhost:5432' }, /HEARTH_POSTGRESQL_ADMIN_URL/],
      [{ HEARTH_MONGODB_ADMIN_URL: 'mongodb://' }, /HEARTH_MONGODB_ADMIN_URL/],
      [{ HEARTH_REDIS_PORT_MIN: '7000', HEARTH_REDIS_PORT_MAX: '6000' }, /HEARTH_REDIS_PORT_MIN: must not be above HEARTH_REDIS_PORT_MAX/],
      [{ HEARTH_REDIS_PORT_MAX: '70000' }, /HEARTH_REDIS_PORT_MAX/],
      [{ HEARTH_REDIS_MAXMEMORY: 'lots' }, /HEARTH_REDIS_MAXMEMORY: must be a size such as 256mb/],
    ];
    for (const [env, re] of cases) assert.throws(() => parseDatabaseSettings(env), re);
    assert.equal(parseDatabaseSettings({ HEARTH_MONGODB_ADMIN_URL: 'mongodb://root:pw@db1:27017,db2:27018/admin?replicaSet=rs0' }).mongodbAdminUrl, 'mongodb://root:pw@db1:27017,db2:27018/admin?replicaSet=rs0');
  });

  it('admin URLs lose their password in messages; loopback hosts become HEARTH_HOSTNAME', () => {
    assert.equal(redactUrl('mysql://root:s3cret@db:3306'), 'mysql://root:***@db:3306');
    assert.equal(redactUrl('mysql://root@db:3306'), 'mysql://root@db:3306');
    assert.equal(publicHost(config, '127.0.0.1'), 'hearth.example.test');
    assert.equal(publicHost(config, 'localhost'), 'hearth.example.test');
    assert.equal(publicHost(config, 'mariadb'), 'mariadb');
  });
});

describe('addon options', () => {
  it('accept the seed options and refuse others', () => {
    assert.ok(mysqlOptionsSchema.safeParse({ multipleDatabases: true }).success);
    assert.ok(!mysqlOptionsSchema.safeParse({ multipleDatabases: 'yes' }).success);
    assert.ok(postgresqlOptionsSchema.safeParse({ locale: 'de_DE.UTF-8' }).success);
    assert.ok(!postgresqlOptionsSchema.safeParse({ locale: "C' TEMPLATE x" }).success);
    assert.ok(redisOptionsSchema.safeParse({ noPassword: true }).success);
    assert.ok(!redisOptionsSchema.safeParse({ password: 'x' }).success);
    assert.ok(mongodbOptionsSchema.safeParse({ oplog: true }).success);
    assert.ok(!mongodbOptionsSchema.safeParse({ oplog: 1 }).success);
    assert.ok(!mongodbOptionsSchema.safeParse({ replicaSet: 'rs0' }).success);
  });
});

describe('variables', () => {
  it('mongodb: URLs with every host, the replica set, and oplog access through the app database', () => {
    const server = mongoServer('mongodb://root:pw@127.0.0.1:27017,db2:27018/admin?replicaSet=rs0&authSource=admin');
    assert.deepEqual(server, { hosts: '127.0.0.1:27017,db2:27018', host: '127.0.0.1', port: '27017', options: 'replicaSet=rs0' });
    const creds = { username: 'app_12345678', password: 'p@ss/w:rd', database: 'app_12345678', ...server, oplog: 'true' };
    const { url, oplogUrl } = mongoUrls(config, creds);
    assert.equal(url, 'mongodb://app_12345678:p%40ss%2Fw%3Ard@hearth.example.test:27017,db2:27018/app_12345678?replicaSet=rs0');
    assert.equal(oplogUrl, 'mongodb://app_12345678:p%40ss%2Fw%3Ard@hearth.example.test:27017,db2:27018/local?replicaSet=rs0&authSource=app_12345678');
    const env = Object.fromEntries(mongodbAddon.env(ctx, creds));
    assert.equal(env.CLOUDRON_MONGODB_HOST, 'hearth.example.test');
    assert.deepEqual(Object.keys(env), ['CLOUDRON_MONGODB_URL', 'CLOUDRON_MONGODB_HOST', 'CLOUDRON_MONGODB_PORT', 'CLOUDRON_MONGODB_DATABASE', 'CLOUDRON_MONGODB_USERNAME', 'CLOUDRON_MONGODB_PASSWORD', 'CLOUDRON_MONGODB_OPLOG_URL']);
    const plain = Object.fromEntries(mongodbAddon.env(ctx, { ...creds, oplog: '' }));
    assert.equal(plain.CLOUDRON_MONGODB_OPLOG_URL, undefined);
    assert.equal(mongoServer('mongodb://mongo').port, '27017');
    assert.equal(mongoServer('mongodb://[::1]:27019/admin').host, '[::1]');
  });

  it('mysql: no URL or DATABASE with multipleDatabases', () => {
    const env = Object.fromEntries(mysqlAddon.env(ctx, { username: 'u_12345678', password: 'p w', host: 'h', port: '3306', prefix: 'u_12345678_' }));
    assert.deepEqual(env, { CLOUDRON_MYSQL_HOST: 'h', CLOUDRON_MYSQL_PORT: '3306', CLOUDRON_MYSQL_DATABASE_PREFIX: 'u_12345678_', CLOUDRON_MYSQL_USERNAME: 'u_12345678', CLOUDRON_MYSQL_PASSWORD: 'p w' });
    const single = Object.fromEntries(mysqlAddon.env(ctx, { username: 'u_12345678', password: 'p w', host: 'h', port: '3306', database: 'u_12345678' }));
    assert.equal(single.CLOUDRON_MYSQL_URL, 'mysql://u_12345678:p%20w@h:3306/u_12345678');
    // a loopback server is reached at HEARTH_HOSTNAME, as it is now (not as it was at install time)
    const local = Object.fromEntries(mysqlAddon.env(ctx, { username: 'u_12345678', password: 'p', host: '127.0.0.1', port: '3306', database: 'u_12345678' }));
    assert.equal(local.CLOUDRON_MYSQL_HOST, 'hearth.example.test');
  });

  it('redis: HEARTH_HOSTNAME and the per-app port', () => {
    assert.deepEqual(Object.fromEntries(redisAddon.env(ctx, { port: '6390' })), { CLOUDRON_REDIS_URL: 'redis://hearth.example.test:6390', CLOUDRON_REDIS_HOST: 'hearth.example.test', CLOUDRON_REDIS_PORT: '6390' });
  });
});
