import { ConfigError } from '@hearth/config';
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
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`invalid setting ${String(issue.path[0])}: ${issue.message}`);
  }
  return { workers: parsed.data.HEARTH_OIDC_WORKERS };
}
