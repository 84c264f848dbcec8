import type { Redis } from 'ioredis';
import type { AdapterPayload } from 'oidc-provider';
import type { HearthConfig } from '@hearth/config';
import type { DirectoryStore } from '@hearth/directory';

/**
 * Where the provider keeps sessions, grants, codes and tokens: the shared directory
 * store by default, Redis when HEARTH_REDIS_URL is set. Either way every replica sees
 * the same state, so several processes behind a load balancer act as one.
 */
export interface OidcStorage {
  get(model: string, id: string): Promise<AdapterPayload | undefined>;
  /** ttlSeconds undefined = keep until deleted */
  set(model: string, id: string, payload: AdapterPayload, ttlSeconds: number | undefined): Promise<void>;
  /**
   * Marks a one-time entity (authorization code, rotated refresh token) used, keeping its
   * expiry. Atomic across replicas: false when another request consumed it first.
   */
  consume(model: string, id: string): Promise<boolean>;
  delete(model: string, id: string): Promise<void>;
  findAll(model: string, field: IndexedField, value: string): Promise<AdapterPayload[]>;
  deleteAll(model: string, field: IndexedField, value: string): Promise<void>;
  close(): Promise<void>;
}

/** The payload fields the provider (and user revocation) look entities up by. */
export type IndexedField = 'uid' | 'userCode' | 'grantId' | 'accountId';

/** Models whose entities belong to one account; purged when that user is disabled or deleted. */
export const ACCOUNT_MODELS = ['Session', 'Grant', 'AccessToken', 'RefreshToken', 'AuthorizationCode', 'DeviceCode', 'BackchannelAuthenticationRequest'];

const EXPIRES_AT = '_hearthExpiresAt';
/** How long a consumed-marker lives for an entity stored without expiry. */
const CONSUMED_MARK_TTL = 30 * 24 * 3600;
/**
 * One-time entities. Their "consumed" flag is a separate marker set atomically (one write,
 * no read-modify-write of the payload), and read back with the payload.
 */
/**
 * Lookups the provider makes on every token use (a session by its uid: tokens that expire with
 * the session check it) get a key of their own instead of a scan of the namespace.
 */
const UNIQUE_LOOKUP: Record<string, IndexedField | undefined> = { Session: 'uid', DeviceCode: 'userCode' };

const CONSUMABLE = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest', 'PushedAuthorizationRequest']);

function strip(raw: string): AdapterPayload {
  const parsed = JSON.parse(raw) as AdapterPayload & { [EXPIRES_AT]?: number | null };
  delete parsed[EXPIRES_AT];
  return parsed;
}

export class StoreStorage implements OidcStorage {
  constructor(private readonly store: DirectoryStore) {}

  private ns(model: string): string {
    return `oidc:${model}`;
  }

  async get(model: string, id: string): Promise<AdapterPayload | undefined> {
    const raw = await this.store.kvGet(this.ns(model), id);
    if (raw === null) return undefined;
    const payload = strip(raw);
    if (CONSUMABLE.has(model)) {
      if ((await this.store.kvGet(this.consumedNs(model), id)) !== null) payload.consumed = true;
    }
    return payload;
  }

  private consumedNs(model: string): string {
    return `oidc:consumed:${model}`;
  }

  async set(model: string, id: string, payload: AdapterPayload, ttlSeconds: number | undefined): Promise<void> {
    const expiresAt = ttlSeconds === undefined ? null : Date.now() + ttlSeconds * 1000;
    await this.store.kvSet(this.ns(model), id, JSON.stringify({ ...payload, [EXPIRES_AT]: expiresAt }), ttlSeconds ?? null);
    const field = UNIQUE_LOOKUP[model];
    const value = field && payload[field];
    if (typeof value === 'string') await this.store.kvSet(this.lookupNs(model, field!), value, id, ttlSeconds ?? null);
  }

  private lookupNs(model: string, field: IndexedField): string {
    return `oidc:${model}:by-${field}`;
  }

  async consume(model: string, id: string): Promise<boolean> {
    const raw = await this.store.kvGet(this.ns(model), id);
    if (raw === null) return false;
    const expiresAt = (JSON.parse(raw) as { [EXPIRES_AT]?: number | null })[EXPIRES_AT] ?? null;
    const ttl = expiresAt === null ? CONSUMED_MARK_TTL : Math.max(1, Math.ceil((expiresAt - Date.now()) / 1000));
    // kvIncr is the store's one atomic step: only the first consumer sees 1.
    return (await this.store.kvIncr(this.consumedNs(model), id, 1, ttl)) === 1;
  }

