import type pg from 'pg';
import { z } from 'zod';
import { generateSecret } from '@hearth/directory';
import { ProvisionError, type Addon, type Credentials } from '../addon.ts';
import { addonFailure, notConfigured, step, undoAndThrow, unreachable } from '../databases/errors.ts';
import { appDatabaseName, publicHost, serverAddress } from '../databases/names.ts';
import { scramVerifier } from '../databases/scram.ts';
import { databaseSettings } from '../databases/settings.ts';

const SETTING = 'HEARTH_POSTGRESQL_ADMIN_URL';

/** The seed's whitelist: the only extensions an app's role may create. */
export const EXTENSION_WHITELIST = [
  'address_standardizer', 'address_standardizer_data_us', 'btree_gist', 'btree_gin', 'citext', 'cube', 'earthdistance',
  'fuzzystrmatch', 'hstore', 'ogr_fdw', 'pgcrypto', 'pg_stat_statements', 'pg_trgm', 'pgrouting', 'plpgsql', 'postgis',
  'postgis_tiger_geocoder', 'postgis_sfcgal', 'postgis_topology', 'postgres_fdw', 'uuid-ossp', 'unaccent', 'vector',
] as const;

export const postgresqlOptionsSchema = z
  .object({ locale: z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'locale must be a locale name such as en_US.UTF-8').optional() })
  .strict();

async function withAdmin<T>(database: string | undefined, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const url = databaseSettings().postgresqlAdminUrl;
  if (!url) throw notConfigured('postgresql', SETTING);
  const u = new URL(url);
  if (database) u.pathname = `/${database}`;
  const { default: pg } = await import('pg'); // the driver loads only when the addon is used
  const c = new pg.Client({ connectionString: u.toString(), connectionTimeoutMillis: 5000 });
  c.on('error', () => {}); // a server going away mid-call surfaces as the query's rejection
  try {
    await c.connect();
  } catch (err) {
    await c.end().catch(() => {});
    throw unreachable('postgresql', SETTING, url, err);
  }
  try {
    return await fn(c);
  } catch (err) {
    throw addonFailure('postgresql', err);
  } finally {
    await c.end().catch(() => {});
  }
}

/**
 * Inside the app's database, as the admin: an event trigger that undoes any CREATE EXTENSION
 * by a non-superuser of an extension off the whitelist (PostgreSQL 13+ lets a database owner
 * create every *trusted* extension, e.g. tablefunc), and the whitelisted *untrusted* ones the
 * server has (pg_stat_statements, postgres_fdw, ...) created up front, since the owner cannot.
 * The guard lives in schema `hearth`, owned by the admin, so the app can neither change nor drop it.
 */
async function prepareDatabase(c: pg.Client, role: string): Promise<void> {
  const whitelist = `ARRAY[${EXTENSION_WHITELIST.map((e) => c.escapeLiteral(e)).join(', ')}]::name[]`;
  await c.query('CREATE SCHEMA IF NOT EXISTS hearth');
  await c.query('REVOKE ALL ON SCHEMA hearth FROM PUBLIC');
  await c.query(`CREATE OR REPLACE FUNCTION hearth.extension_guard() RETURNS event_trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $guard$
    DECLARE bad text;
    BEGIN
      SELECT string_agg(e.extname, ', ') INTO bad FROM pg_extension e JOIN pg_roles r ON r.oid = e.extowner
        WHERE NOT r.rolsuper AND NOT (e.extname = ANY (${whitelist}));
      IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'extension % is not available to apps (see the postgresql addon whitelist)', bad USING ERRCODE = 'insufficient_privilege';
      END IF;
    END $guard$`);
  const { rowCount } = await c.query("SELECT 1 FROM pg_event_trigger WHERE evtname = 'hearth_extension_guard'");
  if (!rowCount) {
    await c.query("CREATE EVENT TRIGGER hearth_extension_guard ON ddl_command_end WHEN TAG IN ('CREATE EXTENSION', 'ALTER EXTENSION') EXECUTE FUNCTION hearth.extension_guard()");
  }
  // ALWAYS: also under session_replication_role = replica (superuser-only, but cheap to close).
  await c.query('ALTER EVENT TRIGGER hearth_extension_guard ENABLE ALWAYS');
  const untrusted = await c.query<{ name: string }>(
    `SELECT a.name FROM pg_available_extensions a
       JOIN pg_available_extension_versions v ON v.name = a.name AND v.version = a.default_version
      WHERE a.name = ANY ($1) AND NOT v.trusted ORDER BY a.name`,
    [EXTENSION_WHITELIST],
  );
  for (const { name } of untrusted.rows) await c.query(`CREATE EXTENSION IF NOT EXISTS ${c.escapeIdentifier(name)} CASCADE`);
  const fdws = await c.query<{ fdwname: string }>('SELECT fdwname FROM pg_foreign_data_wrapper');
  for (const { fdwname } of fdws.rows) await c.query(`GRANT USAGE ON FOREIGN DATA WRAPPER ${c.escapeIdentifier(fdwname)} TO ${c.escapeIdentifier(role)}`);
}

