import type { Redis } from 'ioredis';
import type { DirectoryStore } from './store.ts';

/**
 * State several replicas must agree on that is not directory data: counters for
 * login throttling, and the change broadcast. In Redis when HEARTH_REDIS_URL is
 * set, otherwise in the store itself.
 */
export interface SharedCounters {
  incr(namespace: string, key: string, ttlSeconds: number): Promise<number>;
  get(namespace: string, key: string): Promise<number>;
  reset(namespace: string, key: string): Promise<void>;
  /** Sets the key to 1 with a fresh time to live (a marker such as "signed in from here recently"). */
  touch(namespace: string, key: string, ttlSeconds: number): Promise<void>;
}

export class StoreCounters implements SharedCounters {
  constructor(private readonly store: DirectoryStore) {}
  incr(namespace: string, key: string, ttlSeconds: number): Promise<number> {
    return this.store.kvIncr(namespace, key, 1, ttlSeconds);
  }
  async get(namespace: string, key: string): Promise<number> {
    return Number((await this.store.kvGet(namespace, key)) ?? 0);
  }
  reset(namespace: string, key: string): Promise<void> {
    return this.store.kvDelete(namespace, key);
  }
  touch(namespace: string, key: string, ttlSeconds: number): Promise<void> {
    return this.store.kvSet(namespace, key, '1', ttlSeconds);
  }
}

export class RedisCounters implements SharedCounters {
  constructor(private readonly redis: Redis) {}
  async incr(namespace: string, key: string, ttlSeconds: number): Promise<number> {
    const k = `hearth:${namespace}:${key}`;
    const [[, n]] = (await this.redis.multi().incr(k).expire(k, ttlSeconds, 'NX').exec()) as [[null, number]];
    return n;
  }
  async get(namespace: string, key: string): Promise<number> {
    return Number((await this.redis.get(`hearth:${namespace}:${key}`)) ?? 0);
  }
  async reset(namespace: string, key: string): Promise<void> {
    await this.redis.del(`hearth:${namespace}:${key}`);
  }
  async touch(namespace: string, key: string, ttlSeconds: number): Promise<void> {
    await this.redis.set(`hearth:${namespace}:${key}`, '1', 'EX', ttlSeconds);
  }
}

export const REDIS_CHANGE_CHANNEL = 'hearth:changes';

export async function connectRedis(url: string): Promise<Redis> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 2, enableOfflineQueue: true });
  // Connection errors are retried by ioredis; a log line is enough, never a crash.
  redis.on('error', () => {});
  return redis;
}
