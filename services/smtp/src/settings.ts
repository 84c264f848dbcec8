import net from 'node:net';
import { ConfigError, envFlag, parseEnv } from '@hearth/config';
import { loadConnectionLimits, type ConnectionLimits } from '@hearth/lineserver';
import { loadMailQuota, type MailQuota } from '@hearth/mailstore';
import { z } from 'zod';
import { parseNetworks, type NetworkList } from './networks.ts';
import { DEFAULT_QUEUE_LEASE_MS } from './queue-backend.ts';

/** A smarthost given as smtp[s]://user:pass@host:port. */
export interface RelayHost {
  host: string;
  port: number;
  secure: boolean;
  user: string | null;
  pass: string | null;
}

export interface SmtpSettings {
  relay: RelayHost | null;
  trustedNetworks: NetworkList;
  maxMessageSize: number;
  /** message bytes held in memory across all sessions at once; beyond it DATA gets 452 */
  maxBufferedBytes: number;
  maxRecipients: number;
  /** longest line in a message body, without CRLF (RFC 5321: 998) */
  maxLineLength: number;
  /** HEARTH_SMTP_MAX_CONNECTIONS, _MAX_CONNECTIONS_PER_ADDRESS, _IDLE_TIMEOUT, _MAX_LIFETIME over all three listeners */
  connections: ConnectionLimits;
  /** messages per minute; 0 turns the limit off */
  ratePerSender: number;
  ratePerIp: number;
  /** delays between delivery attempts; the last one repeats until maxQueueAgeMs */
  retryDelaysMs: number[];
  maxQueueAgeMs: number;
  /** with PostgreSQL: how long a replica's claim on a queue entry lasts unless renewed (then another replica takes it over) */
  queueLeaseMs: number;
  /** parallel onward deliveries */
  deliveryConcurrency: number;
  /** skip TLS certificate checks towards the smarthost / MX (tests, self-signed relays) */
  relayInsecureTls: boolean;
  /** HEARTH_MAIL_QUOTA_MB / _MESSAGES: local deliveries over it are refused at RCPT or DATA with 452 4.2.2 */
  quota: MailQuota;
  /** DNS servers ("ip" or "ip:port") for SPF, DKIM, DMARC, ARC and MX lookups; empty: the system's */
  dnsServers: string[];
  /** names us in Authentication-Results (RFC 8601); null: the host name */
  authservId: string | null;
  /** domains whose ARC seal (RFC 8617) we believe: a passing chain sealed by one overrides a DMARC failure */
  arcTrustedSealers: Set<string>;
  /** HEARTH_SMTP_RECIPIENT_DELIMITER (Postfix's recipient_delimiter): user+detail@domain reaches user@domain; "" turns it off */
  recipientDelimiter: string;
}

const seconds = z.coerce.number().positive();

function parseRelay(url: string): RelayHost {
  const u = new URL(url);
  if (u.protocol !== 'smtp:' && u.protocol !== 'smtps:') throw new Error('must be smtp:// or smtps://');
  if (!u.hostname) throw new Error('needs a host');
  const secure = u.protocol === 'smtps:';
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : secure ? 465 : 25,
    secure,
    user: u.username ? decodeURIComponent(u.username) : null,
    pass: u.password ? decodeURIComponent(u.password) : null,
  };
}

