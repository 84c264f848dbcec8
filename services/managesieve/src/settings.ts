import { parseEnv } from '@hearth/config';
import { loadConnectionLimits, type ConnectionLimits } from '@hearth/lineserver';
import type { ScriptLimits } from '@hearth/sieve';
import { z } from 'zod';

export interface ManageSieveSettings {
  /** HEARTH_SIEVE_MAX_SCRIPT_KB, HEARTH_SIEVE_MAX_SCRIPTS */
  limits: ScriptLimits;
  /** HEARTH_SIEVE_MAX_CONNECTIONS, _MAX_CONNECTIONS_PER_ADDRESS, _IDLE_TIMEOUT, _MAX_LIFETIME */
  connections: ConnectionLimits;
}

const schema = z.object({
  HEARTH_SIEVE_MAX_SCRIPT_KB: z.coerce.number().int().min(1).max(10240).default(64),
  HEARTH_SIEVE_MAX_SCRIPTS: z.coerce.number().int().min(1).max(1000).default(20),
});

/** RFC 5804 §1.4 leaves the timeout to the server; webmail keeps sessions short. */
export const SIEVE_CONNECTION_DEFAULTS: ConnectionLimits = { maxConnections: 500, maxPerAddress: 50, idleTimeoutMs: 30 * 60_000, maxLifetimeMs: 0 };

export function loadManageSieveSettings(env: NodeJS.ProcessEnv = process.env): ManageSieveSettings {
  const e = parseEnv(schema, env);
  return {
    limits: { maxSize: e.HEARTH_SIEVE_MAX_SCRIPT_KB * 1024, maxScripts: e.HEARTH_SIEVE_MAX_SCRIPTS },
    connections: loadConnectionLimits('SIEVE', SIEVE_CONNECTION_DEFAULTS, env),
  };
}
