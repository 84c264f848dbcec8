import { randomBytes } from 'node:crypto';
import os from 'node:os';
import pg from 'pg';
import type { Logger } from '@hearth/log';
import { dueAt, listing, freshRcpts, type Bounce, type Claimed, type QueueAdmin, type QueueListing, type QueuedMessage, type QueueStore, type RcptState } from './queue-store.ts';
import type { QueueEnvelope, Spool, StateRecord } from './spool.ts';

/** the database's clock, so replicas with skewed clocks agree on when a lease ran out */
const DB_NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';
/** pg_advisory_xact_lock key: replicas starting together create the table one at a time */
const SCHEMA_LOCK = 4_242_025;
/** how often a replica looks for work other replicas queued, or leases that ran out */
const POLL_MS = 500;
/** next_at of an entry with nothing left to do (finish() removes it) */
const NEVER = Number.MAX_SAFE_INTEGER;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS smtp_queue (
  id text PRIMARY KEY,
  envelope jsonb NOT NULL,
  rcpts jsonb NOT NULL,
  bounces integer NOT NULL DEFAULT 0,
  next_at bigint NOT NULL DEFAULT 0,
  lease_owner text,
  lease_until bigint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS smtp_queue_next_at ON smtp_queue (next_at);
`;

interface Row {
  envelope: QueueEnvelope;
  rcpts: RcptState[];
  bounces: number;
}

export interface PostgresQueueOptions {
  /** a claimed entry is this replica's for this long, renewed while the attempt runs */
  leaseMs: number;
  logger?: Logger;
}

/**
 * The queue of replicas: one row per message in PostgreSQL (recipient state as JSON, a lease
 * naming the replica attempting it), the body in the spool's msg/ directory on the file system
 * the replicas share. A replica claims due rows with FOR UPDATE SKIP LOCKED, renews its leases
 * while it delivers, and writes each outcome only while it still holds the lease; a replica that
 * dies stops renewing, and after leaseMs any replica takes its rows over (marked interrupted, so
 * local copies that already arrived are recognised). A DSN is inserted in the same transaction
 * that records its recipients as reported, so it is queued exactly once.
 */
export class PostgresQueueStore implements QueueStore, QueueAdmin {
  private readonly pool: pg.Pool;
  readonly owner = `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  /** entries this replica holds a lease on */
  private readonly held = new Set<string>();
  private heartbeat: NodeJS.Timeout | null = null;
  private counted = 0;
  private countedAt = 0;

  constructor(
    url: string,
    readonly spool: Spool,
    private readonly opts: PostgresQueueOptions,
  ) {
    this.pool = new pg.Pool({ connectionString: url, max: 4 });
    // an idle client losing its connection must not take the daemon down
    this.pool.on('error', () => {});
  }

  /** Runs fn in one transaction; fn's false rolls it back. */
  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query(out === false ? 'ROLLBACK' : 'COMMIT');
      return out;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  }

  async open(): Promise<void> {
    // no tmp/ cleanup here: another replica may be writing into the shared spool
    this.spool.init();
    await this.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
      await c.query(SCHEMA);
    });
    this.heartbeat = setInterval(() => void this.renew(), Math.max(100, this.opts.leaseMs / 3));
    this.heartbeat.unref();
  }

  private async renew(): Promise<void> {
    if (this.held.size === 0) return;
    try {
      await this.pool.query(`UPDATE smtp_queue SET lease_until = ${DB_NOW_MS} + $3 WHERE lease_owner = $1 AND id = ANY($2)`, [this.owner, [...this.held], this.opts.leaseMs]);
    } catch (err) {
      this.opts.logger?.warn({ err }, 'cannot renew queue leases');
    }
  }

  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.pool.end();
  }

  get size(): number {
    return this.counted;
  }

  async add(env: QueueEnvelope, raw: Buffer, exclusive: boolean): Promise<boolean> {
    if (exclusive && (await this.pool.query('SELECT 1 FROM smtp_queue WHERE id = $1', [env.id])).rowCount) return false;
    // the body first: a row never names a body that is not there
    await this.spool.write(env, raw);
    const r = await this.pool.query('INSERT INTO smtp_queue (id, envelope, rcpts) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING', [env.id, env, JSON.stringify(freshRcpts(env))]);
    this.counted += r.rowCount ?? 0;
    return r.rowCount === 1;
  }

  async claim(max: number): Promise<Claimed[]> {
    await this.count();
    const r = await this.pool.query<Row & { previous: string | null }>(
      `WITH due AS (
         SELECT id, lease_owner FROM smtp_queue WHERE next_at <= $1 AND lease_until < ${DB_NOW_MS}
         ORDER BY next_at LIMIT $2 FOR UPDATE SKIP LOCKED)
       UPDATE smtp_queue q SET lease_owner = $3, lease_until = ${DB_NOW_MS} + $4 FROM due WHERE q.id = due.id
       RETURNING q.envelope, q.rcpts, q.bounces, due.lease_owner AS previous`,
      [Date.now(), max, this.owner, this.opts.leaseMs],
    );
    return r.rows.map((row) => {
      this.held.add(row.envelope.id);
      if (row.previous !== null) this.opts.logger?.warn({ id: row.envelope.id, previous: row.previous }, 'queue entry taken over: its lease ran out');
      // a cleanly released row has no owner; one still naming an owner was left by a replica that stopped renewing
      return { msg: { env: row.envelope, rcpts: row.rcpts, bounces: row.bounces }, interrupted: row.previous !== null };
    });
  }

  /** The gauge's figure, looked up at most once per poll. */
  private async count(): Promise<void> {
    if (Date.now() - this.countedAt < POLL_MS) return;
    this.countedAt = Date.now();
    this.counted = Number((await this.pool.query<{ n: string }>('SELECT count(*) AS n FROM smtp_queue')).rows[0]!.n);
  }

  async body(id: string): Promise<Buffer | null> {
    return (await this.spool.read(id))?.raw ?? null;
  }

  async save(msg: QueuedMessage, _records: StateRecord[], durable: boolean, bounce?: Bounce): Promise<boolean> {
    if (bounce) await this.spool.write(bounce.env, bounce.raw);
    const saved = await this.tx(async (c) => {
      // a deferral lost in a crash is only an early retry
      if (!durable) await c.query('SET LOCAL synchronous_commit = off');
      const r = await c.query('UPDATE smtp_queue SET rcpts = $3, bounces = $4 WHERE id = $1 AND lease_owner = $2', [msg.env.id, this.owner, JSON.stringify(msg.rcpts), msg.bounces]);
      if (r.rowCount !== 1) return false;
      if (bounce) await c.query('INSERT INTO smtp_queue (id, envelope, rcpts) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING', [bounce.env.id, bounce.env, JSON.stringify(freshRcpts(bounce.env))]);
      return true;
    });
    if (!saved) this.held.delete(msg.env.id);
    return saved;
  }

  async finish(id: string): Promise<void> {
    const r = await this.pool.query('DELETE FROM smtp_queue WHERE id = $1 AND lease_owner = $2', [id, this.owner]);
    this.held.delete(id);
    if (r.rowCount === 1) await this.spool.remove(id);
  }

  async release(msg: QueuedMessage, notBefore = 0): Promise<void> {
    const next = Math.max(dueAt(msg), notBefore);
    await this.pool.query('UPDATE smtp_queue SET next_at = $3, lease_owner = NULL, lease_until = 0 WHERE id = $1 AND lease_owner = $2', [msg.env.id, this.owner, Number.isFinite(next) ? next : NEVER]);
    this.held.delete(msg.env.id);
  }

  nextWakeAt(): number {
    return Date.now() + POLL_MS;
  }

  // ---- the CLI's side ----

  async list(): Promise<QueueListing[]> {
    const r = await this.pool.query<Row>("SELECT envelope, rcpts, bounces FROM smtp_queue ORDER BY (envelope->>'arrivedAt')::bigint, id");
    return r.rows.map((row) => listing({ env: row.envelope, rcpts: row.rcpts, bounces: row.bounces }));
  }

  async retry(id: string): Promise<boolean> {
    return this.tx(async (c) => {
      const r = await c.query<{ id: string; rcpts: RcptState[] }>("SELECT id, rcpts FROM smtp_queue WHERE $1 = 'ALL' OR id = $1 FOR UPDATE", [id]);
      for (const row of r.rows) {
        for (const rc of row.rcpts) if (rc.status === 'pending') rc.nextAt = 0;
        await c.query('UPDATE smtp_queue SET rcpts = $2, next_at = 0 WHERE id = $1', [row.id, JSON.stringify(row.rcpts)]);
      }
      return id === 'ALL' || r.rowCount === 1;
    });
  }

  async remove(id: string): Promise<boolean> {
    const r = await this.pool.query('DELETE FROM smtp_queue WHERE id = $1', [id]);
    if (r.rowCount !== 1) return false;
    await this.spool.remove(id);
    return true;
  }
}
