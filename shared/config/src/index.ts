import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { z } from 'zod';

export { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, processAlive, securePrivateDir, writeFileOnce } from './files.ts';
export { announceRunning, runningProcesses } from './running.ts';
import { isCidr } from './networks.ts';

export { addressMatcher, isCidr, plainAddress, TrustedProxies } from './networks.ts';

/** Every port a Hearth daemon listens on, with the CONTRACT.md defaults. */
export const DEFAULT_PORTS = {
  ldap: 3890,
  ldaps: 6360,
  smtp: 2525,
  smtps: 2465,
  smtpInbound: 2025,
  imap: 1143,
  imaps: 1993,
  pop3: 1110,
  pop3s: 1995,
  sieve: 4190,
  oidc: 4000,
  proxyauth: 4180,
  console: 4100,
  turn: 3478,
  turnTls: 5349,
  dockerProxy: 2376,
  sftp: 2222,
  // Prometheus metrics, one port per daemon (on HEARTH_METRICS_HOST; HEARTH_METRICS=off: none)
  ldapMetrics: 9381,
  smtpMetrics: 9382,
  imapMetrics: 9383,
  pop3Metrics: 9384,
  managesieveMetrics: 9385,
  oidcMetrics: 9386,
  proxyauthMetrics: 9387,
  turnMetrics: 9388,
  consoleMetrics: 9389,
  sftpMetrics: 9390,
  dockerproxyMetrics: 9391,
  runtimeMetrics: 9392,
} as const;

export type PortName = keyof typeof DEFAULT_PORTS;
export type Ports = Record<PortName, number>;

/** HEARTH_<NAME>_PORT, e.g. smtpInbound -> HEARTH_SMTP_INBOUND_PORT. */
export function portEnvName(name: PortName): string {
  return `HEARTH_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}_PORT`;
}

/** Every daemon's metrics port. */
export const METRICS_PORTS: readonly PortName[] = (Object.keys(DEFAULT_PORTS) as PortName[]).filter((p) => p.endsWith('Metrics'));

/** The metrics port of a daemon ("ldap" -> ldapMetrics, HEARTH_LDAP_METRICS_PORT); null for a name without one. */
export function metricsPortName(service: string): PortName | null {
  const name = `${service}Metrics`;
  return name in DEFAULT_PORTS ? (name as PortName) : null;
}

/**
 * Where a daemon's metrics are scraped from this host, e.g. http://127.0.0.1:9381/metrics; null
 * when metrics are off, the daemon has none, or its port is picked at start (0).
 */
