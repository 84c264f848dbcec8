import fs from 'node:fs';
import type { Logger } from '@hearth/log';
import { buildDsn, type FailedRecipient } from './dsn.ts';
import { deliveries, watchQueue } from './metrics.ts';
import { prependHeaders, rfc5322Date } from './message.ts';
import { newQueueId, Spool, type QueueEnvelope, type RecipientRecord, type StateRecord } from './spool.ts';

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

interface RcptState {
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

interface Entry {
  env: QueueEnvelope;
  rcpts: RcptState[];
  /** kept only until the first attempt; later attempts read the spool */
  raw: Buffer | null;
  busy: boolean;
  /** DSNs sent so far; numbers the next one's id */
  bounces: number;
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

/** Folds a message's state log into per-recipient state. */
export function replayState(env: QueueEnvelope, records: StateRecord[]): { rcpts: RcptState[]; bounces: number } {
  const rcpts = new Map<string, RcptState>(
    env.rcpts.map((r: RecipientRecord) => [r.address, { address: r.address, local: r.local, status: 'pending', bounced: false, attempts: 0, nextAt: 0, lastError: null, failure: null }]),
  );
  let bounces = 0;
  for (const rec of records) {
    if (rec.s === 'bounced') {
      bounces++;
      for (const a of rec.a) {
        const r = rcpts.get(a);
        if (r) r.bounced = true;
      }
      continue;
    }
    const r = rcpts.get(rec.a);
    if (!r) continue;
    if (rec.s === 'done') r.status = 'done';
    else if (rec.s === 'failed') {
      r.status = 'failed';
      r.failure = { address: r.address, status: rec.st, diagnostic: rec.e, remoteMta: rec.m ?? null };
      r.lastError = rec.e;
    } else if (rec.s === 'deferred' && r.status === 'pending') {
      r.attempts++;
      r.nextAt = rec.n;
      r.lastError = rec.e;
    }
  }
  return { rcpts: [...rcpts.values()], bounces };
}

/**
 * The delivery queue: accepts messages durably, delivers them from the spool with
 * bounded concurrency, retries temporary failures with backoff until maxAge, bounces
 * permanent failures, and picks up where it left off after a restart or a crash.
 */
export class Queue {
  private readonly entries = new Map<string, Entry>();
  private readonly ready: string[] = [];
  private inflight = 0;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private controlTimer: NodeJS.Timeout | null = null;
  private watcher: fs.FSWatcher | null = null;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private unwatch: (() => void) | null = null;

  constructor(
    readonly spool: Spool,
    private readonly deliverer: Deliverer,
    private readonly opts: QueueOptions,
  ) {}

