import { parseEnv } from '@hearth/config';
import { z } from 'zod';

/** How many connections a daemon takes, from whom, and for how long. */
export interface ConnectionLimits {
  /** open at once over all of the daemon's listeners; beyond it a new client is refused */
  maxConnections: number;
  /** open at once from one client address (IPv6: one /64), so one client cannot take every slot */
  maxPerAddress: number;
  /** no traffic either way for this long closes the connection (a session may change it later) */
  idleTimeoutMs: number;
  /** a connection's whole life, however busy (0: unlimited); stops clients that trickle bytes */
  maxLifetimeMs: number;
}

/**
 * Reads HEARTH_<SERVICE>_MAX_CONNECTIONS, _MAX_CONNECTIONS_PER_ADDRESS, _IDLE_TIMEOUT and
 * _MAX_LIFETIME (both in seconds), falling back to the service's defaults.
 */
export function loadConnectionLimits(service: string, defaults: ConnectionLimits, env: NodeJS.ProcessEnv = process.env): ConnectionLimits {
  const p = `HEARTH_${service}_`;
  const count = z.coerce.number().int().min(1);
  const seconds = z.coerce.number().positive();
  const e = parseEnv(
    z.object({
      [`${p}MAX_CONNECTIONS`]: count.default(defaults.maxConnections),
      [`${p}MAX_CONNECTIONS_PER_ADDRESS`]: count.default(defaults.maxPerAddress),
      [`${p}IDLE_TIMEOUT`]: seconds.default(defaults.idleTimeoutMs / 1000),
      [`${p}MAX_LIFETIME`]: z.coerce.number().min(0).default(defaults.maxLifetimeMs / 1000),
    }),
    env,
  ) as Record<string, number>;
  const limits = {
    maxConnections: e[`${p}MAX_CONNECTIONS`]!,
    maxPerAddress: e[`${p}MAX_CONNECTIONS_PER_ADDRESS`]!,
    idleTimeoutMs: Math.round(e[`${p}IDLE_TIMEOUT`]! * 1000),
    maxLifetimeMs: Math.round(e[`${p}MAX_LIFETIME`]! * 1000),
  };
  return { ...limits, maxPerAddress: Math.min(limits.maxPerAddress, limits.maxConnections) };
}
