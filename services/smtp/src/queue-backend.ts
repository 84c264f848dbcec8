import path from 'node:path';
import type { HearthConfig } from '@hearth/config';
import type { Logger } from '@hearth/log';
import type { QueueAdmin, QueueStore } from './queue-store.ts';
import { Spool } from './spool.ts';
import { SpoolQueueStore } from './spool-queue.ts';

/** How long a replica's claim on a queue entry lasts without renewal, unless HEARTH_SMTP_QUEUE_LEASE is set. */
export const DEFAULT_QUEUE_LEASE_MS = 60_000;

/**
 * The queue's backend, chosen like the directory's: PostgreSQL when HEARTH_DATABASE_URL is set
 * (entries shared by every replica; bodies in $HEARTH_DATA_DIR/queue, which the replicas share),
 * else this node's spool. The PostgreSQL driver loads only then.
 */
export async function openQueueStore(config: HearthConfig, opts: { leaseMs?: number; logger?: Logger } = {}): Promise<QueueStore & QueueAdmin> {
  const spool = new Spool(path.join(config.dataDir, 'queue'));
  if (!config.databaseUrl) return new SpoolQueueStore(spool, opts.logger);
  const { PostgresQueueStore } = await import('./postgres-queue.ts');
  return new PostgresQueueStore(config.databaseUrl, spool, { leaseMs: opts.leaseMs ?? DEFAULT_QUEUE_LEASE_MS, logger: opts.logger });
}