  /** Loads the spool (recovering interrupted local deliveries) and starts delivering. */
  async start(): Promise<void> {
    this.unwatch = watchQueue(this);
    this.spool.init();
    this.spool.cleanTmp();
    this.spool.removeOrphanStates();
    const loaded: Entry[] = [];
    for (const id of this.spool.ids()) {
      let env: QueueEnvelope;
      try {
        env = this.spool.readEnvelopeSync(id);
      } catch (err) {
        this.opts.logger.error({ err, id }, 'unreadable spool file moved to queue/corrupt');
        this.spool.quarantine(id);
        continue;
      }
      const { rcpts, bounces } = replayState(env, this.spool.readStateSync(id));
      loaded.push({ env, rcpts, raw: null, busy: false, bounces });
    }
    // pending local recipients may have been delivered just before a crash: look once per mailbox
    const oldest = new Map<string, number>();
    for (const e of loaded) for (const r of e.rcpts) if (r.status === 'pending' && r.local) oldest.set(r.address, Math.min(oldest.get(r.address) ?? Infinity, e.env.arrivedAt));
    const delivered = new Map<string, Set<string>>();
    for (const [address, since] of oldest) delivered.set(address, await this.deliverer.deliveredIds(address, since));
    for (const e of loaded) {
      const recovered: StateRecord[] = [];
      for (const r of e.rcpts) {
        if (r.status === 'pending' && r.local && delivered.get(r.address)?.has(e.env.id)) {
          r.status = 'done';
          recovered.push({ s: 'done', a: r.address, t: Date.now() });
        }
      }
      await this.spool.appendState(e.env.id, recovered, true);
      this.entries.set(e.env.id, e);
      this.ready.push(e.env.id);
    }
    this.applyControls();
    try {
      this.watcher = fs.watch(this.spool.controlDir, () => this.applyControls());
      this.watcher.on('error', () => {});
    } catch {
      // polling below still picks requests up
    }
    this.controlTimer = setInterval(() => this.applyControls(), 2000);
    this.controlTimer.unref();
    this.pump();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unwatch?.();
    if (this.timer) clearTimeout(this.timer);
    if (this.controlTimer) clearInterval(this.controlTimer);
    this.watcher?.close();
    // let running attempts record their outcome; the rest stays spooled for next start
    if (this.inflight > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  get size(): number {
    return this.entries.size;
  }

  /** Spools a message durably; resolves with its queue id once it is safe to say 250. */
  async enqueue(from: string, rcpts: RecipientRecord[], raw: Buffer, id = newQueueId(), exclusive = false, extra: Pick<QueueEnvelope, 'quarantine'> = {}): Promise<string> {
    const env: QueueEnvelope = { v: 1, id, from, rcpts, arrivedAt: Date.now(), size: raw.length, ...(extra.quarantine ? { quarantine: true } : {}) };
    const fresh = await this.spool.write(env, raw, exclusive);
    if (!fresh || this.entries.has(id)) return id;
    const { rcpts: states } = replayState(env, []);
    this.entries.set(id, { env, rcpts: states, raw, busy: false, bounces: 0 });
    this.ready.push(id);
    this.pump();
    return id;
  }

  private applyControls(): void {
    if (this.closed) return;
    let requests: ReturnType<Spool['takeControls']>;
    try {
      requests = this.spool.takeControls();
    } catch (err) {
      this.opts.logger.warn({ err }, 'cannot read queue control requests');
      return;
    }
    for (const { action, id } of requests) {
      const targets = id === 'ALL' ? [...this.entries.keys()] : [id];
      for (const t of targets) {
        const e = this.entries.get(t);
        if (!e) continue;
        if (action === 'delete') {
          this.entries.delete(t);
          this.opts.logger.info({ id: t }, 'queue entry deleted by admin');
        } else {
          for (const r of e.rcpts) if (r.status === 'pending') r.nextAt = 0;
          if (!e.busy) this.ready.push(t);
        }
      }
    }
    this.pump();
  }

  /** Starts due work up to the concurrency limit and arms the timer for the next due entry. */
  private pump(): void {
    if (this.closed) return;
    const now = Date.now();
    while (this.inflight < this.opts.concurrency && this.ready.length > 0) {
      const id = this.ready.shift()!;
      const e = this.entries.get(id);
      if (!e || e.busy) continue;
      if (!e.rcpts.some((r) => r.status === 'pending' && r.nextAt <= now) && !this.isFinished(e) && !this.hasUnreported(e)) continue;
      void this.attempt(e);
    }
    if (this.ready.length === 0) this.armTimer();
  }

  private isFinished(e: Entry): boolean {
    return e.rcpts.every((r) => r.status !== 'pending');
  }

  private hasUnreported(e: Entry): boolean {
    return e.rcpts.some((r) => r.status === 'failed' && !r.bounced);
  }

  private armTimer(): void {
    let next = Infinity;
    for (const e of this.entries.values()) {
      if (e.busy) continue;
      for (const r of e.rcpts) if (r.status === 'pending' && r.nextAt < next) next = r.nextAt;
    }
    if (next === Infinity || next >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = Infinity;
      const now = Date.now();
      for (const [id, e] of this.entries) if (!e.busy && e.rcpts.some((r) => r.status === 'pending' && r.nextAt <= now)) this.ready.push(id);
      this.pump();
    }, Math.max(0, next - Date.now()));
  }

  private async attempt(e: Entry): Promise<void> {
    e.busy = true;
    this.inflight++;
    const id = e.env.id;
    try {
      let raw = e.raw;
      e.raw = null;
      if (!raw) {
        const spooled = await this.spool.read(id);
        if (!spooled) {
          this.entries.delete(id);
          return;
        }
        raw = spooled.raw;
      }
      const now = Date.now();
      const due = e.rcpts.filter((r) => r.status === 'pending' && r.nextAt <= now);
      const outcomes = new Map<string, Outcome>();
      const locals = due.filter((r) => r.local);
      const remotes = due.filter((r) => !r.local).map((r) => r.address);
      await Promise.all([
        ...locals.map(async (r) => outcomes.set(r.address, await this.safely(() => this.deliverer.deliverLocal(e.env, r.address, raw)))),
        (async () => {
          if (remotes.length === 0) return;
          try {
            for (const [a, o] of await withDeadline(this.deliverer.deliverRemote(e.env, remotes, raw), REMOTE_ATTEMPT_LIMIT_MS)) outcomes.set(a, o);
          } catch (err) {
            for (const a of remotes) outcomes.set(a, { ok: false, permanent: false, status: '4.4.0', message: (err as Error).message });
          }
        })(),
      ]);
      const records = this.apply(e, due, outcomes);
      if (!this.entries.has(id)) return; // deleted by an admin meanwhile
      const finished = this.isFinished(e);
      // the log matters while the message stays queued, and before a bounce (so a crash cannot lose the failure)
      if (!finished || this.hasUnreported(e)) await this.spool.appendState(id, records, records.some((r) => r.s !== 'deferred'));
      await this.reportFailures(e, raw);
      if (finished) {
        await this.spool.remove(id);
        this.entries.delete(id);
      }
    } catch (err) {
      this.opts.logger.error({ err, id }, 'queue attempt failed; will retry');
      const delay = this.opts.retryDelaysMs[0]!;
      for (const r of e.rcpts) if (r.status === 'pending') r.nextAt = Math.max(r.nextAt, Date.now() + delay);
      // a failed bounce or removal has no pending recipient to bring the entry back
      setTimeout(() => {
        this.ready.push(id);
        this.pump();
      }, delay).unref();
    } finally {
      e.busy = false;
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
  private apply(e: Entry, due: RcptState[], outcomes: Map<string, Outcome>): StateRecord[] {
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
   * they fail (like Postfix), while the others may still be retried.
   */
  private async reportFailures(e: Entry, raw: Buffer): Promise<void> {
    const unreported = e.rcpts.filter((r) => r.status === 'failed' && !r.bounced);
    if (unreported.length === 0) return;
    if (e.env.from !== '') {
      // numbered ids make a bounce idempotent if we crash before recording it
      const dsnId = `${e.env.id}.DSN${e.bounces + 1}`;
      const dsn = buildDsn({ reportingMta: this.opts.hostname, postmaster: this.opts.postmaster, to: e.env.from, queueId: e.env.id, arrivalDate: new Date(e.env.arrivedAt), failed: unreported.map((r) => r.failure!), original: raw });
      const withTrace = prependHeaders(dsn, [`Received: by ${this.opts.hostname} (Hearth) id ${dsnId};\r\n\t${rfc5322Date()}`]);
      await this.bounce(dsnId, e.env.from, withTrace);
    } else {
      this.opts.logger.warn({ id: e.env.id, rcpts: unreported.map((r) => r.address) }, 'undeliverable bounce dropped');
    }
    await this.spool.appendState(e.env.id, [{ s: 'bounced', t: Date.now(), a: unreported.map((r) => r.address) }], true);
    e.bounces++;
    for (const r of unreported) r.bounced = true;
  }

  private async bounce(id: string, to: string, raw: Buffer): Promise<void> {
    await this.enqueue('', [{ address: to, local: this.opts.isLocal(to) }], raw, id, true);
  }

  /** Resolves once nothing is queued (tests, benchmarks). */
  async drained(timeoutMs = 30000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (this.entries.size > 0) {
      if (Date.now() > end) throw new Error(`queue not drained: ${this.entries.size} left`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
