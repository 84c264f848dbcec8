import type { Logger } from '@hearth/log';
import { buildDsn } from './dsn.ts';
import { deliveries, watchQueue } from './metrics.ts';
import { prependHeaders, rfc5322Date } from './message.ts';
import { hasUnreported, isFinished, type QueuedMessage, type QueueStore, type RcptState } from './queue-store.ts';
import { newQueueId, type QueueEnvelope, type RecipientRecord, type StateRecord } from './spool.ts';

export type Outcome = { ok: true; /** where it went: "mailbox" or the remote MTA */ via?: string } | { ok: false; permanent: boolean; status: string; message: string; remoteMta?: string | null };

/** Where messages go; the queue decides when, how often and what to do with the result. */
export interface Deliverer {
  deliverLocal(env: QueueEnvelope, address: string, raw: Buffer): Promise<Outcome>;
  /** one outcome per address */
  deliverRemote(env: QueueEnvelope, addresses: string[], raw: Buffer): Promise<Map<string, Outcome>>;
  /** queue ids of messages already in this mailbox that arrived since sinceMs (attempts cut short by a crash) */
  deliveredIds(address: string, sinceMs: number): Promise<Set<string>>;
}

export interface QueueOptions {
  retryDelaysMs: number[];
  maxAgeMs: number;
  concurrency: number;
  /** our host name, for DSNs and Received */
  hostname: string;
  /** sender of bounces, e.g. MAILER-DAEMON@example.test */
  postmaster: string;
  logger: Logger;
  /** whether an address is a local mailbox (bounces are routed like any mail) */
  isLocal: (address: string) => boolean;
}

/** No attempt may hold a delivery slot longer than this, whatever the remote end or the SMTP client does. */
const REMOTE_ATTEMPT_LIMIT_MS = 15 * 60_000;

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no result after ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/**
 * The delivery queue: accepts messages durably, delivers them with bounded concurrency,
 * retries temporary failures with backoff until maxAge, bounces permanent failures, and
 * picks up where it (or, with PostgreSQL, a replica that died) left off. Where entries
 * live and who may attempt which is the QueueStore's business (queue-store.ts).
 */
export class Queue {
  private inflight = 0;
  private pumping = false;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private unwatch: (() => void) | null = null;

  constructor(
    readonly store: QueueStore,
    private readonly deliverer: Deliverer,
    private readonly opts: QueueOptions,
  ) {}

  async start(): Promise<void> {
    this.unwatch = watchQueue(this.store);
    await this.store.open(() => this.pump());
    this.pump();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unwatch?.();
    if (this.timer) clearTimeout(this.timer);
    // let running attempts record their outcome; the rest stays queued for next start
    if (this.inflight > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
    await this.store.close();
  }

  get size(): number {
    return this.store.size;
  }

  /** Queues a message durably; resolves with its queue id once it is safe to say 250. */
  async enqueue(from: string, rcpts: RecipientRecord[], raw: Buffer, id = newQueueId(), exclusive = false, extra: Pick<QueueEnvelope, 'quarantine'> = {}): Promise<string> {
    const env: QueueEnvelope = { v: 1, id, from, rcpts, arrivedAt: Date.now(), size: raw.length, ...(extra.quarantine ? { quarantine: true } : {}) };
    if (await this.store.add(env, raw, exclusive)) this.pump();
    return id;
  }

  /** Claims due work up to the concurrency limit, then sleeps until the store says more may be due. */
  private pump(): void {
    if (this.closed) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    void this.fill()
      .catch((err: unknown) => this.opts.logger.warn({ err }, 'cannot look for due queue entries; will look again'))
      .finally(() => {
        this.pumping = false;
        if (this.again) {
          this.again = false;
          this.pump();
        } else this.armTimer();
      });
  }

  private async fill(): Promise<void> {
    while (!this.closed && this.inflight < this.opts.concurrency) {
      const claimed = await this.store.claim(this.opts.concurrency - this.inflight);
      if (claimed.length === 0) return;
      this.inflight += claimed.length;
      await this.recoverInterrupted(claimed.filter((c) => c.interrupted).map((c) => c.msg));
      for (const c of claimed) void this.attempt(c.msg);
    }
  }

  private armTimer(): void {
    if (this.closed) return;
    const next = Math.max(this.store.nextWakeAt(), Date.now() + 10);
    if (next === Infinity || next >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = Infinity;
      this.pump();
    }, next - Date.now());
  }

