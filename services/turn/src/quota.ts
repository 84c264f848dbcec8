import type { connectRedis } from '@hearth/directory';
import type { Logger } from '@hearth/log';

type Redis = Awaited<ReturnType<typeof connectRedis>>;

/**
 * How many allocations one user holds at once (HEARTH_TURN_USER_QUOTA). Alone, counted in
 * memory; with HEARTH_REDIS_URL, over every replica: a sorted set per user in Redis whose
 * members are the live allocations, scored by when each expires, so the slots of a replica
 * that died run out with the allocations' lifetimes.
 */
export interface AllocationQuota {
  /** Takes a slot for allocation `slot` unless the user already holds the quota. */
  acquire(userKey: string, slot: string, lifetimeSeconds: number): Promise<boolean>;
  /** The allocation was refreshed: its slot lives as long. */
  extend(userKey: string, slot: string, lifetimeSeconds: number): void;
  release(userKey: string, slot: string): void;
  close(): void;
}

export class LocalQuota implements AllocationQuota {
  private readonly slots = new Map<string, Set<string>>();

  constructor(private readonly max: number) {}

  async acquire(userKey: string, slot: string): Promise<boolean> {
    const held = this.slots.get(userKey) ?? new Set<string>();
    if (held.size >= this.max) return false;
    held.add(slot);
    this.slots.set(userKey, held);
    return true;
  }

  extend(): void {}

  release(userKey: string, slot: string): void {
    const held = this.slots.get(userKey);
    held?.delete(slot);
    if (held?.size === 0) this.slots.delete(userKey);
  }

  close(): void {}
}

/** drop expired slots, then add this one if there is room: one atomic step */
const ACQUIRE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`;

export class RedisQuota implements AllocationQuota {
  constructor(
    private readonly redis: Redis,
    private readonly max: number,
    /** the longest an allocation lives without a refresh: how long an idle user's set is kept */
    private readonly maxLifetimeSeconds: number,
    private readonly logger: Logger,
  ) {}

  private key(userKey: string): string {
    return `hearth:turn-quota:${userKey}`;
  }

  async acquire(userKey: string, slot: string, lifetimeSeconds: number): Promise<boolean> {
    const now = Date.now();
    try {
      return (await this.redis.eval(ACQUIRE, 1, this.key(userKey), now, this.max, now + lifetimeSeconds * 1000, slot, this.maxLifetimeSeconds * 1000)) === 1;
    } catch (err) {
      // the quota guards against abuse; Redis being away must not stop calls
      this.logger.warn({ err }, 'cannot reach Redis for the TURN quota; allocating without it');
      return true;
    }
  }

  extend(userKey: string, slot: string, lifetimeSeconds: number): void {
    this.redis.zadd(this.key(userKey), 'XX', Date.now() + lifetimeSeconds * 1000, slot).catch((err: unknown) => this.logger.warn({ err }, 'cannot extend a TURN quota slot'));
  }

  release(userKey: string, slot: string): void {
    this.redis.zrem(this.key(userKey), slot).catch((err: unknown) => this.logger.warn({ err }, 'cannot release a TURN quota slot'));
  }

  close(): void {
    this.redis.disconnect();
  }
}

/**
 * HEARTH_TURN_TOTAL_QUOTA: allocations open or being made at once, in this daemon. Taken before
 * an allocation's sockets are opened, given back when it fails or ends; a cluster worker asks the
 * primary (cluster.ts), which counts for every worker.
 */
export interface Capacity {
  take(): Promise<boolean>;
  give(): void;
}

export class LocalCapacity implements Capacity {
  private held = 0;

  constructor(private readonly max: number) {}

  async take(): Promise<boolean> {
    if (this.held >= this.max) return false;
    this.held++;
    return true;
  }

  give(): void {
    this.held = Math.max(0, this.held - 1);
  }
}
