import type { SharedCounters } from '@hearth/directory';

/** Fixed windows per key (sender, client IP); a limit of 0 is off. */
export interface RateLimit {
  /** Counts one event; false when the key is over its limit for this window. */
  take(key: string): Promise<boolean>;
}

/** One process's windows, in memory: the single-node default. */
export class RateLimiter implements RateLimit {
  private windows = new Map<string, { start: number; count: number }>();
  private lastSweep = Date.now();

  constructor(
    private readonly perMinute: number,
    private readonly windowMs = 60_000,
  ) {}

  async take(key: string, now = Date.now()): Promise<boolean> {
    if (this.perMinute <= 0) return true;
    if (now - this.lastSweep > this.windowMs) this.sweep(now);
    const w = this.windows.get(key);
    if (!w || now - w.start >= this.windowMs) {
      this.windows.set(key, { start: now, count: 1 });
      return true;
    }
    if (w.count >= this.perMinute) return false;
    w.count++;
    return true;
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [k, w] of this.windows) if (now - w.start >= this.windowMs) this.windows.delete(k);
  }
}

/**
 * Windows every replica counts in (Redis through the directory's SharedCounters): the N+1th
 * message in a window is refused whichever replica takes it. A key's window starts at its first event.
 */
export class SharedRateLimiter implements RateLimit {
  constructor(
    private readonly counters: SharedCounters,
    private readonly namespace: string,
    private readonly perMinute: number,
  ) {}

  async take(key: string): Promise<boolean> {
    if (this.perMinute <= 0) return true;
    return (await this.counters.incr(this.namespace, key, 60)) <= this.perMinute;
  }
}
