import type { HearthConfig } from '@hearth/config';
import { check, domainSchema, type Directory, type User } from '@hearth/directory';
import type { Logger } from '@hearth/log';
import { installApp } from '@hearth/provisioning';
import type { ClientCredentials } from '@hearth/web';

/**
 * The console is a client of Hearth's own OIDC provider like any installed app: it
 * registers itself through the same provisioning code (`app install`) as the app
 * `hearth-console`, open to every user, with its callback and sign-out landing page.
 */

export const CONSOLE_APP_ID = 'hearth-console';

export function consoleManifest(publicUrl: string): string {
  return JSON.stringify({
    id: 'io.hearth.console',
    title: 'Hearth console',
    addons: { oidc: { loginRedirectUri: `${publicUrl}/callback`, logoutRedirectUri: `${publicUrl}/signed-out` } },
  });
}

/** The app's domain: the console's host when it is a domain name, else console.<HEARTH_DOMAIN>. */
function consoleDomain(config: HearthConfig, publicUrl: string): string {
  const host = new URL(publicUrl).hostname;
  return domainSchema.safeParse(host).success ? check(domainSchema, host) : `console.${config.domain}`;
}

/** Installs (or updates) the console's own client when it is missing or names another URL. */
export async function registerConsoleClient(config: HearthConfig, directory: Directory, publicUrl: string, logger: Logger): Promise<void> {
  const manifestText = consoleManifest(publicUrl);
  const existing = directory.app(CONSOLE_APP_ID);
  if (existing && JSON.stringify(existing.manifest) === JSON.stringify(JSON.parse(manifestText))) return;
  await installApp(config, directory, { manifestText, id: CONSOLE_APP_ID, domain: consoleDomain(config, publicUrl) });
  logger.info({ appId: CONSOLE_APP_ID, publicUrl }, 'registered the console as a client of the OIDC provider');
}

export function consoleCredentials(directory: Directory): ClientCredentials | null {
  const c = directory.app(CONSOLE_APP_ID)?.credentials.oidc;
  return c?.clientId && c.clientSecret ? { clientId: c.clientId, clientSecret: c.clientSecret } : null;
}

/** The provider's `sub` is the user's immutable id; never a username, which a re-created user could reuse. */
export function userOfSubject(directory: Directory, sub: string): User | undefined {
  return directory.userById(sub);
}
