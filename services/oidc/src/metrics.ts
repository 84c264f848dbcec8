import type http from 'node:http';
import { bounded, counter } from '@hearth/metrics';
import { OIDC_ROUTES } from './endpoints.ts';

/** OIDC's own metrics; HTTP requests and connections are counted by instrumentHttp. */

const GRANT_TYPES = new Set(['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code', 'urn:openid:params:grant-type:ciba']);
/** RFC 6749 §5.2 token endpoint errors and the provider's own few; anything else is "other". */
const GRANT_ERRORS = new Set(['invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope', 'invalid_target', 'server_error']);

const grants = counter({
  name: 'hearth_oidc_grants_total',
  help: 'Token endpoint grants by grant type and outcome (ok, or the OAuth error: invalid_grant, invalid_client, …).',
  labelNames: ['grant_type', 'outcome'],
});

export function countGrant(grantType: unknown, error: string | null): void {
  grants.inc({ grant_type: bounded(GRANT_TYPES, typeof grantType === 'string' ? grantType : null), outcome: error === null ? 'ok' : bounded(GRANT_ERRORS, error) });
}

const ROUTES = Object.entries(OIDC_ROUTES);

/** The request metrics' route label: the provider endpoint a path belongs to, "interaction" for sign-in pages, else "other". */
export function oidcRoute(req: http.IncomingMessage): string {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (path.startsWith('/interaction/')) return 'interaction';
  for (const [name, route] of ROUTES) if (path === route || path.startsWith(`${route}/`)) return name;
  return 'other';
}
