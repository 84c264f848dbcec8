import net from 'node:net';
import os from 'node:os';
import { blank, envPort, isCidr, parseEnv } from '@hearth/config';
import { z } from 'zod';

/** Settings only the TURN daemon has; parsed once at start. */
export interface TurnSettings {
  /** inclusive relay port range; null = any port the OS hands out */
  relayPortMin: number | null;
  relayPortMax: number | null;
  /** address relay sockets bind to; null = the listen address (or all when that is a wildcard) */
  relayAddress: string | null;
  /** address put in XOR-RELAYED-ADDRESS when it differs from the bound one (e.g. behind 1:1 NAT) */
  externalAddress: string | null;
  /** CIDRs peers may be in even when they are private, loopback, … */
  allowedPeers: string[];
  maxAllocationsPerUser: number;
  maxAllocations: number;
  defaultLifetime: number;
  maxLifetime: number;
  nonceLifetime: number;
  statsIntervalSeconds: number;
  /** relay processes (node:cluster), each owning the allocations routed to it; 1 = everything in this process */
  workers: number;
}

const ip = z.string().refine((s) => net.isIP(s) !== 0, 'must be an IP address');
const cidr = z.string().refine(isCidr, 'must be a list of CIDRs like 10.0.0.0/8,fd00::/8');

const schema = z
  .object({
    HEARTH_TURN_RELAY_PORT_MIN: envPort.optional().or(blank),
    HEARTH_TURN_RELAY_PORT_MAX: envPort.optional().or(blank),
    HEARTH_TURN_RELAY_ADDRESS: ip.optional().or(blank),
    HEARTH_TURN_EXTERNAL_ADDRESS: ip.optional().or(blank),
    HEARTH_TURN_ALLOWED_PEERS: z
      .string()
      .optional()
      .transform((s) => (s ?? '').split(',').map((x) => x.trim()).filter(Boolean))
      .pipe(z.array(cidr)),
    HEARTH_TURN_USER_QUOTA: z.coerce.number().int().min(1).default(10),
    HEARTH_TURN_TOTAL_QUOTA: z.coerce.number().int().min(1).default(10000),
    HEARTH_TURN_MAX_LIFETIME: z.coerce.number().int().min(60).default(3600),
    HEARTH_TURN_NONCE_LIFETIME: z.coerce.number().int().min(10).default(600),
    HEARTH_TURN_STATS_INTERVAL: z.coerce.number().int().min(1).default(60),
    HEARTH_TURN_WORKERS: z.coerce.number().int().min(1).max(64).optional().or(blank),
  })
  .refine((e) => (e.HEARTH_TURN_RELAY_PORT_MIN === undefined) === (e.HEARTH_TURN_RELAY_PORT_MAX === undefined), {
    message: 'set both HEARTH_TURN_RELAY_PORT_MIN and HEARTH_TURN_RELAY_PORT_MAX, or neither',
    path: ['HEARTH_TURN_RELAY_PORT_MIN'],
  })
  .refine((e) => (e.HEARTH_TURN_RELAY_PORT_MIN ?? 0) <= (e.HEARTH_TURN_RELAY_PORT_MAX ?? 0), {
    message: 'must not exceed HEARTH_TURN_RELAY_PORT_MAX',
    path: ['HEARTH_TURN_RELAY_PORT_MIN'],
  });

export function loadTurnSettings(env: NodeJS.ProcessEnv = process.env): TurnSettings {
  const e = parseEnv(schema, env);
  return {
    relayPortMin: e.HEARTH_TURN_RELAY_PORT_MIN ?? null,
    relayPortMax: e.HEARTH_TURN_RELAY_PORT_MAX ?? null,
    relayAddress: e.HEARTH_TURN_RELAY_ADDRESS ?? null,
    externalAddress: e.HEARTH_TURN_EXTERNAL_ADDRESS ?? null,
    allowedPeers: e.HEARTH_TURN_ALLOWED_PEERS,
    maxAllocationsPerUser: e.HEARTH_TURN_USER_QUOTA,
    maxAllocations: e.HEARTH_TURN_TOTAL_QUOTA,
    defaultLifetime: 600,
    maxLifetime: e.HEARTH_TURN_MAX_LIFETIME,
    nonceLifetime: e.HEARTH_TURN_NONCE_LIFETIME,
    statsIntervalSeconds: e.HEARTH_TURN_STATS_INTERVAL,
    workers: e.HEARTH_TURN_WORKERS ?? os.availableParallelism(),
  };
}
