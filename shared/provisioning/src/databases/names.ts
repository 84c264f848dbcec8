import { createHash } from 'node:crypto';
import type { HearthConfig } from '@hearth/config';
import { ProvisionError, type AddonContext, type Credentials } from '../addon.ts';

/** MySQL 8 user names are at most 32 characters; one name serves as database, user and role everywhere. */
export const NAME_MAX = 32;
const HASH_LENGTH = 8;

/**
 * The database/user name of an app: its id's letters and digits (lowercased, cut to fit) and
 * `_` and 8 hex digits of the SHA-256 of the installation's id and the app id. Always the same
 * shape, so names are safe unquoted, never collide for different ids in practice (nor for the
 * same id in two installations sharing one server), and no name is a prefix of another's
 * `name_` (the core has no `_`), which keeps MySQL's `name\_%` grants to one app.
 */
export function databaseName(installationId: string, appId: string): string {
  const core = appId.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, NAME_MAX - HASH_LENGTH - 1) || 'app';
  const hash = createHash('sha256').update(`${installationId}/${appId}`).digest('hex').slice(0, HASH_LENGTH);
  return `${core}_${hash}`;
}

/** Names this module makes; anything else coming back from stored credentials is refused before it reaches SQL. */
export function isDatabaseName(name: string): boolean {
  return /^[a-z0-9]{1,23}_[0-9a-f]{8}$/.test(name);
}

/**
 * The name an app uses on an addon's server: the stored one on re-install (what the server has,
 * whatever scheme made it), checked against the shape and against other apps.
 */
export async function appDatabaseName(ctx: AddonContext, addon: string, existing: Credentials | undefined): Promise<string> {
  const name = existing?.username ?? databaseName(await ctx.directory.installationId(), ctx.app.id);
  if (!isDatabaseName(name)) throw new ProvisionError(`the ${addon} addon: stored name ${JSON.stringify(name)} is not one Hearth makes`);
  const other = ctx.directory.apps().find((a) => a.id !== ctx.app.id && a.credentials[addon]?.username === name);
  if (other) throw new ProvisionError(`the ${addon} addon: name ${name} is already used by app ${other.id}`);
  return name;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** Where apps reach a server: a loopback admin host means "this machine", i.e. HEARTH_HOSTNAME. */
export function publicHost(config: HearthConfig, adminHost: string): string {
  return LOOPBACK.has(adminHost.toLowerCase()) ? config.hostname : adminHost;
}

/** host and port of an admin URL, for messages and variables. */
export function serverAddress(url: string, defaultPort: number): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: u.port ? Number(u.port) : defaultPort };
}

/** An admin URL without its password, for error messages. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}