export function metricsUrl(config: HearthConfig, service: string): string | null {
  const name = metricsPortName(service);
  if (!config.metrics.enabled || !name || config.ports[name] === 0) return null;
  const host = config.metrics.host === '0.0.0.0' || config.metrics.host === '::' ? '127.0.0.1' : config.metrics.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.ports[name]}/metrics`;
}

export interface Argon2Settings {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

/** Failed-login throttling, shared by every protocol (see the README for the trade-off). */
export interface LoginThrottleSettings {
  /** failures per account within the window before it is locked out of addresses it has not signed in from */
  perUser: number;
  /** failures per source address within the window, whatever the account */
  perAddress: number;
  windowSeconds: number;
  /** how long a successful sign-in keeps its address exempt from lock-outs caused from elsewhere; 0 = never */
  knownAddressSeconds: number;
}

export interface HearthConfig {
  dataDir: string;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  listen: string;
  hostname: string;
  domain: string;
  oidcIssuer: string;
  /**
   * WebAuthn RP ID for passkeys: HEARTH_WEBAUTHN_RP_ID, or the issuer's host when that is a name;
   * null (passkeys off) when the issuer is reached by IP address, since a passkey is bound to a name
   */
  webauthnRpId: string | null;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  /** the Docker engine app containers run on: unix:///path or tcp://host:port */
  dockerHost: string;
  ports: Ports;
  /** Prometheus metrics: on unless HEARTH_METRICS=off; each daemon's port is in `ports` (metricsPortName) */
  metrics: { enabled: boolean; host: string };
  turnAllowLoopbackPeers: boolean;
  /** HEARTH_TRUSTED_PROXIES: peers whose X-Forwarded-* headers the HTTP services believe (empty: nobody's) */
  trustedProxies: string[];
  argon2: Argon2Settings;
  loginThrottle: LoginThrottleSettings;
  logLevel: string;
}

const port = z.coerce.number().int().min(0).max(65535);

/** An on/off variable: unset, empty, "0" and "false" (any case) are off, anything else is on. */
export const envFlag = z
  .string()
  .optional()
  .transform((v) => v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false');

/** A port to connect to or hand out (0 is not one). */
export const envPort = z.coerce.number().int().min(1).max(65535);

/** Lets a variable set to the empty string count as unset: `schema.optional().or(blank)`. */
export const blank = z.literal('').transform(() => undefined);

const envSchema = z.object({
  HEARTH_DATA_DIR: z.string().min(1).default('./data'),
  HEARTH_DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional()
    .or(blank),
  HEARTH_REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// URL')
    .optional()
    .or(blank),
  HEARTH_LISTEN: z.string().min(1).default('127.0.0.1'),
  HEARTH_HOSTNAME: z.string().min(1).default('127.0.0.1'),
  HEARTH_DOMAIN: z
    .string()
    .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/i, 'must be a domain name')
    .default('example.test'),
  HEARTH_OIDC_ISSUER: z.string().url().optional(),
  HEARTH_WEBAUTHN_RP_ID: z
    .string()
    .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i, 'must be a host name such as example.com')
    .optional()
    .or(blank),
  HEARTH_TLS_CERT: z.string().optional(),
  HEARTH_TLS_KEY: z.string().optional(),
  HEARTH_DOCKER_HOST: z
    .string()
    .regex(/^(unix:\/\/\/.+|tcp:\/\/[^/]+:\d+\/?)$/, 'must be unix:///path/to/docker.sock or tcp://host:port')
    .default('unix:///var/run/docker.sock'),
  HEARTH_TURN_ALLOW_LOOPBACK_PEERS: envFlag,
  HEARTH_METRICS: z.enum(['on', 'off']).default('on'),
  HEARTH_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  HEARTH_TRUSTED_PROXIES: z
    .string()
    .default('')
    .transform((s) => s.split(/[\s,]+/).filter(Boolean))
    .refine((list) => list.every(isCidr), 'must be a comma list of IP addresses or CIDR ranges'),
  HEARTH_ARGON2_MEMORY_KIB: z.coerce.number().int().min(8).default(19456),
  HEARTH_ARGON2_TIME_COST: z.coerce.number().int().min(1).default(2),
  HEARTH_ARGON2_PARALLELISM: z.coerce.number().int().min(1).max(16).default(1),
  HEARTH_LOGIN_MAX_FAILURES_PER_USER: z.coerce.number().int().min(1).default(10),
  HEARTH_LOGIN_MAX_FAILURES_PER_ADDRESS: z.coerce.number().int().min(1).default(50),
  HEARTH_LOGIN_THROTTLE_WINDOW_SECONDS: z.coerce.number().int().min(1).default(900),
  HEARTH_LOGIN_KNOWN_ADDRESS_DAYS: z.coerce.number().min(0).default(30),
  HEARTH_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

export class ConfigError extends Error {}

/**
 * Validates environment variables with a zod object schema; the first problem becomes a one-line
 * ConfigError naming the variable ("invalid setting HEARTH_X: must be ..."), which daemons print and exit on.
 */
export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv): z.output<S> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`invalid setting ${String(issue.path[0])}: ${issue.message}`);
  }
  return parsed.data;
}

/** Whether `host` is `rpId` or a name under it: the WebAuthn rule for which origins may use an RP ID. */
export function hostUnder(host: string, rpId: string): boolean {
  const h = host.toLowerCase();
  return h === rpId || h.endsWith(`.${rpId}`);
}

/**
 * The passkeys' RP ID. Browsers take only a host name that the page's own host equals or sits
 * under, so a setting that the sign-in page (the issuer) could never use is refused here, at start.
 */
function webauthnRpId(setting: string | undefined, oidcIssuer: string): string | null {
  const issuerHost = new URL(oidcIssuer).hostname.replace(/^\[|\]$/g, '');
  if (setting === undefined) return net.isIP(issuerHost) ? null : issuerHost.toLowerCase();
  const rpId = setting.toLowerCase();
  if (net.isIP(rpId)) throw new ConfigError(`invalid setting HEARTH_WEBAUTHN_RP_ID: must be a host name, not an IP address (passkeys are bound to a name)`);
  if (isPublicSuffix(rpId)) throw new ConfigError(`invalid setting HEARTH_WEBAUTHN_RP_ID: ${rpId} is a public suffix (on the Public Suffix List), which browsers refuse as an RP ID; use the domain you own under it`);
  if (!hostUnder(issuerHost, rpId)) throw new ConfigError(`invalid setting HEARTH_WEBAUTHN_RP_ID: ${rpId} must be the host of HEARTH_OIDC_ISSUER (${issuerHost}) or a domain it is under, where the sign-in page asks for passkeys`);
  return rpId;
}

/**
 * A name on the Public Suffix List (ICANN or private section: com, co.uk, github.io), as
 * browsers check an RP ID. A name under no listed suffix (localhost, example.test) is not one.
 * tldts (the list compiled in, 2 MiB of heap) is loaded only when an RP ID is set.
 */
function isPublicSuffix(host: string): boolean {
  const { parse } = createRequire(import.meta.url)('tldts') as typeof import('tldts');
  const p = parse(host, { allowPrivateDomains: true });
  return (p.isIcann === true || p.isPrivate === true) && p.publicSuffix === host;
}

/** Reads and validates the environment once; every daemon and the CLI start here. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): HearthConfig {
  const e = parseEnv(envSchema, env);
  const ports = {} as Ports;
  for (const name of Object.keys(DEFAULT_PORTS) as PortName[]) {
    const raw = env[portEnvName(name)];
    const value = port.safeParse(raw ?? DEFAULT_PORTS[name]);
    if (!value.success) throw new ConfigError(`invalid setting ${portEnvName(name)}: must be a port number`);
    ports[name] = value.data;
  }
  const oidcIssuer = (e.HEARTH_OIDC_ISSUER ?? `http://127.0.0.1:${ports.oidc}`).replace(/\/+$/, '');
  return {
    dataDir: path.resolve(e.HEARTH_DATA_DIR),
    databaseUrl: e.HEARTH_DATABASE_URL,
    redisUrl: e.HEARTH_REDIS_URL,
    listen: e.HEARTH_LISTEN,
    hostname: e.HEARTH_HOSTNAME,
    domain: e.HEARTH_DOMAIN.toLowerCase(),
    oidcIssuer,
    webauthnRpId: webauthnRpId(e.HEARTH_WEBAUTHN_RP_ID, oidcIssuer),
    tlsCert: e.HEARTH_TLS_CERT,
    tlsKey: e.HEARTH_TLS_KEY,
    dockerHost: e.HEARTH_DOCKER_HOST,
    ports,
    metrics: { enabled: e.HEARTH_METRICS === 'on', host: e.HEARTH_METRICS_HOST },
    turnAllowLoopbackPeers: e.HEARTH_TURN_ALLOW_LOOPBACK_PEERS,
    trustedProxies: e.HEARTH_TRUSTED_PROXIES,
    argon2: {
      memoryCost: e.HEARTH_ARGON2_MEMORY_KIB,
      timeCost: e.HEARTH_ARGON2_TIME_COST,
      parallelism: e.HEARTH_ARGON2_PARALLELISM,
    },
    loginThrottle: {
      perUser: e.HEARTH_LOGIN_MAX_FAILURES_PER_USER,
      perAddress: e.HEARTH_LOGIN_MAX_FAILURES_PER_ADDRESS,
      windowSeconds: e.HEARTH_LOGIN_THROTTLE_WINDOW_SECONDS,
      knownAddressSeconds: Math.round(e.HEARTH_LOGIN_KNOWN_ADDRESS_DAYS * 86400),
    },
    logLevel: e.HEARTH_LOG_LEVEL,
  };
}

/** OIDC provider routes under the issuer; `hearth app env` hands these out as CLOUDRON_OIDC_*. */
export const OIDC_PATHS = {
  discovery: '/.well-known/openid-configuration',
  authorization: '/auth',
  token: '/token',
  jwks: '/jwks',
  userinfo: '/me',
  introspection: '/token/introspection',
  revocation: '/token/revocation',
  endSession: '/session/end',
} as const;
