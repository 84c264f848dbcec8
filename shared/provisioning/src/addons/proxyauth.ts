import { z } from 'zod';
import { generateSecret } from '@hearth/directory';
import type { Addon } from '../addon.ts';

/** No variables: the gateway guards the app's domain; it signs in through the OIDC provider as this client. */
export const proxyAuth: Addon = {
  name: 'proxyAuth',
  optionsSchema: z
    .object({
      path: z
        .string()
        .max(2000)
        .regex(/^!?\/[^\s]*$/, 'path must start with "/" (or "!/" to exclude a prefix)')
        .optional(),
      basicAuth: z.boolean().optional(),
      supportsBearerAuth: z.boolean().optional(),
    })
    .strict(),
  installOnly: true,
  async provision(ctx, existing) {
    return existing ?? { clientId: `proxyauth-${ctx.app.id}`, clientSecret: generateSecret(32), cookieSecret: generateSecret(32) };
  },
  async rotate(_ctx, existing) {
    return { ...existing, clientSecret: generateSecret(32), cookieSecret: generateSecret(32) };
  },
  env() {
    return [];
  },
};
