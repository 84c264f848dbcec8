import type { FailedRecipient } from './dsn.ts';
import type { QueueEnvelope, StateRecord } from './spool.ts';

/**
 * Where the delivery queue keeps its entries: one interface, two backends. The spool
 * (spool-queue.ts) is one node's: files under $HEARTH_DATA_DIR/queue, state in memory.
 * PostgreSQL (postgres-queue.ts) is for replicas: entries and delivery leases in the
 * database, bodies in the shared spool, so any replica delivers any message and a dead
 * replica's leases run out and are taken over.
 */

export interface RcptState {
  address: string;
  local: boolean;
  status: 'pending' | 'done' | 'failed';
  /** a failed recipient already reported to the sender */
  bounced: boolean;
  attempts: number;
  nextAt: number;
  lastError: string | null;
  failure: FailedRecipient | null;
}

export interface QueuedMessage {
  env: QueueEnvelope;
  rcpts: RcptState[];
  /** DSNs sent so far; numbers the next one's id */
  bounces: number;
}

/** A message this runner may attempt until it releases it. */
export interface Claimed {
  msg: QueuedMessage;
  /** an earlier attempt may have been cut short (a crash; another replica that died holding it) */
  interrupted: boolean;
}

/** A DSN to queue together with the record that its recipients were reported. */
export interface Bounce {
  env: QueueEnvelope;
  raw: Buffer;
}

export interface QueueStore {
  /** Prepares the storage; `wake` is called when work may have become due (an admin's retry, another replica's message). */
  open(wake: () => void): Promise<void>;
  close(): Promise<void>;
  /** Durable once it resolves. With `exclusive` (fixed ids: DSNs, Sieve redirects) an existing entry with that id is kept and false returned. */
  add(env: QueueEnvelope, raw: Buffer, exclusive: boolean): Promise<boolean>;
  /** Takes up to `max` messages with work due now; each is this runner's until release(). */
  claim(max: number): Promise<Claimed[]>;
  /** The message body; null when the message is gone (deleted by an admin). */
  body(id: string): Promise<Buffer | null>;
  /**
   * Persists the message's state after an attempt (`records`: what changed, for a log; `msg`:
   * the state now) and, with `bounce`, queues that DSN in the same step; `durable`: synced
   * before it resolves. False when the entry is no longer this runner's (deleted, or its lease lost).
   */
  save(msg: QueuedMessage, records: StateRecord[], durable: boolean, bounce?: Bounce): Promise<boolean>;
  /** Forgets a finished message. */
  finish(id: string): Promise<void>;
  /** Hands a claimed, unfinished message back; it is due again at its recipients' next attempt, and not before `notBefore`. */
  release(msg: QueuedMessage, notBefore?: number): Promise<void>;
  /** When claim() may next find work (ms since epoch; Infinity: only after wake). */
  nextWakeAt(): number;
  /** Messages queued (for the metrics gauge; the database's count as of the last look). */
  readonly size: number;
}

/** What `hearth mail queue` shows per message. */
export interface QueueListing {
  id: string;
  from: string;
  arrivedAt: string;
  size: number;
  recipients: { address: string; status: RcptState['status']; attempts: number; nextAttempt: string | null; lastError: string | null }[];
}

/** The CLI's view; works whether or not a daemon runs. */
export interface QueueAdmin {
  list(): Promise<QueueListing[]>;
  /** false when there is no such entry */
  retry(id: string | 'ALL'): Promise<boolean>;
  remove(id: string): Promise<boolean>;
  close(): Promise<void>;
}

export function freshRcpts(env: QueueEnvelope): RcptState[] {
  return env.rcpts.map((r) => ({ address: r.address, local: r.local, status: 'pending', bounced: false, attempts: 0, nextAt: 0, lastError: null, failure: null }));
}

export function listing(msg: QueuedMessage): QueueListing {
  const { env } = msg;
  return {
    id: env.id,
    from: env.from,
    arrivedAt: new Date(env.arrivedAt).toISOString(),
    size: env.size,
    recipients: msg.rcpts.map((r) => ({
      address: r.address,
      status: r.status,
      attempts: r.attempts,
      nextAttempt: r.status === 'pending' ? new Date(r.nextAt || env.arrivedAt).toISOString() : null,
      lastError: r.lastError,
    })),
  };
}

export function hasUnreported(msg: QueuedMessage): boolean {
  return msg.rcpts.some((r) => r.status === 'failed' && !r.bounced);
}

export function isFinished(msg: QueuedMessage): boolean {
  return msg.rcpts.every((r) => r.status !== 'pending') && !hasUnreported(msg);
}

/** When the message next has work: now for an unreported failure, else its earliest pending recipient. */
export function dueAt(msg: QueuedMessage): number {
  if (hasUnreported(msg)) return 0;
  let next = Infinity;
  for (const r of msg.rcpts) if (r.status === 'pending' && r.nextAt < next) next = r.nextAt;
  return next;
}
