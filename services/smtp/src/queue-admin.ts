import type { HearthConfig } from '@hearth/config';
import { openQueueStore } from './queue-backend.ts';
import type { QueueAdmin, QueueListing } from './queue-store.ts';

export type { QueueListing } from './queue-store.ts';

export class QueueAdminError extends Error {}

async function withAdmin<T>(config: HearthConfig, fn: (admin: QueueAdmin) => Promise<T>): Promise<T> {
  const admin = await openQueueStore(config);
  try {
    return await fn(admin);
  } finally {
    await admin.close();
  }
}

/** Every queued message, oldest first. Works whether or not the daemon runs. */
export function listQueue(config: HearthConfig): Promise<QueueListing[]> {
  return withAdmin(config, (a) => a.list());
}

/** Asks the daemon to attempt delivery now (one id, or every entry when id is omitted). */
export async function retryQueued(config: HearthConfig, id?: string): Promise<void> {
  if (!(await withAdmin(config, (a) => a.retry(id ?? 'ALL')))) throw new QueueAdminError(`no such queue entry: ${id}`);
}

/** Removes a message from the queue without delivering or bouncing it. */
export async function deleteQueued(config: HearthConfig, id: string): Promise<void> {
  if (!(await withAdmin(config, (a) => a.remove(id)))) throw new QueueAdminError(`no such queue entry: ${id}`);
}
