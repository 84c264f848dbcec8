import net from 'node:net';
import { z } from 'zod';

/** Settings only the gateway has, read once at start from HEARTH_PROXYAUTH_* variables. */
export interface ProxyAuthSettings {
  /** how long the upstream may stay silent (waiting for headers or between body chunks) before 504 */
  upstreamTimeoutMs: number;
  /** request header bytes accepted before 431 */
  maxHeaderSize: number;
  /** a session unused this long is over */
  sessionIdleSeconds: number;
  /** a session this old is over, however active */
  sessionMaxSeconds: number;
  /** peers whose X-Forwarded-For/Proto/Host are believed (a TLS terminator in front of the gateway) */
  trustedProxies: string[];
}

const ms = z.coerce.number().int().min(100).max(3_600_000);
const seconds = z.coerce.number().int().min(1).max(366 * 86400);

const schema = z
  .object({
    HEARTH_PROXYAUTH_UPSTREAM_TIMEOUT_MS: ms.default(60_000),
    HEARTH_PROXYAUTH_MAX_HEADER_SIZE: z.coerce.number().int().min(1024).max(1_048_576).default(16_384),
    HEARTH_PROXYAUTH_SESSION_IDLE_SECONDS: seconds.default(12 * 3600),
    HEARTH_PROXYAUTH_SESSION_MAX_SECONDS: seconds.default(7 * 86400),
    HEARTH_PROXYAUTH_TRUSTED_PROXIES: z
      .string()
      .default('127.0.0.1,::1')
      .transform((s) => s.split(',').map((a) => a.trim()).filter(Boolean))
      .refine((list) => list.every((a) => net.isIP(a) !== 0), 'must be a comma list of IP addresses'),
  })
  .refine((s) => s.HEARTH_PROXYAUTH_SESSION_IDLE_SECONDS <= s.HEARTH_PROXYAUTH_SESSION_MAX_SECONDS, {
    message: 'must not exceed HEARTH_PROXYAUTH_SESSION_MAX_SECONDS',
    path: ['HEARTH_PROXYAUTH_SESSION_IDLE_SECONDS'],
  });

export class SettingsError extends Error {}

export function loadSettings(env: NodeJS.ProcessEnv = process.env): ProxyAuthSettings {
  const r = schema.safeParse(env);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new SettingsError(`invalid setting ${String(issue.path[0])}: ${issue.message}`);
  }
  const s = r.data;
  return {
    upstreamTimeoutMs: s.HEARTH_PROXYAUTH_UPSTREAM_TIMEOUT_MS,
    maxHeaderSize: s.HEARTH_PROXYAUTH_MAX_HEADER_SIZE,
    sessionIdleSeconds: s.HEARTH_PROXYAUTH_SESSION_IDLE_SECONDS,
    sessionMaxSeconds: s.HEARTH_PROXYAUTH_SESSION_MAX_SECONDS,
    trustedProxies: s.HEARTH_PROXYAUTH_TRUSTED_PROXIES,
  };
}
