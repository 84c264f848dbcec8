import { parseEnv } from '@hearth/config';
import { z } from 'zod';

/** Settings only the OIDC daemon has, read once at start. */
export interface OidcSettings {
  /** processes serving the port (node:cluster); state is shared, so they act as one */
  workers: number;
}

const schema = z.object({
  HEARTH_OIDC_WORKERS: z.coerce.number().int().min(1).max(64).default(1),
});

export function loadOidcSettings(env: NodeJS.ProcessEnv = process.env): OidcSettings {
  return { workers: parseEnv(schema, env).HEARTH_OIDC_WORKERS };
}