  async delete(model: string, id: string): Promise<void> {
    await this.store.kvDelete(this.ns(model), id);
  }

  async findAll(model: string, field: IndexedField, value: string): Promise<AdapterPayload[]> {
    if (UNIQUE_LOOKUP[model] === field) {
      const id = await this.store.kvGet(this.lookupNs(model, field), value);
      const found = id === null ? undefined : await this.get(model, id);
      return found && found[field] === value ? [found] : [];
    }
    return (await this.store.kvFindWhere(this.ns(model), field, value)).map((row) => strip(row.value));
  }

  async deleteAll(model: string, field: IndexedField, value: string): Promise<void> {
    await this.store.kvDeleteWhere(this.ns(model), field, value);
  }

  async close(): Promise<void> {}
}

const INDEXED: IndexedField[] = ['uid', 'userCode', 'grantId', 'accountId'];
/** Index sets outlive their members by this much so a late lookup still finds them. */
const INDEX_SLACK_SECONDS = 60;

export class RedisStorage implements OidcStorage {
  constructor(private readonly redis: Redis) {}

  static async connect(url: string): Promise<RedisStorage> {
    // loaded only with HEARTH_REDIS_URL: the client costs every process that imports it ~20 MiB
    const { Redis } = await import('ioredis');
    const redis = new Redis(url, { maxRetriesPerRequest: 2 });
    redis.on('error', () => {});
    return new RedisStorage(redis);
  }

  private key(model: string, id: string): string {
    return `hearth:oidc:${model}:${id}`;
  }

  private indexKey(model: string, field: IndexedField, value: string): string {
    return `hearth:oidc:${model}:by-${field}:${value}`;
  }

  private consumedKey(model: string, id: string): string {
    return `hearth:oidc:consumed:${model}:${id}`;
  }

  async get(model: string, id: string): Promise<AdapterPayload | undefined> {
    if (!CONSUMABLE.has(model)) {
      const raw = await this.redis.get(this.key(model, id));
      return raw === null ? undefined : (JSON.parse(raw) as AdapterPayload);
    }
    const [raw, consumed] = await this.redis.mget(this.key(model, id), this.consumedKey(model, id));
    if (raw === null || raw === undefined) return undefined;
    const payload = JSON.parse(raw) as AdapterPayload;
    if (consumed) payload.consumed = true;
    return payload;
  }

  async set(model: string, id: string, payload: AdapterPayload, ttlSeconds: number | undefined): Promise<void> {
    const key = this.key(model, id);
    const multi = this.redis.multi();
    if (ttlSeconds === undefined) multi.set(key, JSON.stringify(payload));
    else multi.set(key, JSON.stringify(payload), 'EX', ttlSeconds);
    for (const field of INDEXED) {
      const v = payload[field];
      if (typeof v !== 'string') continue;
      const idx = this.indexKey(model, field, v);
      multi.sadd(idx, key);
      if (ttlSeconds !== undefined) multi.expire(idx, ttlSeconds + INDEX_SLACK_SECONDS, 'GT');
      else multi.persist(idx);
      // EXPIRE GT does nothing on a key without a TTL; give a fresh set one.
      if (ttlSeconds !== undefined) multi.expire(idx, ttlSeconds + INDEX_SLACK_SECONDS, 'NX');
    }
    await multi.exec();
  }

  async consume(model: string, id: string): Promise<boolean> {
    const ttl = await this.redis.ttl(this.key(model, id));
    if (ttl === -2) return false;
    return (await this.redis.set(this.consumedKey(model, id), '1', 'EX', ttl > 0 ? ttl : CONSUMED_MARK_TTL, 'NX')) !== null;
  }

  async delete(model: string, id: string): Promise<void> {
    await this.redis.del(this.key(model, id));
  }

  async findAll(model: string, field: IndexedField, value: string): Promise<AdapterPayload[]> {
    const keys = await this.redis.smembers(this.indexKey(model, field, value));
    if (keys.length === 0) return [];
    return (await this.redis.mget(...keys)).filter((raw): raw is string => raw !== null).map((raw) => JSON.parse(raw) as AdapterPayload);
  }

  async deleteAll(model: string, field: IndexedField, value: string): Promise<void> {
    const idx = this.indexKey(model, field, value);
    const keys = await this.redis.smembers(idx);
    await this.redis.del(idx, ...keys);
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

/** The provider's storage as configured: Redis when HEARTH_REDIS_URL is set, else the directory store (the console reads it the same way). */
export async function openOidcStorage(config: HearthConfig, store: DirectoryStore): Promise<OidcStorage> {
  return config.redisUrl ? await RedisStorage.connect(config.redisUrl) : new StoreStorage(store);
}

