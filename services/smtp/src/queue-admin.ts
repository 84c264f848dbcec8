import path from 'node:path';
import type { HearthConfig } from '@hearth/config';
import { replayState } from './queue.ts';
import { isQueueId, Spool } from './spool.ts';

/** What `hearth mail queue` shows per message. */
export interface QueueListing {
  id: string;
  from: string;
  arrivedAt: string;
  size: number;
  recipients: { address: string; status: 'pending' | 'done' | 'failed'; attempts: number; nextAttempt: string | null; lastError: string | null }[];
}

function spoolOf(config: HearthConfig): Spool {
  return new Spool(path.join(config.dataDir, 'queue'));
}

/** Every spooled message, oldest first. Works whether or not the daemon runs. */
export function listQueue(config: HearthConfig): QueueListing[] {
  const spool = spoolOf(config);
  let ids: string[];
  try {
    ids = spool.ids();
  } catch {
    return [];
  }
  const out: QueueListing[] = [];
  for (const id of ids) {
    try {
      const env = spool.readEnvelopeSync(id);
      const { rcpts } = replayState(env, spool.readStateSync(id));
      out.push({
        id,
        from: env.from,
        arrivedAt: new Date(env.arrivedAt).toISOString(),
        size: env.size,
        recipients: rcpts.map((r) => ({
          address: r.address,
          status: r.status,
          attempts: r.attempts,
          nextAttempt: r.status === 'pending' ? new Date(r.nextAt || env.arrivedAt).toISOString() : null,
          lastError: r.lastError,
        })),
      });
    } catch {
      // delivered and removed while we listed
    }
  }
  return out.sort((a, b) => a.arrivedAt.localeCompare(b.arrivedAt));
}

export class QueueAdminError extends Error {}

function requireEntry(spool: Spool, id: string): void {
  if (!isQueueId(id) || !spool.ids().includes(id)) throw new QueueAdminError(`no such queue entry: ${id}`);
}

/** Asks the daemon to attempt delivery now (one id, or every entry when id is omitted). */
export function retryQueued(config: HearthConfig, id?: string): void {
  const spool = spoolOf(config);
  spool.init();
  if (id !== undefined) requireEntry(spool, id);
  spool.requestControl('retry', id ?? 'ALL');
}

/** Removes a message from the queue without delivering or bouncing it. */
export async function deleteQueued(config: HearthConfig, id: string): Promise<void> {
  const spool = spoolOf(config);
  spool.init();
  requireEntry(spool, id);
  await spool.remove(id);
  spool.requestControl('delete', id);
}
