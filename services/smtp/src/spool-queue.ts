import fs from 'node:fs';
import type { Logger } from '@hearth/log';
import { dueAt, freshRcpts, listing, type Bounce, type Claimed, type QueueAdmin, type QueueListing, type QueuedMessage, type QueueStore, type RcptState } from './queue-store.ts';
import { isQueueId, type QueueEnvelope, type Spool, type StateRecord } from './spool.ts';

/** Folds a message's state log into per-recipient state. */
export function replayState(env: QueueEnvelope, records: StateRecord[]): { rcpts: RcptState[]; bounces: number } {
  const rcpts = new Map<string, RcptState>(freshRcpts(env).map((r) => [r.address, r]));
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

interface SpoolEntry {
  msg: QueuedMessage;
  /** kept only until the first attempt; later attempts read the spool */
  raw: Buffer | null;
  busy: boolean;
  /** not before this time (after an attempt that failed as a whole) */
  notBefore: number;
  /** loaded at start: the last run may have died mid-delivery */
  interrupted: boolean;
}

/**
 * One node's queue: the spool's files (see spool.ts) are the truth, every entry is held
 * in memory, and admin requests arrive as files in control/ (so the CLI works whether or
 * not the daemon runs).
 */
export class SpoolQueueStore implements QueueStore, QueueAdmin {
  private readonly entries = new Map<string, SpoolEntry>();
  private controlTimer: NodeJS.Timeout | null = null;
  private watcher: fs.FSWatcher | null = null;
  private wake: () => void = () => {};

  constructor(
    readonly spool: Spool,
    private readonly logger?: Logger,
  ) {}

  async open(wake: () => void): Promise<void> {
    this.wake = wake;
    this.spool.init();
    this.spool.cleanTmp();
    this.spool.removeOrphanStates();
    for (const id of this.spool.ids()) {
      let env: QueueEnvelope;
      try {
        env = this.spool.readEnvelopeSync(id);
      } catch (err) {
        this.logger?.error({ err, id }, 'unreadable spool file moved to queue/corrupt');
        this.spool.quarantine(id);
        continue;
      }
      const { rcpts, bounces } = replayState(env, this.spool.readStateSync(id));
      this.entries.set(id, { msg: { env, rcpts, bounces }, raw: null, busy: false, notBefore: 0, interrupted: true });
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
  }

  async close(): Promise<void> {
    if (this.controlTimer) clearInterval(this.controlTimer);
    this.watcher?.close();
  }

  get size(): number {
    return this.entries.size;
  }

  async add(env: QueueEnvelope, raw: Buffer, exclusive: boolean): Promise<boolean> {
    const fresh = await this.spool.write(env, raw, exclusive);
    if (!fresh || this.entries.has(env.id)) return false;
    this.entries.set(env.id, { msg: { env, rcpts: freshRcpts(env), bounces: 0 }, raw, busy: false, notBefore: 0, interrupted: false });
    return true;
  }

  async claim(max: number): Promise<Claimed[]> {
    const now = Date.now();
    const out: Claimed[] = [];
    for (const e of this.entries.values()) {
      if (out.length >= max) break;
      if (e.busy || Math.max(dueAt(e.msg), e.notBefore) > now) continue;
      e.busy = true;
      out.push({ msg: e.msg, interrupted: e.interrupted });
      e.interrupted = false;
    }
    return out;
  }

  async body(id: string): Promise<Buffer | null> {
    const e = this.entries.get(id);
    if (e?.raw) {
      const raw = e.raw;
      e.raw = null;
      return raw;
    }
    return (await this.spool.read(id))?.raw ?? null;
  }

  async save(msg: QueuedMessage, records: StateRecord[], durable: boolean, bounce?: Bounce): Promise<boolean> {
    const id = msg.env.id;
    if (!this.entries.has(id)) return false;
    // the DSN first: a crash before the record sends it again under the same id, which add() refuses
    if (bounce) await this.add(bounce.env, bounce.raw, true);
    await this.spool.appendState(id, records, durable);
    return this.entries.has(id);
  }

  async finish(id: string): Promise<void> {
    await this.spool.remove(id);
    this.entries.delete(id);
  }

  async release(msg: QueuedMessage, notBefore = 0): Promise<void> {
    const e = this.entries.get(msg.env.id);
    if (!e) return;
    e.busy = false;
    e.notBefore = notBefore;
  }

  nextWakeAt(): number {
    let next = Infinity;
    for (const e of this.entries.values()) if (!e.busy) next = Math.min(next, Math.max(dueAt(e.msg), e.notBefore));
    return next;
  }

  private applyControls(): void {
    let requests: ReturnType<Spool['takeControls']>;
    try {
      requests = this.spool.takeControls();
    } catch (err) {
      this.logger?.warn({ err }, 'cannot read queue control requests');
      return;
    }
    for (const { action, id } of requests) {
      for (const t of id === 'ALL' ? [...this.entries.keys()] : [id]) {
        const e = this.entries.get(t);
        if (!e) continue;
        if (action === 'delete') {
          this.entries.delete(t);
          this.logger?.info({ id: t }, 'queue entry deleted by admin');
        } else {
          for (const r of e.msg.rcpts) if (r.status === 'pending') r.nextAt = 0;
          e.notBefore = 0;
        }
      }
    }
    if (requests.length > 0) this.wake();
  }

  // ---- the CLI's side ----

  async list(): Promise<QueueListing[]> {
    let ids: string[];
    try {
      ids = this.spool.ids();
    } catch {
      return [];
    }
    const out: QueueListing[] = [];
    for (const id of ids) {
      try {
        const env = this.spool.readEnvelopeSync(id);
        out.push(listing({ env, ...replayState(env, this.spool.readStateSync(id)) }));
      } catch {
        // delivered and removed while we listed
      }
    }
    return out.sort((a, b) => a.arrivedAt.localeCompare(b.arrivedAt));
  }

  private has(id: string): boolean {
    return isQueueId(id) && this.spool.ids().includes(id);
  }

  async retry(id: string): Promise<boolean> {
    this.spool.init();
    if (id !== 'ALL' && !this.has(id)) return false;
    this.spool.requestControl('retry', id);
    return true;
  }

  async remove(id: string): Promise<boolean> {
    this.spool.init();
    if (!this.has(id)) return false;
    await this.spool.remove(id);
    this.spool.requestControl('delete', id);
    return true;
  }
}
