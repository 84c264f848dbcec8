import { blank, parseEnv } from '@hearth/config';
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
  /** where the gateway itself reaches the OIDC provider when the public issuer URL does not work from here (containers) */
  oidcInternalUrl: string | null;
}

const ms = z.coerce.number().int().min(100).max(3_600_000);
const seconds = z.coerce.number().int().min(1).max(366 * 86400);

const schema = z
  .object({
    HEARTH_PROXYAUTH_UPSTREAM_TIMEOUT_MS: ms.default(60_000),
    HEARTH_PROXYAUTH_MAX_HEADER_SIZE: z.coerce.number().int().min(1024).max(1_048_576).default(16_384),
    HEARTH_PROXYAUTH_SESSION_IDLE_SECONDS: seconds.default(12 * 3600),
    HEARTH_PROXYAUTH_SESSION_MAX_SECONDS: seconds.default(7 * 86400),
    // Folded into HEARTH_TRUSTED_PROXIES (shared with oidc); refused so an old setting is not silently dropped.
    HEARTH_PROXYAUTH_TRUSTED_PROXIES: z
      .string()
      .optional()
      .refine((v) => v === undefined, 'replaced by HEARTH_TRUSTED_PROXIES, which oidc and proxyauth share (default: empty)'),
    HEARTH_PROXYAUTH_OIDC_INTERNAL_URL: z
      .string()
      .regex(/^https?:\/\/[^/?#]+\/?$/, 'must be an http(s) origin such as http://oidc:4000')
      .optional()
      .or(blank),
  })
  .refine((s) => s.HEARTH_PROXYAUTH_SESSION_IDLE_SECONDS <= s.HEARTH_PROXYAUTH_SESSION_MAX_SECONDS, {
    message: 'must not exceed HEARTH_PROXYAUTH_SESSION_MAX_SECONDS',
    path: ['HEARTH_PROXYAUTH_SESSION_IDLE_SECONDS'],
  });

export function loadSettings(env: NodeJS.ProcessEnv = process.env): ProxyAuthSettings {
  const s = parseEnv(schema, env);
  return {
    upstreamTimeoutMs: s.HEARTH_PROXYAUTH_UPSTREAM_TIMEOUT_MS,
    maxHeaderSize: s.HEARTH_PROXYAUTH_MAX_HEADER_SIZE,
    sessionIdleSeconds: s.HEARTH_PROXYAUTH_SESSION_IDLE_SECONDS,
    sessionMaxSeconds: s.HEARTH_PROXYAUTH_SESSION_MAX_SECONDS,
    oidcInternalUrl: s.HEARTH_PROXYAUTH_OIDC_INTERNAL_URL ?? null,
  };
}