const schema = z.object({
  HEARTH_SMTP_RELAY: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (!v) return null;
      try {
        return parseRelay(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `must be smtp[s]://user:pass@host:port (${(err as Error).message})` });
        return z.NEVER;
      }
    }),
  HEARTH_SMTP_TRUSTED_NETWORKS: z
    .string()
    .default('')
    .transform((v, ctx) => {
      try {
        return parseNetworks(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
  HEARTH_SMTP_MAX_MESSAGE_SIZE: z.coerce.number().int().min(1024).default(25 * 1024 * 1024),
  HEARTH_SMTP_MAX_BUFFERED: z.coerce.number().int().min(1024).default(256 * 1024 * 1024),
  HEARTH_SMTP_MAX_RECIPIENTS: z.coerce.number().int().min(1).default(100),
  HEARTH_SMTP_MAX_LINE_LENGTH: z.coerce.number().int().min(78).default(998),
  HEARTH_SMTP_RATE_PER_SENDER: z.coerce.number().int().min(0).default(120),
  HEARTH_SMTP_RATE_PER_IP: z.coerce.number().int().min(0).default(600),
  HEARTH_SMTP_RETRY_DELAYS: z
    .string()
    .default('60,300,900,1800,3600,7200,14400')
    .transform((v, ctx) => {
      const list = v.split(',').map((s) => Number(s.trim()));
      if (list.length === 0 || list.some((n) => !Number.isFinite(n) || n <= 0)) {
        ctx.addIssue({ code: 'custom', message: 'must be a comma-separated list of positive seconds' });
        return z.NEVER;
      }
      return list.map((s) => Math.round(s * 1000));
    }),
  HEARTH_SMTP_MAX_QUEUE_AGE: seconds.default(4 * 24 * 3600),
  HEARTH_SMTP_QUEUE_LEASE: seconds.default(DEFAULT_QUEUE_LEASE_MS / 1000),
  HEARTH_SMTP_DELIVERY_CONCURRENCY: z.coerce.number().int().min(1).max(500).default(20),
  HEARTH_SMTP_RELAY_INSECURE_TLS: envFlag,
  HEARTH_SMTP_DNS_SERVERS: z
    .string()
    .default('')
    .transform((v, ctx) => {
      const list = v.split(/[\s,]+/).filter(Boolean);
      for (const s of list) {
        if (!isDnsServer(s)) {
          ctx.addIssue({ code: 'custom', message: `${s} is not an IP address or ip:port` });
          return z.NEVER;
        }
      }
      return list;
    }),
  HEARTH_SMTP_AUTHSERV_ID: z
    .string()
    .regex(/^[A-Za-z0-9.-]+$/, 'must be a host name')
    .optional(),
  HEARTH_SMTP_ARC_TRUSTED_SEALERS: z
    .string()
    .default('')
    .transform((v) => new Set(v.split(/[\s,]+/).filter(Boolean).map((d) => d.toLowerCase()))),
  HEARTH_SMTP_RECIPIENT_DELIMITER: z
    .string()
    .regex(/^[^@\s"<>()[\]\\,;:]{0,4}$/, 'at most 4 characters that may stand in a local part (e.g. "+" or "+-")')
    .default('+'),
});

/** "1.2.3.4", "1.2.3.4:5353", "::1" or "[::1]:5353", the forms node's resolver takes */
function isDnsServer(s: string): boolean {
  if (net.isIP(s)) return true;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(s);
  return !!m && net.isIP(m[1] ?? m[2]!) !== 0 && Number(m[3]) > 0 && Number(m[3]) < 65536;
}

/** One client address may hold a twelfth of the slots: a flood of idle sessions leaves room for every app. */
export const SMTP_CONNECTION_DEFAULTS: ConnectionLimits = { maxConnections: 600, maxPerAddress: 50, idleTimeoutMs: 60_000, maxLifetimeMs: 600_000 };

/** Settings that were renamed when SMTP moved onto the shared connection layer: refused, not silently ignored. */
const RENAMED: Record<string, string> = {
  HEARTH_SMTP_MAX_CLIENTS: 'HEARTH_SMTP_MAX_CONNECTIONS (now over all listeners)',
  HEARTH_SMTP_SOCKET_TIMEOUT: 'HEARTH_SMTP_IDLE_TIMEOUT',
  HEARTH_SMTP_SESSION_TIMEOUT: 'HEARTH_SMTP_MAX_LIFETIME',
};

/** Reads the SMTP daemon's own settings once at start. */
export function loadSmtpSettings(env: NodeJS.ProcessEnv = process.env): SmtpSettings {
  for (const [old, now] of Object.entries(RENAMED)) if (env[old] !== undefined) throw new ConfigError(`invalid setting ${old}: renamed to ${now}`);
  const e = parseEnv(schema, env);
  return {
    relay: e.HEARTH_SMTP_RELAY,
    trustedNetworks: e.HEARTH_SMTP_TRUSTED_NETWORKS,
    maxMessageSize: e.HEARTH_SMTP_MAX_MESSAGE_SIZE,
    maxBufferedBytes: e.HEARTH_SMTP_MAX_BUFFERED,
    maxRecipients: e.HEARTH_SMTP_MAX_RECIPIENTS,
    maxLineLength: e.HEARTH_SMTP_MAX_LINE_LENGTH,
    connections: loadConnectionLimits('SMTP', SMTP_CONNECTION_DEFAULTS, env),
    ratePerSender: e.HEARTH_SMTP_RATE_PER_SENDER,
    ratePerIp: e.HEARTH_SMTP_RATE_PER_IP,
    retryDelaysMs: e.HEARTH_SMTP_RETRY_DELAYS,
    maxQueueAgeMs: e.HEARTH_SMTP_MAX_QUEUE_AGE * 1000,
    queueLeaseMs: e.HEARTH_SMTP_QUEUE_LEASE * 1000,
    deliveryConcurrency: e.HEARTH_SMTP_DELIVERY_CONCURRENCY,
    relayInsecureTls: e.HEARTH_SMTP_RELAY_INSECURE_TLS,
    quota: loadMailQuota(env),
    dnsServers: e.HEARTH_SMTP_DNS_SERVERS,
    authservId: e.HEARTH_SMTP_AUTHSERV_ID ?? null,
    arcTrustedSealers: e.HEARTH_SMTP_ARC_TRUSTED_SEALERS,
    recipientDelimiter: e.HEARTH_SMTP_RECIPIENT_DELIMITER,
  };
}
