import { parseEnv } from '@hearth/config';
import { loadConnectionLimits, type ConnectionLimits } from '@hearth/lineserver';
import { loadMailQuota, type MailQuota } from '@hearth/mailstore';
import { z } from 'zod';

/** Settings only the IMAP daemon has, read once at start. */
export interface ImapSettings {
  /** largest APPEND message */
  maxMessageBytes: number;
  /** per-mailbox limits (HEARTH_MAIL_QUOTA_MB, HEARTH_MAIL_QUOTA_MESSAGES), enforced by the mail store */
  quota: MailQuota;
  /** HEARTH_IMAP_MAX_CONNECTIONS, _MAX_CONNECTIONS_PER_ADDRESS, _IDLE_TIMEOUT (after login), _MAX_LIFETIME */
  connections: ConnectionLimits;
  /** HEARTH_IMAP_REQUIRE_TLS: no LOGIN/AUTHENTICATE before STARTTLS on the plain port (LOGINDISABLED, RFC 3501 §6.2.3) */
  requireTls?: boolean;
  /** NOTIFY responses a session may hold unsent before NOTIFY ends with NOTIFICATIONOVERFLOW (RFC 5465); default 1 MiB */
  notifyBacklogBytes?: number;
}

const schema = z.object({
  HEARTH_IMAP_MAX_MESSAGE_MB: z.coerce.number().int().min(1).max(1024).default(50),
  HEARTH_IMAP_REQUIRE_TLS: z.enum(['0', '1', 'false', 'true']).default('0'),
});

/** RFC 3501 §5.4: an autologout timer must be at least 30 minutes; IDLE clients re-issue within 29. */
export const IMAP_CONNECTION_DEFAULTS: ConnectionLimits = { maxConnections: 2000, maxPerAddress: 200, idleTimeoutMs: 30 * 60_000, maxLifetimeMs: 0 };

export function loadImapSettings(env: NodeJS.ProcessEnv = process.env): ImapSettings {
  const e = parseEnv(schema, env);
  return {
    maxMessageBytes: e.HEARTH_IMAP_MAX_MESSAGE_MB * 1024 * 1024,
    quota: loadMailQuota(env),
    connections: loadConnectionLimits('IMAP', IMAP_CONNECTION_DEFAULTS, env),
    requireTls: e.HEARTH_IMAP_REQUIRE_TLS === '1' || e.HEARTH_IMAP_REQUIRE_TLS === 'true',
  };
}
