import type { HearthConfig } from '@hearth/config';
import type { Directory } from '@hearth/directory';
import type { Logger } from '@hearth/log';
import Provider, { interactionPolicy, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { accountUsable, findAccountIn } from './account.ts';
import { adapterFor } from './adapter.ts';
import type { OidcStorage } from './storage.ts';
import type { ClientRegistry } from './clients.ts';
import { OIDC_ROUTES } from './endpoints.ts';
import { firstPartyGrant } from './grants.ts';
import type { KeyMaterial } from './keys.ts';
import { errorPage } from './views/error.ts';
import { PAGE_CSP } from './views/layout.ts';
import { loggedOutPage, logoutPage } from './views/logout.ts';

export interface ProviderDeps {
  config: HearthConfig;
  directory: Directory;
  clients: ClientRegistry;
  storage: OidcStorage;
  keys: KeyMaterial;
  logger: Logger;
  /** outgoing requests (back-channel logout); tests point it at a local server */
  fetch?: typeof fetch;
}

const DAY = 24 * 3600;

/** The claims of each scope. */
export const CLAIMS: NonNullable<Configuration['claims']> = {
  // amr (pwd, otp) rides on the openid scope so it is always in the ID token.
  openid: ['sub', 'amr'],
  // groups also rides on profile: most apps ask for "openid profile email" only.
  profile: ['name', 'given_name', 'family_name', 'preferred_username', 'locale', 'groups'],
  email: ['email', 'email_verified'],
  groups: ['groups'],
};

export const SCOPES = ['openid', 'offline_access', 'profile', 'email', 'groups'] as const;

/** A refresh token comes with a code only for offline_access, to a client allowed the refresh grant. */
export const refreshTokenForOfflineAccess: NonNullable<Configuration['issueRefreshToken']> = (_ctx, client, code) => client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access');

/** The token lifetimes, in seconds. */
export const TTL = {
  AccessToken: 3600,
  AuthorizationCode: 60,
  IdToken: 3600,
  Interaction: 3600,
  RefreshToken: 30 * DAY,
  Session: 14 * DAY,
  Grant: 30 * DAY,
} as const;

function appOf(deps: ProviderDeps, clientId: string | undefined): string | undefined {
  return clientId === undefined ? undefined : deps.clients.get(clientId)?.appId;
}

function clientName(ctx: KoaContextWithOIDC): string | null {
  const c = ctx.oidc.client;
  return c ? String(c.clientName ?? c.clientId) : null;
}

/**
 * The default prompts, plus a login check for a session whose account findAccount refuses (deleted, or
 * re-created under the same name while no provider ran to purge the session): sign in again.
 */
function interactionPolicyWithAccountCheck(): ReturnType<typeof interactionPolicy.base> {
  const policy = interactionPolicy.base();
  policy
    .get('login')!
    .checks.add(new interactionPolicy.Check('account_gone', 'the signed-in account may no longer sign in', (ctx) => Boolean(ctx.oidc.session?.accountId) && !ctx.oidc.account));
  return policy;
}

/** One oidc-provider instance over the directory; rebuilt (not restarted) when signing keys rotate. */
export function buildProvider(deps: ProviderDeps): Provider {
  const { config, directory, clients } = deps;
  const sameApp = (a: string | undefined, b: string | undefined): boolean => a !== undefined && a === b;

  const configuration: Configuration = {
    adapter: adapterFor(deps.storage, clients),
    clients: [],
    findAccount: findAccountIn(directory, clients),
    claims: CLAIMS,
    scopes: [...SCOPES],
    // Apps read the profile from the ID token as Cloudron's provider gives it, not only from userinfo.
    conformIdTokenClaims: false,
    routes: {
      authorization: OIDC_ROUTES.authorization,
      token: OIDC_ROUTES.token,
      jwks: OIDC_ROUTES.jwks,
      userinfo: OIDC_ROUTES.userinfo,
      introspection: OIDC_ROUTES.introspection,
      revocation: OIDC_ROUTES.revocation,
      end_session: OIDC_ROUTES.end_session,
    },
    jwks: { keys: deps.keys.jwks as never },
    cookies: {
      keys: deps.keys.cookieKeys,
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    pkce: { required: () => true },
    ttl: { ...TTL },
    enabledJWA: {
      idTokenSigningAlgValues: ['RS256', 'EdDSA'],
      userinfoSigningAlgValues: ['RS256', 'EdDSA'],
      introspectionSigningAlgValues: ['RS256', 'EdDSA'],
      authorizationSigningAlgValues: ['RS256', 'EdDSA'],
    },
    features: {
      devInteractions: { enabled: false },
      introspection: {
        enabled: true,
        // An app may introspect the tokens issued to it (its oidc client or its proxyAuth gateway), nobody
        // else's; a token of a user who may no longer sign in is inactive even before it is purged.
        allowedPolicy: (_ctx, client, token) => {
          const accountId = 'accountId' in token ? token.accountId : undefined;
          return sameApp(appOf(deps, client.clientId), appOf(deps, token.clientId)) && (!accountId || accountUsable(directory, clients, accountId, token.clientId) !== undefined);
        },
      },
      revocation: {
        enabled: true,
        allowedPolicy: (_ctx, client, token) => sameApp(appOf(deps, client.clientId), appOf(deps, token.clientId)),
      },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx, form) => {
          ctx.set('Content-Security-Policy', PAGE_CSP);
          ctx.type = 'html';
          ctx.body = logoutPage(form, clientName(ctx));
        },
        postLogoutSuccessSource: (ctx) => {
          ctx.set('Content-Security-Policy', PAGE_CSP);
          ctx.type = 'html';
          ctx.body = loggedOutPage(clientName(ctx));
        },
      },
      userinfo: { enabled: true },
    },
    rotateRefreshToken: true,
    issueRefreshToken: refreshTokenForOfflineAccess,
    // Consent is skipped for installed apps; a user outside the app's access list gets no grant,
    // which sends them to the interaction that explains it.
    loadExistingGrant: async (ctx) => {
      const accountId = ctx.oidc.session?.accountId;
      const client = ctx.oidc.client;
      if (!accountId || !client) return undefined;
      if (!accountUsable(directory, clients, accountId, client.clientId)) return undefined;
      const existing = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session?.grantIdFor(client.clientId);
      return firstPartyGrant(ctx.oidc.provider, accountId, client.clientId, existing);
    },
    interactions: { policy: interactionPolicyWithAccountCheck(), url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    renderError: (ctx, out) => {
      ctx.set('Content-Security-Policy', PAGE_CSP);
      ctx.type = 'html';
      ctx.body = errorPage(String(out.error), out.error_description === undefined ? undefined : String(out.error_description));
    },
    clientBasedCORS: (_ctx, origin, client) => client.redirectUris?.some((u) => URL.parse(u)?.origin === origin) ?? false,
    // Back-channel logout goes to apps on the admin's own (often private) network; the URIs come
    // from installed manifests, not from dynamic registration, so the SSRF guard does not apply.
    fetch: (url, options) => {
      const { dispatcher: _ignored, ...rest } = options as RequestInit & { dispatcher?: unknown };
      return (deps.fetch ?? fetch)(url, rest);
    },
  };

  const provider = new Provider(config.oidcIssuer, configuration);
  // Koa reads X-Forwarded-*, but only the values our middleware put there: Proto and Host from the
  // issuer (securityHeaders), For from HEARTH_TRUSTED_PROXIES (clientAddress). A client's own are replaced.
  provider.proxy = true;
  (provider as unknown as { maxIpsCount: number }).maxIpsCount = 1;
  return provider;
}