  /**
   * Local recipients still pending in a message whose last attempt was cut short may have been
   * delivered just before it was: their mailbox holds a copy with the queue id. One look per mailbox.
   */
  private async recoverInterrupted(msgs: QueuedMessage[]): Promise<void> {
    const oldest = new Map<string, number>();
    for (const m of msgs) for (const r of m.rcpts) if (r.status === 'pending' && r.local) oldest.set(r.address, Math.min(oldest.get(r.address) ?? Infinity, m.env.arrivedAt));
    const delivered = new Map<string, Set<string>>();
    for (const [address, since] of oldest) delivered.set(address, await this.deliverer.deliveredIds(address, since));
    for (const m of msgs) {
      const recovered: StateRecord[] = [];
      for (const r of m.rcpts) {
        if (r.status === 'pending' && r.local && delivered.get(r.address)?.has(m.env.id)) {
          r.status = 'done';
          recovered.push({ s: 'done', a: r.address, t: Date.now() });
        }
      }
      if (recovered.length > 0) await this.store.save(m, recovered, true);
    }
  }

  private async attempt(msg: QueuedMessage): Promise<void> {
    const id = msg.env.id;
    let notBefore = 0;
    let finished = false;
    try {
      const raw = await this.store.body(id);
      if (!raw) {
        await this.store.finish(id);
        finished = true;
        return;
      }
      const now = Date.now();
      const due = msg.rcpts.filter((r) => r.status === 'pending' && r.nextAt <= now);
      const outcomes = new Map<string, Outcome>();
      const locals = due.filter((r) => r.local);
      const remotes = due.filter((r) => !r.local).map((r) => r.address);
      await Promise.all([
        ...locals.map(async (r) => outcomes.set(r.address, await this.safely(() => this.deliverer.deliverLocal(msg.env, r.address, raw)))),
        (async () => {
          if (remotes.length === 0) return;
          try {
            for (const [a, o] of await withDeadline(this.deliverer.deliverRemote(msg.env, remotes, raw), REMOTE_ATTEMPT_LIMIT_MS)) outcomes.set(a, o);
          } catch (err) {
            for (const a of remotes) outcomes.set(a, { ok: false, permanent: false, status: '4.4.0', message: (err as Error).message });
          }
        })(),
      ]);
      const records = this.apply(msg, due, outcomes);
      // the state matters while the message stays queued, and before a bounce (so a crash cannot lose the failure)
      if (!isFinished(msg) || hasUnreported(msg)) {
        if (!(await this.store.save(msg, records, records.some((r) => r.s !== 'deferred')))) return; // deleted by an admin, or no longer ours
      }
      if (hasUnreported(msg) && !(await this.reportFailures(msg, raw))) return;
      if (isFinished(msg)) {
        await this.store.finish(id);
        finished = true;
      }
    } catch (err) {
      this.opts.logger.error({ err, id }, 'queue attempt failed; will retry');
      // a failed bounce or removal has no pending recipient to hold the entry back
      notBefore = Date.now() + this.opts.retryDelaysMs[0]!;
    } finally {
      if (!finished) await this.store.release(msg, notBefore).catch((err: unknown) => this.opts.logger.warn({ err, id }, 'cannot release queue entry; its lease runs out'));
      this.inflight--;
      if (this.inflight === 0) for (const w of this.idleWaiters.splice(0)) w();
      this.pump();
    }
  }


  private async safely(fn: () => Promise<Outcome>): Promise<Outcome> {
    try {
      return await fn();
    } catch (err) {
      return { ok: false, permanent: false, status: '4.3.0', message: (err as Error).message };
    }
  }

