import { blank, ConfigError, hostUnder, parseEnv, type HearthConfig } from '@hearth/config';
import { z } from 'zod';

/** Settings only the console has, read once at start from HEARTH_CONSOLE_* variables. */
export interface ConsoleSettings {
  /** the console's public origin: browsers come back here from the OIDC provider; https means it sits behind TLS */
  publicUrl: string;
  /** a session unused this long is over */
  sessionIdleSeconds: number;
  /** a session this old is over, however active */
  sessionMaxSeconds: number;
  /** where the console itself reaches the OIDC provider when the public issuer URL does not work from here (containers) */
  oidcInternalUrl: string | null;
  /** where the status page probes each daemon's ports: an address, or "{service}" for each daemon's own host name (compose) */
  probeHost: string | null;
  /** the WebAuthn RP ID passkeys are registered under here; null when the console's host cannot use one (then `passkeysOff` says why) */
  passkeyRpId: string | null;
  passkeysOff: string | null;
}

const seconds = z.coerce.number().int().min(60).max(366 * 86400);
const origin = z.string().regex(/^https?:\/\/[^/?#]+\/?$/, 'must be an http(s) origin such as https://console.example.com');

const schema = z
  .object({
    HEARTH_CONSOLE_URL: origin.optional().or(blank),
    HEARTH_CONSOLE_SESSION_IDLE_SECONDS: seconds.default(3600),
    HEARTH_CONSOLE_SESSION_MAX_SECONDS: seconds.default(12 * 3600),
    HEARTH_CONSOLE_OIDC_INTERNAL_URL: origin.optional().or(blank),
    HEARTH_CONSOLE_PROBE_HOST: z
      .string()
      .regex(/^(\{service\}|[a-z0-9.:-]+)$/i, 'must be a host name, an address or {service}')
      .optional()
      .or(blank),
  })
  .refine((s) => s.HEARTH_CONSOLE_SESSION_IDLE_SECONDS <= s.HEARTH_CONSOLE_SESSION_MAX_SECONDS, {
    message: 'must not exceed HEARTH_CONSOLE_SESSION_MAX_SECONDS',
    path: ['HEARTH_CONSOLE_SESSION_IDLE_SECONDS'],
  });

/** The console's URL when HEARTH_CONSOLE_URL is unset: its own port on HEARTH_HOSTNAME. */
export function defaultConsoleUrl(config: HearthConfig): string {
  return `http://${config.hostname}:${config.ports.console}`;
}

/**
 * Passkeys registered here are used at the sign-in page, so both hosts must be under one RP ID.
 * An RP ID set explicitly that leaves the console out is a mistake, refused at start; the one
 * derived from the issuer just leaves passkeys off here, with the reason on the page.
 */
function passkeyRpId(config: HearthConfig, publicUrl: string, env: NodeJS.ProcessEnv): { passkeyRpId: string | null; passkeysOff: string | null } {
  const host = new URL(publicUrl).hostname;
  const rpId = config.webauthnRpId;
  if (!rpId) return { passkeyRpId: null, passkeysOff: `the sign-in page (${config.oidcIssuer}) is reached by IP address; passkeys need host names (HEARTH_OIDC_ISSUER, HEARTH_CONSOLE_URL, HEARTH_WEBAUTHN_RP_ID)` };
  if (hostUnder(host, rpId)) return { passkeyRpId: rpId, passkeysOff: null };
  if (env.HEARTH_WEBAUTHN_RP_ID?.trim()) throw new ConfigError(`invalid setting HEARTH_WEBAUTHN_RP_ID: ${rpId} must also be HEARTH_CONSOLE_URL's host (${host}) or a domain it is under, where passkeys are registered`);
  return { passkeyRpId: null, passkeysOff: `the console (${host}) and the sign-in page (${rpId}) share no RP ID; set HEARTH_WEBAUTHN_RP_ID to a domain both are under` };
}

export function loadSettings(config: HearthConfig, env: NodeJS.ProcessEnv = process.env): ConsoleSettings {
  const s = parseEnv(schema, env);
  const publicUrl = (s.HEARTH_CONSOLE_URL ?? defaultConsoleUrl(config)).replace(/\/+$/, '');
  return {
    publicUrl,
    ...passkeyRpId(config, publicUrl, env),
    sessionIdleSeconds: s.HEARTH_CONSOLE_SESSION_IDLE_SECONDS,
    sessionMaxSeconds: s.HEARTH_CONSOLE_SESSION_MAX_SECONDS,
    oidcInternalUrl: s.HEARTH_CONSOLE_OIDC_INTERNAL_URL?.replace(/\/+$/, '') ?? null,
    probeHost: s.HEARTH_CONSOLE_PROBE_HOST ?? null,
  };
}
