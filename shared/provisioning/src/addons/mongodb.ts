import type { MongoClient } from 'mongodb';
import { z } from 'zod';
import type { HearthConfig } from '@hearth/config';
import { generateSecret } from '@hearth/directory';
import { ProvisionError, type Addon, type Credentials } from '../addon.ts';
import { addonFailure, notConfigured, unreachable } from '../databases/errors.ts';
import { appDatabaseName, publicHost } from '../databases/names.ts';
import { databaseSettings } from '../databases/settings.ts';

const SETTING = 'HEARTH_MONGODB_ADMIN_URL';

export const mongodbOptionsSchema = z.object({ oplog: z.boolean().optional() }).strict();

/**
 * The server named by the admin URL, as stored with the app: its host list, the first host
 * and port (for the single-host variables), and the connection options apps need too
 * (replica set, TLS).
 */
export function mongoServer(adminUrl: string): { hosts: string; host: string; port: string; options: string } {
  const m = /^mongodb:\/\/(?:[^@/]+@)?([^/?]+)\/?[^?]*(?:\?(.*))?$/.exec(adminUrl);
  if (!m) throw new ProvisionError(`invalid setting ${SETTING}: not a mongodb:// URL`);
  const hosts = m[1]!.split(',').map((h) => {
    const hp = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(h);
    if (!hp) throw new ProvisionError(`invalid setting ${SETTING}: bad host "${h}"`);
    return { host: hp[1]!, port: hp[2] ?? '27017' };
  });
  const query = new URLSearchParams(m[2] ?? '');
  const options = new URLSearchParams();
  for (const key of ['replicaSet', 'tls', 'ssl']) {
    const v = query.get(key);
    if (v !== null) options.set(key, v);
  }
  return { hosts: hosts.map((h) => `${h.host}:${h.port}`).join(','), host: hosts[0]!.host, port: hosts[0]!.port, options: options.toString() };
}

/**
 * The app's URL, and with oplog access the one for `local` (authenticating against the app's
 * database). Loopback hosts become HEARTH_HOSTNAME, as for every addon.
 */
export function mongoUrls(config: HearthConfig, c: Credentials): { url: string; oplogUrl: string } {
  const auth = `${encodeURIComponent(c.username!)}:${encodeURIComponent(c.password!)}`;
  const hosts = c.hosts!.split(',').map((h) => {
    const i = h.lastIndexOf(':');
    return `${publicHost(config, h.slice(0, i))}${h.slice(i)}`;
  });
  const opts = c.options ? `?${c.options}` : '';
  const oplogQuery = new URLSearchParams(c.options ?? '');
  oplogQuery.set('authSource', c.database!);
  return {
    url: `mongodb://${auth}@${hosts.join(',')}/${c.database}${opts}`,
    oplogUrl: `mongodb://${auth}@${hosts.join(',')}/local?${oplogQuery.toString()}`,
  };
}

async function withAdmin<T>(fn: (client: MongoClient) => Promise<T>): Promise<T> {
  const url = databaseSettings().mongodbAdminUrl;
  if (!url) throw notConfigured('mongodb', SETTING);
  const { MongoClient } = await import('mongodb'); // the driver loads only when the addon is used
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 5000, connectTimeoutMS: 5000 });
  try {
    await client.connect();
    await client.db('admin').command({ ping: 1 });
  } catch (err) {
    await client.close().catch(() => {});
    throw unreachable('mongodb', SETTING, url, err);
  }
  try {
    return await fn(client);
  } catch (err) {
    throw addonFailure('mongodb', err);
  } finally {
    await client.close().catch(() => {});
  }
}

function roles(database: string, oplog: boolean): { role: string; db: string }[] {
  return [{ role: 'readWrite', db: database }, ...(oplog ? [{ role: 'read', db: 'local' }] : [])];
}

/** A database and a user defined in it with readWrite there (and read on `local` with oplog). */
export const mongodbAddon: Addon = {
  name: 'mongodb',
  optionsSchema: mongodbOptionsSchema,
  async provision(ctx, existing) {
    const name = await appDatabaseName(ctx, 'mongodb', existing);
    const password = existing?.password ?? generateSecret();
    const oplog = ctx.options.oplog === true;
    const url = databaseSettings().mongodbAdminUrl;
    await withAdmin(async (client) => {
      const db = client.db(name);
      const found = (await db.command({ usersInfo: name })) as { users: unknown[] };
      if (found.users.length && !existing) throw new ProvisionError(`the mongodb addon: user ${name} already exists on the server; drop it first`);
      if (found.users.length) await db.command({ updateUser: name, pwd: password, roles: roles(name, oplog) });
      else await db.command({ createUser: name, pwd: password, roles: roles(name, oplog) });
    });
    const server = mongoServer(url!);
    const creds: Credentials = { username: name, password, database: name, hosts: server.hosts, host: server.host, port: server.port };
    if (server.options) creds.options = server.options;
    if (oplog) creds.oplog = 'true';
    return creds;
  },
  async rotate(_ctx, existing) {
    const password = generateSecret();
    await withAdmin((client) => client.db(existing.database!).command({ updateUser: existing.username!, pwd: password }));
    return { ...existing, password };
  },
  async deprovision(_ctx, existing) {
    if (!existing.username) return;
    await withAdmin(async (client) => {
      const db = client.db(existing.database!);
      await db.command({ dropAllUsersFromDatabase: 1 });
      await db.dropDatabase();
    });
  },
  env({ config }, c) {
    const { url, oplogUrl } = mongoUrls(config, c);
    const vars: [string, string][] = [
      ['CLOUDRON_MONGODB_URL', url],
      ['CLOUDRON_MONGODB_HOST', publicHost(config, c.host!)],
      ['CLOUDRON_MONGODB_PORT', c.port!],
      ['CLOUDRON_MONGODB_DATABASE', c.database!],
      ['CLOUDRON_MONGODB_USERNAME', c.username!],
      ['CLOUDRON_MONGODB_PASSWORD', c.password!],
    ];
    if (c.oplog) vars.push(['CLOUDRON_MONGODB_OPLOG_URL', oplogUrl]);
    return vars;
  },
};