async function dropAll(c: pg.Client, role: string): Promise<void> {
  const r = c.escapeIdentifier(role);
  await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]);
  await c.query(`DROP DATABASE IF EXISTS ${r} WITH (FORCE)`);
  if ((await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount) {
    await c.query(`DROP OWNED BY ${r}`);
    await c.query(`DROP ROLE ${r}`);
  }
}

/**
 * A role and a database it owns, closed to PUBLIC. A first install refuses names that already
 * exist on the server; a re-install recreates what is missing with the same password.
 */
export const postgresqlAddon: Addon = {
  name: 'postgresql',
  optionsSchema: postgresqlOptionsSchema,
  async provision(ctx, existing) {
    const role = await appDatabaseName(ctx, 'postgresql', existing);
    const password = existing?.password ?? generateSecret();
    const locale = ctx.options.locale as string | undefined;
    const url = databaseSettings().postgresqlAdminUrl;
    const created: string[] = [];
    const { DatabaseError } = (await import('pg')).default;
    const isServerError = (err: unknown): boolean => err instanceof DatabaseError || err instanceof ProvisionError;
    try {
      await withAdmin(undefined, async (c) => {
        const version = Number((await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]!.v);
        if (version < 130000) throw new ProvisionError('the postgresql addon needs PostgreSQL 13 or later (trusted extensions)');
        const r = c.escapeIdentifier(role);
        const verifier = c.escapeLiteral(scramVerifier(password));
        const roleExists = (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount! > 0;
        const dbExists = (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [role])).rowCount! > 0;
        if (!existing && (roleExists || dbExists)) throw new ProvisionError(`the postgresql addon: ${roleExists ? 'role' : 'database'} ${role} already exists on the server; drop it first`);
        if (roleExists) await c.query(`ALTER ROLE ${r} WITH LOGIN PASSWORD ${verifier}`);
        else await step(created, `role ${role}`, isServerError, () => c.query(`CREATE ROLE ${r} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD ${verifier}`));
        if (!dbExists) {
          const lc = locale ? ` LC_COLLATE ${c.escapeLiteral(locale)} LC_CTYPE ${c.escapeLiteral(locale)}` : '';
          await step(created, `database ${role}`, isServerError, () =>
            c.query(`CREATE DATABASE ${r} OWNER ${r} TEMPLATE template0 ENCODING 'UTF8'${lc}`).catch((err: Error) => {
              throw /locale/i.test(err.message) ? new ProvisionError(`the postgresql addon: locale "${locale}" is not usable on the server: ${err.message}`) : err;
            }),
          );
        }
        await c.query(`REVOKE ALL ON DATABASE ${r} FROM PUBLIC`);
      });
      await withAdmin(role, (d) => prepareDatabase(d, role));
    } catch (err) {
      return undoAndThrow('postgresql', err, created, () =>
        withAdmin(undefined, async (c) => {
          if (created.includes(`database ${role}`)) await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(role)} WITH (FORCE)`);
          if (created.includes(`role ${role}`)) await c.query(`DROP ROLE IF EXISTS ${c.escapeIdentifier(role)}`);
        }),
      );
    }
    const server = serverAddress(url!, 5432);
    const creds: Credentials = { username: role, password, database: role, host: server.host, port: String(server.port) };
    return creds;
  },
  async rotate(_ctx, existing) {
    const password = generateSecret();
    await withAdmin(undefined, async (c) => {
      await c.query(`ALTER ROLE ${c.escapeIdentifier(existing.username!)} WITH PASSWORD ${c.escapeLiteral(scramVerifier(password))}`);
    });
    return { ...existing, password };
  },
  async deprovision(_ctx, existing) {
    if (existing.username) await withAdmin(undefined, (c) => dropAll(c, existing.username!));
  },
  env({ config }, c) {
    const host = publicHost(config, c.host!);
    return [
      ['CLOUDRON_POSTGRESQL_URL', `postgres://${encodeURIComponent(c.username!)}:${encodeURIComponent(c.password!)}@${host}:${c.port}/${c.database}`],
      ['CLOUDRON_POSTGRESQL_HOST', host],
      ['CLOUDRON_POSTGRESQL_PORT', c.port!],
      ['CLOUDRON_POSTGRESQL_DATABASE', c.database!],
      ['CLOUDRON_POSTGRESQL_USERNAME', c.username!],
      ['CLOUDRON_POSTGRESQL_PASSWORD', c.password!],
    ];
  },
};
