import type { Connection, RowDataPacket } from 'mysql2/promise';
import { z } from 'zod';
import { generateSecret } from '@hearth/directory';
import type { Addon, Credentials } from '../addon.ts';
import { addonFailure, notConfigured, step, undoAndThrow, unreachable } from '../databases/errors.ts';
import { appDatabaseName, publicHost, serverAddress } from '../databases/names.ts';
import { databaseSettings } from '../databases/settings.ts';

const SETTING = 'HEARTH_MYSQL_ADMIN_URL';

export const mysqlOptionsSchema = z.object({ multipleDatabases: z.boolean().optional() }).strict();

/** `name` quoted as a MySQL identifier. */
function ident(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}

/** A literal database name as a GRANT pattern, where `_` and `%` are wildcards. */
function grantLiteral(name: string): string {
  return name.replace(/[\\_%]/g, (c) => '\\' + c);
}

/** Runs fn on an admin connection; errors name the addon (and the setting when the server is not there). */
async function withAdmin<T>(fn: (c: Connection) => Promise<T>): Promise<T> {
  const url = databaseSettings().mysqlAdminUrl;
  if (!url) throw notConfigured('mysql', SETTING);
  let conn: Connection;
  try {
    const { default: mysql } = await import('mysql2/promise'); // the driver loads only when the addon is used
    conn = await mysql.createConnection({ uri: url, connectTimeout: 5000 });
  } catch (err) {
    throw unreachable('mysql', SETTING, url, err);
  }
  try {
    return await fn(conn);
  } catch (err) {
    throw addonFailure('mysql', err);
  } finally {
    await conn.end().catch(() => conn.destroy());
  }
}

/** Ends the user's open sessions, so a dropped user or an old password stops working now. */
async function killSessions(c: Connection, user: string): Promise<void> {
  const [rows] = await c.query<RowDataPacket[]>('SELECT id FROM information_schema.processlist WHERE user = ?', [user]);
  for (const r of rows) await c.query(`KILL ${Number(r.id)}`).catch(() => {});
}

async function dropAll(c: Connection, user: string): Promise<void> {
  await killSessions(c, user);
  // Both shapes, so a switch of multipleDatabases between installs leaves nothing behind.
  const [rows] = await c.query<RowDataPacket[]>('SHOW DATABASES LIKE ?', [`${grantLiteral(user)}\\_%`]);
  for (const db of [user, ...rows.map((r) => String(Object.values(r)[0]))]) await c.query(`DROP DATABASE IF EXISTS ${ident(db)}`);
  await c.query("DROP USER IF EXISTS ?@'%'", [user]);
}

/**
 * A database and a user per app (or, with multipleDatabases, every database named
 * `<prefix>...`), utf8mb4 as the seed shows. A first install refuses names that already
 * exist on the server; a re-install recreates what is missing with the same password.
 */
export const mysqlAddon: Addon = {
  name: 'mysql',
  optionsSchema: mysqlOptionsSchema,
  async provision(ctx, existing) {
    const user = await appDatabaseName(ctx, 'mysql', existing);
    const password = existing?.password ?? generateSecret();
    const multi = ctx.options.multipleDatabases === true;
    const url = databaseSettings().mysqlAdminUrl;
    const created: string[] = [];
    const isServerError = (err: unknown): boolean => typeof (err as { errno?: unknown }).errno === 'number' && !(err as { fatal?: boolean }).fatal;
    try {
      await withAdmin(async (c) => {
        if (!multi) {
          if (existing) await c.query(`CREATE DATABASE IF NOT EXISTS ${ident(user)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
          else await step(created, `database ${user}`, isServerError, () => c.query(`CREATE DATABASE ${ident(user)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`));
        }
        if (existing) {
          await c.query("CREATE USER IF NOT EXISTS ?@'%' IDENTIFIED BY ?", [user, password]);
          await c.query("ALTER USER ?@'%' IDENTIFIED BY ?", [user, password]);
          await c.query("REVOKE ALL PRIVILEGES, GRANT OPTION FROM ?@'%'", [user]);
        } else {
          await step(created, `user ${user}`, isServerError, () => c.query("CREATE USER ?@'%' IDENTIFIED BY ?", [user, password]));
        }
        const on = multi ? `${grantLiteral(`${user}_`)}%` : grantLiteral(user);
        await c.query(`GRANT ALL PRIVILEGES ON ${ident(on)}.* TO ?@'%'`, [user]);
      });
    } catch (err) {
      return undoAndThrow('mysql', err, created, () =>
        withAdmin(async (c) => {
          if (created.includes(`database ${user}`)) await c.query(`DROP DATABASE IF EXISTS ${ident(user)}`);
          if (created.includes(`user ${user}`)) await c.query("DROP USER IF EXISTS ?@'%'", [user]);
        }),
      );
    }
    const server = serverAddress(url!, 3306);
    const creds: Credentials = { username: user, password, host: server.host, port: String(server.port) };
    if (multi) creds.prefix = `${user}_`;
    else creds.database = user;
    return creds;
  },
  async rotate(_ctx, existing) {
    const password = generateSecret();
    await withAdmin(async (c) => {
      await c.query("ALTER USER ?@'%' IDENTIFIED BY ?", [existing.username, password]);
      await killSessions(c, existing.username!);
    });
    return { ...existing, password };
  },
  async deprovision(_ctx, existing) {
    if (existing.username) await withAdmin((c) => dropAll(c, existing.username!));
  },
  env({ config }, c) {
    const auth = `${encodeURIComponent(c.username!)}:${encodeURIComponent(c.password!)}`;
    const host = publicHost(config, c.host!);
    const vars: [string, string][] = [];
    if (c.database) vars.push(['CLOUDRON_MYSQL_URL', `mysql://${auth}@${host}:${c.port}/${c.database}`]);
    vars.push(['CLOUDRON_MYSQL_HOST', host], ['CLOUDRON_MYSQL_PORT', c.port!]);
    if (c.database) vars.push(['CLOUDRON_MYSQL_DATABASE', c.database]);
    else vars.push(['CLOUDRON_MYSQL_DATABASE_PREFIX', c.prefix!]);
    vars.push(['CLOUDRON_MYSQL_USERNAME', c.username!], ['CLOUDRON_MYSQL_PASSWORD', c.password!]);
    return vars;
  },
};
