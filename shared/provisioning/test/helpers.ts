import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { Directory } from '@hearth/directory';
import { freePort, hearth, parseEnvLines, testEnv, type CliResult, type TestEnv } from '@hearth/testkit';
import { databaseName } from '../src/databases/names.ts';

/** The local servers the database tests use (CI and dev machines run MariaDB, PostgreSQL and redis-server). */
export const MYSQL_ADMIN_URL = process.env.HEARTH_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306';
export const PG_ADMIN_URL = process.env.HEARTH_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A closed port on loopback, for "server unreachable" cases. */
export async function closedPortUrl(scheme: string, pathPart = ''): Promise<string> {
  return `${scheme}://admin:secret@127.0.0.1:${await freePort()}${pathPart}`;
}

/** Unique per run, so parallel test runs on one machine never share a database name. */
export function uniqueId(shape: string): string {
  return `${shape}-${randomBytes(4).toString('hex')}`;
}

export interface Stack {
  env: Record<string, string>;
  t: TestEnv;
  manifest(addons: Record<string, object>): string;
  cli(args: string[], env?: Record<string, string>): Promise<CliResult>;
  install(id: string, addons: Record<string, object>, env?: Record<string, string>): Promise<Record<string, string>>;
  appEnv(id: string): Promise<Record<string, string>>;
  /** The name this installation gives app `id` on the database servers. */
  dbName(id: string): string;
}

/** A temp data dir and settings pointing at the local servers, with a redis port range of its own. */
export async function stack(extra: Record<string, string> = {}): Promise<Stack> {
  const base = await freePort();
  const t = await testEnv({
    env: {
      HEARTH_MYSQL_ADMIN_URL: MYSQL_ADMIN_URL,
      HEARTH_POSTGRESQL_ADMIN_URL: PG_ADMIN_URL,
      HEARTH_REDIS_PORT_MIN: String(base),
      HEARTH_REDIS_PORT_MAX: String(base + 40),
      HEARTH_REDIS_MAXMEMORY: '32mb',
      ...extra,
    },
  });
  const dir = await Directory.open(t.config);
  const installationId = await dir.installationId();
  await dir.close();
  let n = 0;
  const s: Stack = {
    dbName: (id) => databaseName(installationId, id),
    env: t.env,
    t,
    manifest(addons) {
      const file = path.join(t.dataDir, `manifest-${n++}.json`);
      fs.writeFileSync(file, JSON.stringify({ id: 'test.app', title: 'Test', version: '1.0.0', manifestVersion: 2, httpPort: 8000, addons }));
      return file;
    },
    cli: (args, env = {}) => hearth(args, { env: { ...t.env, ...env } }),
    async install(id, addons, env = {}) {
      const r = await s.cli(['app', 'install', s.manifest(addons), '--id', id, '--domain', `${id.replace(/[^a-z0-9]/gi, '').slice(0, 50).toLowerCase()}.example.test`], env);
      if (r.code !== 0) throw new Error(`install ${id} failed: ${r.stderr}`);
      return s.appEnv(id);
    },
    async appEnv(id) {
      const r = await s.cli(['app', 'env', id]);
      if (r.code !== 0) throw new Error(`env ${id} failed: ${r.stderr}`);
      return parseEnvLines(r.stdout);
    },
  };
  return s;
}

export async function mysqlQuery<T = unknown>(sql: string, values: unknown[] = [], url = MYSQL_ADMIN_URL): Promise<T> {
  const c = await mysql.createConnection({ uri: url, connectTimeout: 5000 });
  try {
    return (await c.query(sql, values))[0] as T;
  } finally {
    await c.end();
  }
}

export async function pgQuery<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, values: unknown[] = [], url = PG_ADMIN_URL): Promise<T[]> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    return (await c.query<T>(sql, values)).rows;
  } finally {
    await c.end();
  }
}

/** What an app left on the MySQL server under its database name: databases named like it and its user. */
export async function mysqlLeftovers(name: string): Promise<string[]> {
  const dbs = await mysqlQuery<Record<string, string>[]>('SHOW DATABASES LIKE ?', [`${name.replace(/_/g, '\\_')}%`]);
  const users = await mysqlQuery<{ user: string }[]>('SELECT user FROM mysql.user WHERE user = ?', [name]);
  return [...dbs.map((r) => `database ${Object.values(r)[0]}`), ...users.map((u) => `user ${u.user}`)];
}

export async function pgLeftovers(name: string): Promise<string[]> {
  const dbs = await pgQuery<{ datname: string }>('SELECT datname FROM pg_database WHERE datname = $1', [name]);
  const roles = await pgQuery<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname = $1', [name]);
  return [...dbs.map((r) => `database ${r.datname}`), ...roles.map((r) => `role ${r.rolname}`)];
}

/** Last-resort cleanup after a test, whatever it got to: nothing a test created stays on the servers. */
export async function dropEverything(names: string[]): Promise<void> {
  for (const name of names) {
    const dbs = await mysqlQuery<Record<string, string>[]>('SHOW DATABASES LIKE ?', [`${name.replace(/_/g, '\\_')}%`]).catch(() => []);
    for (const r of dbs) await mysqlQuery(`DROP DATABASE IF EXISTS \`${String(Object.values(r)[0]).replace(/`/g, '``')}\``).catch(() => {});
    await mysqlQuery("DROP USER IF EXISTS ?@'%'", [name]).catch(() => {});
    await pgQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => {});
    await pgQuery(`DROP ROLE IF EXISTS "${name}"`).catch(() => {});
  }
}

/**
 * A TCP proxy to a local server that cuts the first connection whose client sends `trigger`
 * (the statement never reaches the server): a server going away in the middle of an install.
 * With `thenRefuse`, every later connection is cut too (the server stays away).
 */
export async function cuttingProxy(targetPort: number, trigger: string, thenRefuse = false): Promise<{ port: number; cuts: () => number; close: () => Promise<void> }> {
  let cuts = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (thenRefuse && cuts > 0) return void client.destroy();
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => (b.destroy(), sockets.delete(a)));
    }
    client.on('data', (d: Buffer) => {
      if (cuts === 0 && d.includes(trigger)) {
        cuts++;
        client.destroy();
        upstream.destroy();
        return;
      }
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => client.write(d));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    cuts: () => cuts,
    close: () =>
      new Promise((resolve) => {
        for (const sock of sockets) sock.destroy();
        server.close(() => resolve());
      }),
  };
}
