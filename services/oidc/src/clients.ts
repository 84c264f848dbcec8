import type { App, Directory } from '@hearth/directory';
import type { HearthConfig } from '@hearth/config';
import type { ClientMetadata } from 'oidc-provider';
import { z } from 'zod';

/** Client registration derived from the directory: every installed app is a client, nothing else. */

export type SigningAlg = 'RS256' | 'EdDSA';
export const SIGNING_ALGS: readonly SigningAlg[] = ['RS256', 'EdDSA'];

export interface RegisteredClient {
  appId: string;
  /** 'oidc' for apps that speak OIDC themselves, 'proxyAuth' for the gateway in front of an app */
  addon: 'oidc' | 'proxyAuth';
  metadata: ClientMetadata;
}

const oidcOptionsSchema = z.object({
  loginRedirectUri: z.string().max(4096).optional(),
  logoutRedirectUri: z.string().max(4096).optional(),
  tokenSignatureAlgorithm: z.enum(['RS256', 'EdDSA']).optional(),
  backchannelLogoutUri: z.string().max(2048).optional(),
});

const credentialsSchema = z.object({ clientId: z.string().min(1), clientSecret: z.string().min(1) });

/**
 * One entry of a manifest's comma list: a path is prefixed with https://<domain>,
 * anything with its own scheme (a native app's `app.helpdesk:/`) is kept as it is.
 */
export function resolveUri(entry: string, domain: string): string | null {
  const e = entry.trim();
  if (!e) return null;
  if (/^[a-z][a-z0-9+.-]*:/i.test(e)) return e;
  return `https://${domain}${e.startsWith('/') ? '' : '/'}${e}`;
}

export function resolveUriList(list: string | undefined, domain: string): string[] {
  if (!list) return [];
  return [...new Set(list.split(',').map((e) => resolveUri(e, domain)).filter((u): u is string => u !== null))];
}

function oidcClient(app: App): RegisteredClient | null {
  const options = oidcOptionsSchema.safeParse(app.manifest.addons.oidc ?? {});
  const creds = credentialsSchema.safeParse(app.credentials.oidc);
  if (!options.success || !creds.success) return null;
  const o = options.data;
  const redirects = resolveUriList(o.loginRedirectUri, app.domain);
  if (redirects.length === 0) return null;
  const metadata: ClientMetadata = {
    client_id: creds.data.clientId,
    client_secret: creds.data.clientSecret,
    client_name: typeof app.manifest.title === 'string' ? app.manifest.title : app.id,
    redirect_uris: redirects,
    post_logout_redirect_uris: resolveUriList(o.logoutRedirectUri, app.domain),
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: o.tokenSignatureAlgorithm ?? 'RS256',
  };
  // oidc-provider accepts custom-scheme redirects (app.helpdesk:/) only for native clients;
  // native clients may also register claimed https URIs, so one client carries both.
  if (redirects.some((u) => !/^https?:/i.test(u))) metadata.application_type = 'native';
  const backchannel = resolveUri(o.backchannelLogoutUri ?? '', app.domain);
  if (backchannel) {
    metadata.backchannel_logout_uri = backchannel;
    metadata.backchannel_logout_session_required = true;
  }
  return { appId: app.id, addon: 'oidc', metadata };
}

function proxyAuthClient(app: App, proxyAuthPort: number): RegisteredClient | null {
  const creds = credentialsSchema.safeParse(app.credentials.proxyAuth);
  if (!creds.success) return null;
  const d = app.domain;
  return {
    appId: app.id,
    addon: 'proxyAuth',
    metadata: {
      client_id: creds.data.clientId,
      client_secret: creds.data.clientSecret,
      client_name: typeof app.manifest.title === 'string' ? app.manifest.title : app.id,
      redirect_uris: [`https://${d}/login/callback`, `http://${d}:${proxyAuthPort}/login/callback`],
      post_logout_redirect_uris: [`https://${d}/`, `http://${d}:${proxyAuthPort}/`],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
  };
}

/** Every client the apps imply, keyed by client_id. */
export function clientsFromApps(apps: App[], proxyAuthPort: number): Map<string, RegisteredClient> {
  const out = new Map<string, RegisteredClient>();
  for (const app of apps) {
    const candidates = [app.manifest.addons.oidc ? oidcClient(app) : null, app.manifest.addons.proxyAuth ? proxyAuthClient(app, proxyAuthPort) : null];
    for (const c of candidates) if (c && !out.has(c.metadata.client_id)) out.set(c.metadata.client_id, c);
  }
  return out;
}

/** The live client list: rebuilt after every directory change, so installs and rotations apply without a restart. */
export class ClientRegistry {
  private clients: Map<string, RegisteredClient>;
  private readonly stop: () => void;

  constructor(directory: Directory, config: HearthConfig) {
    this.clients = clientsFromApps(directory.apps(), config.ports.proxyauth);
    this.stop = directory.onChange((d) => {
      this.clients = clientsFromApps(d.apps(), config.ports.proxyauth);
    });
  }

  get(clientId: string): RegisteredClient | undefined {
    return this.clients.get(clientId);
  }

  close(): void {
    this.stop();
  }
}