  /** Updates recipient state from outcomes; returns the log records to persist. */
  private apply(e: QueuedMessage, due: RcptState[], outcomes: Map<string, Outcome>): StateRecord[] {
    const now = Date.now();
    const records: StateRecord[] = [];
    for (const r of due) {
      const o = outcomes.get(r.address) ?? { ok: false, permanent: false, status: '4.4.0', message: 'no result' };
      if (o.ok) {
        r.status = 'done';
        records.push({ s: 'done', a: r.address, t: now });
        deliveries.inc({ outcome: 'delivered', destination: r.local ? 'local' : 'remote' });
        this.opts.logger.info({ id: e.env.id, outcome: 'delivered', rcpt: r.address, via: o.via }, 'delivered');
        continue;
      }
      r.attempts++;
      r.lastError = o.message;
      const expired = now - e.env.arrivedAt >= this.opts.maxAgeMs;
      if (o.permanent || expired) {
        r.status = 'failed';
        const status = o.permanent ? o.status : '4.4.7';
        const diagnostic = o.permanent ? o.message : `delivery time expired; last error: ${o.message}`;
        r.failure = { address: r.address, status, diagnostic, remoteMta: o.remoteMta ?? null };
        records.push({ s: 'failed', a: r.address, t: now, st: status, e: diagnostic, m: o.remoteMta ?? null });
        deliveries.inc({ outcome: e.env.from === '' ? 'failed' : 'bounced', destination: r.local ? 'local' : 'remote' });
        // bounced: reportFailures sends the sender a DSN (a null sender gets none: "failed")
        this.opts.logger.info({ id: e.env.id, outcome: e.env.from === '' ? 'failed' : 'bounced', rcpt: r.address, status, reason: diagnostic }, 'delivery failed');
      } else {
        const delays = this.opts.retryDelaysMs;
        const delay = delays[Math.min(r.attempts - 1, delays.length - 1)]!;
        // the last try lands at expiry, not days after it
        r.nextAt = Math.min(now + delay, e.env.arrivedAt + this.opts.maxAgeMs);
        records.push({ s: 'deferred', a: r.address, t: now, n: r.nextAt, e: o.message });
        deliveries.inc({ outcome: 'deferred', destination: r.local ? 'local' : 'remote' });
        this.opts.logger.info({ id: e.env.id, outcome: 'deferred', rcpt: r.address, status: o.status, attempts: r.attempts, next: new Date(r.nextAt).toISOString(), reason: o.message }, 'delivery deferred');
      }
    }
    return records;
  }

  /**
   * Sends the sender one DSN for the recipients that failed since the last one, as soon as
   * they fail (like Postfix), while the others may still be retried. The DSN is queued in the
   * same step that records the recipients as reported; false when the entry is no longer ours.
   */
  private async reportFailures(msg: QueuedMessage, raw: Buffer): Promise<boolean> {
    const unreported = msg.rcpts.filter((r) => r.status === 'failed' && !r.bounced);
    const bounce = msg.env.from === '' ? undefined : this.dsn(msg, unreported, raw);
    if (!bounce) this.opts.logger.warn({ id: msg.env.id, rcpts: unreported.map((r) => r.address) }, 'undeliverable bounce dropped');
    msg.bounces++;
    for (const r of unreported) r.bounced = true;
    return this.store.save(msg, [{ s: 'bounced', t: Date.now(), a: unreported.map((r) => r.address) }], true, bounce);
  }

  private dsn(msg: QueuedMessage, failed: RcptState[], original: Buffer): { env: QueueEnvelope; raw: Buffer } {
    // numbered ids make a bounce idempotent if we crash before recording it
    const id = `${msg.env.id}.DSN${msg.bounces + 1}`;
    const dsn = buildDsn({ reportingMta: this.opts.hostname, postmaster: this.opts.postmaster, to: msg.env.from, queueId: msg.env.id, arrivalDate: new Date(msg.env.arrivedAt), failed: failed.map((r) => r.failure!), original });
    const raw = prependHeaders(dsn, [`Received: by ${this.opts.hostname} (Hearth) id ${id};\r\n\t${rfc5322Date()}`]);
    return { env: { v: 1, id, from: '', rcpts: [{ address: msg.env.from, local: this.opts.isLocal(msg.env.from) }], arrivedAt: Date.now(), size: raw.length }, raw };
  }

  /** Resolves once nothing is queued (tests, benchmarks). */
  async drained(timeoutMs = 30000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (this.store.size > 0) {
      if (Date.now() > end) throw new Error(`queue not drained: ${this.store.size} left`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
