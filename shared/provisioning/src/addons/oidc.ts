import { z } from 'zod';
import { OIDC_PATHS } from '@hearth/config';
import { generateSecret } from '@hearth/directory';
import type { Addon } from '../addon.ts';

/** A comma list of paths ("/auth/callback") or custom-scheme URIs ("app.helpdesk:/"). */
const uriList = z
  .string()
  .max(4000)
  .refine(
    (s) =>
      s
        .split(',')
        .map((p) => p.trim())
        .every((p) => p === '' || p.startsWith('/') || /^[a-z][a-z0-9+.-]*:/i.test(p)),
    { message: 'each entry must be a path starting with "/" or a custom-scheme URI such as app.example:/' },
  );

export const oidcOptionsSchema = z
  .object({
    loginRedirectUri: uriList.optional(),
    logoutRedirectUri: uriList.optional(),
    tokenSignatureAlgorithm: z.enum(['RS256', 'EdDSA']).optional(),
    backchannelLogoutUri: z.string().startsWith('/').max(2000).optional(),
  })
  .strict();

export const oidc: Addon = {
  name: 'oidc',
  optionsSchema: oidcOptionsSchema,
  installOnly: true,
  async provision(ctx, existing) {
    return existing ?? { clientId: `cid-${ctx.app.id}`, clientSecret: generateSecret(32) };
  },
  async rotate(_ctx, existing) {
    return { ...existing, clientSecret: generateSecret(32) };
  },
  env({ config }, c) {
    const issuer = config.oidcIssuer;
    return [
      ['CLOUDRON_OIDC_DISCOVERY_URL', `${issuer}${OIDC_PATHS.discovery}`],
      ['CLOUDRON_OIDC_ISSUER', issuer],
      ['CLOUDRON_OIDC_AUTH_ENDPOINT', `${issuer}${OIDC_PATHS.authorization}`],
      ['CLOUDRON_OIDC_TOKEN_ENDPOINT', `${issuer}${OIDC_PATHS.token}`],
      ['CLOUDRON_OIDC_KEYS_ENDPOINT', `${issuer}${OIDC_PATHS.jwks}`],
      ['CLOUDRON_OIDC_PROFILE_ENDPOINT', `${issuer}${OIDC_PATHS.userinfo}`],
      ['CLOUDRON_OIDC_CLIENT_ID', c.clientId!],
      ['CLOUDRON_OIDC_CLIENT_SECRET', c.clientSecret!],
    ];
  },
};
