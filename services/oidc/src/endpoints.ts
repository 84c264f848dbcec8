import { OIDC_PATHS } from '@hearth/config';

/**
 * The provider's routes, relative to the issuer. They are the paths provisioning hands
 * out as CLOUDRON_OIDC_* (OIDC_PATHS in @hearth/config), so the discovery document and
 * the app environment always agree.
 */
export const OIDC_ROUTES = {
  discovery: OIDC_PATHS.discovery,
  authorization: OIDC_PATHS.authorization,
  token: OIDC_PATHS.token,
  jwks: OIDC_PATHS.jwks,
  userinfo: OIDC_PATHS.userinfo,
  introspection: OIDC_PATHS.introspection,
  revocation: OIDC_PATHS.revocation,
  end_session: OIDC_PATHS.endSession,
} as const;

export interface OidcEndpoints {
  discovery: string;
  issuer: string;
  authorization: string;
  token: string;
  jwks: string;
  userinfo: string;
  introspection: string;
  revocation: string;
  endSession: string;
}

/** Absolute endpoint URLs for an issuer (e.g. config.oidcIssuer). */
export function oidcEndpoints(issuer: string): OidcEndpoints {
  const base = issuer.replace(/\/+$/, '');
  return {
    discovery: base + OIDC_ROUTES.discovery,
    issuer: base,
    authorization: base + OIDC_ROUTES.authorization,
    token: base + OIDC_ROUTES.token,
    jwks: base + OIDC_ROUTES.jwks,
    userinfo: base + OIDC_ROUTES.userinfo,
    introspection: base + OIDC_ROUTES.introspection,
    revocation: base + OIDC_ROUTES.revocation,
    endSession: base + OIDC_ROUTES.end_session,
  };
}

/** Where the web console ends a user's provider sessions, telling their apps (see session-end.ts); not part of OIDC. */
export const CONSOLE_SESSION_END_PATH = '/hearth/sessions/end';
