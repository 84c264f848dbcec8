import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from '@hearth/log';
import { queueStatements } from './metrics.ts';
import { dueAt, listing, freshRcpts, type Bounce, type Claimed, type QueueAdmin, type QueueListing, type QueuedMessage, type QueueStore, type RcptState } from './queue-store.ts';
import { isQueueId, unlinkIfThere, type QueueEnvelope, type Spool, type StateRecord } from './spool.ts';

/** the database's clock, so replicas with skewed clocks agree on when a lease ran out */
const DB_NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';
/** pg_advisory_xact_lock key: replicas starting together create the table one at a time */
const SCHEMA_LOCK = 4_242_025;
/** pg_try_advisory_xact_lock key: one replica at a time sweeps the shared spool */
const HOUSEKEEPING_LOCK = 4_242_026;
/** NOTIFY channel: a message was queued (payload: the queueing replica's owner id) or an admin asked for a retry */
const CHANNEL = 'hearth_smtp_queue';
/**
 * How often a replica looks for work although no notification came: notifications lost while its
 * listening connection was down, and leases of a dead replica running out (which notify no one).
 */
const FALLBACK_POLL_MS = 5_000;
/** how long a lost listening connection waits before it connects again */
const RELISTEN_MS = 2_000;
/** the queue-size gauge's figure is looked up at most this often */
const COUNT_EVERY_MS = 500;
/** how often a replica offers to sweep the shared spool (only one at a time does); the first pass waits as long, crash leftovers are not urgent */
const HOUSEKEEPING_EVERY_MS = 10 * 60_000;
/**
 * A spool file older than this with no row is garbage: a body is written just before its row is
 * inserted, so a younger one may be a message being queued right now (or a write in tmp/ running).
 */
export const ORPHAN_AGE_MS = 60 * 60_000;
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

/** What one housekeeping pass removed; null when another replica was sweeping. */
export interface Housekeeping {
  /** bodies in msg/ whose row is gone */
  bodies: number;
  /** leftovers of interrupted writes in tmp/ */
  tmp: number;
}

/**
 * The queue of replicas: one row per message in PostgreSQL (recipient state as JSON, a lease
 * naming the replica attempting it), the body in the spool's msg/ directory on the file system
 * the replicas share. A replica claims due rows with FOR UPDATE SKIP LOCKED, renews its leases
 * while it delivers, and writes each outcome only while it still holds the lease; a replica that
 * dies stops renewing, and after leaseMs any replica takes its rows over (marked interrupted, so
 * local copies that already arrived are recognised). A DSN is inserted in the same transaction
 * that records its recipients as reported, so it is queued exactly once. A queued message is
 * announced with NOTIFY, so idle replicas claim it at once; a slow poll catches what no
 * notification announces (leases running out, notifications missed while a connection was down).
 * Bodies left without a row (a crash between the body and the row, or between the row's delete
 * and the body's) are swept by whichever replica runs housekeeping.
 */
export class PostgresQueueStore implements QueueStore, QueueAdmin {
  private readonly pool: pg.Pool;
  readonly owner = `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  /** entries this replica holds a lease on */
  private readonly held = new Set<string>();
  private heartbeat: NodeJS.Timeout | null = null;
  private housekeeper: NodeJS.Timeout | null = null;
  private listener: pg.Client | null = null;
  private relisten: NodeJS.Timeout | null = null;
  private closed = false;
  private wake: () => void = () => {};
  /** entries this replica released, by id: when each is next due (this replica wakes for them; the others poll) */
  private readonly dueLater = new Map<string, number>();
  private lastClaimAt = 0;
  private counted = 0;
  private countedAt = 0;

  constructor(
    private readonly url: string,
    readonly spool: Spool,
    private readonly opts: PostgresQueueOptions,
  ) {
    this.pool = new pg.Pool({ connectionString: url, max: 4 });
    // an idle client losing its connection must not take the daemon down
    this.pool.on('error', () => {});
  }

  /** Every statement goes through here: each is one round trip, counted in hearth_smtp_queue_statements_total. */
  private query<R extends pg.QueryResultRow = pg.QueryResultRow>(on: pg.Pool | pg.ClientBase, text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    queueStatements.inc();
    return on.query<R>(text, values);
  }

  /** Runs fn in one transaction; fn's false rolls it back. */
  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await this.query(c, 'BEGIN');
      const out = await fn(c);
      await this.query(c, out === false ? 'ROLLBACK' : 'COMMIT');
      return out;
    } catch (err) {
      await this.query(c, 'ROLLBACK').catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  }

  async open(wake: () => void): Promise<void> {
    this.wake = wake;
    // tmp/ is not emptied here as a single node's spool does: another replica may be writing into it (housekeeping sweeps old leftovers)
    this.spool.init();
    await this.tx(async (c) => {
      await this.query(c, 'SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
      await this.query(c, SCHEMA);
    });
    await this.listen();
    this.heartbeat = setInterval(() => void this.renew(), Math.max(100, this.opts.leaseMs / 3));
    this.heartbeat.unref();
    this.housekeeper = setInterval(() => void this.sweep(), HOUSEKEEPING_EVERY_MS);
    this.housekeeper.unref();
  }

  /**
   * A connection of its own that LISTENs for queued messages. Lost, it connects again after a pause
   * and wakes the queue once, for whatever was announced meanwhile; until then the slow poll stands in.
   */
  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url });
    let live = false;
    const onLost = (err?: Error): void => {
      if (!live) return; // a failed connect: the caller hears of it
      live = false;
      this.listener = null;
      client.end().catch(() => {});
      if (this.closed) return;
      this.opts.logger?.warn({ err }, 'queue notifications lost; listening again shortly, polling meanwhile');
      this.listenLater();
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (n) => {
      // our own messages are claimed by the pump that queued them
      if (n.payload !== this.owner) this.wake();
    });
    try {
      await client.connect();
      await this.query(client, `LISTEN ${CHANNEL}`);
    } catch (err) {
      client.end().catch(() => {});
      throw err;
    }
    live = true;
    this.listener = client;
  }

  private listenLater(): void {
    this.relisten = setTimeout(() => {
      this.relisten = null;
      this.listen().then(
        () => this.wake(),
        (err: unknown) => {
          if (this.closed) return;
          this.opts.logger?.warn({ err }, 'cannot listen for queue notifications; trying again shortly');
          this.listenLater();
        },
      );
    }, RELISTEN_MS);
    this.relisten.unref();
  }

  private async renew(): Promise<void> {
    if (this.held.size === 0) return;
    try {
      await this.query(this.pool, `UPDATE smtp_queue SET lease_until = ${DB_NOW_MS} + $3 WHERE lease_owner = $1 AND id = ANY($2)`, [this.owner, [...this.held], this.opts.leaseMs]);
    } catch (err) {
      this.opts.logger?.warn({ err }, 'cannot renew queue leases');
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.housekeeper) clearInterval(this.housekeeper);
    if (this.relisten) clearTimeout(this.relisten);
    await this.listener?.end().catch(() => {});
    await this.pool.end();
  }

  get size(): number {
    return this.counted;
  }

  async add(env: QueueEnvelope, raw: Buffer, exclusive: boolean): Promise<boolean> {
    if (exclusive && (await this.query(this.pool, 'SELECT 1 FROM smtp_queue WHERE id = $1', [env.id])).rowCount) return false;
    // the body first: a row never names a body that is not there
    await this.spool.write(env, raw);
    // the announcement rides in the insert's round trip, and goes out only if the row went in (at commit)
    const r = await this.query(
      this.pool,
      `WITH added AS (INSERT INTO smtp_queue (id, envelope, rcpts) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING RETURNING id)
       SELECT pg_notify('${CHANNEL}', $4) FROM added`,
      [env.id, env, JSON.stringify(freshRcpts(env)), this.owner],
    );
    this.counted += r.rowCount ?? 0;
    return r.rowCount === 1;
  }

  async claim(max: number): Promise<Claimed[]> {
    await this.count();
    const now = Date.now();
    this.lastClaimAt = now;
    // what was due by now is claimed below, or held by another replica that deals with it
    for (const [id, at] of this.dueLater) if (at <= now) this.dueLater.delete(id);
    const r = await this.query<Row & { previous: string | null }>(
      this.pool,
      `WITH due AS (
         SELECT id, lease_owner FROM smtp_queue WHERE next_at <= $1 AND lease_until < ${DB_NOW_MS}
         ORDER BY next_at LIMIT $2 FOR UPDATE SKIP LOCKED)
       UPDATE smtp_queue q SET lease_owner = $3, lease_until = ${DB_NOW_MS} + $4 FROM due WHERE q.id = due.id
       RETURNING q.envelope, q.rcpts, q.bounces, due.lease_owner AS previous`,
      [now, max, this.owner, this.opts.leaseMs],
    );
    return r.rows.map((row) => {
      this.held.add(row.envelope.id);
      this.dueLater.delete(row.envelope.id);
      if (row.previous !== null) this.opts.logger?.warn({ id: row.envelope.id, previous: row.previous }, 'queue entry taken over: its lease ran out');
      // a cleanly released row has no owner; one still naming an owner was left by a replica that stopped renewing
      return { msg: { env: row.envelope, rcpts: row.rcpts, bounces: row.bounces }, interrupted: row.previous !== null };
    });
  }

  /** The gauge's figure, looked up at most every COUNT_EVERY_MS. */
  private async count(): Promise<void> {
    if (Date.now() - this.countedAt < COUNT_EVERY_MS) return;
    this.countedAt = Date.now();
    this.counted = Number((await this.query<{ n: string }>(this.pool, 'SELECT count(*) AS n FROM smtp_queue')).rows[0]!.n);
  }

  async body(id: string): Promise<Buffer | null> {
    return (await this.spool.read(id))?.raw ?? null;
  }

  async save(msg: QueuedMessage, _records: StateRecord[], durable: boolean, bounce?: Bounce): Promise<boolean> {
    if (bounce) await this.spool.write(bounce.env, bounce.raw);
    const saved = await this.tx(async (c) => {
      // a deferral lost in a crash is only an early retry
      if (!durable) await this.query(c, 'SET LOCAL synchronous_commit = off');
      const r = await this.query(c, 'UPDATE smtp_queue SET rcpts = $3, bounces = $4 WHERE id = $1 AND lease_owner = $2', [msg.env.id, this.owner, JSON.stringify(msg.rcpts), msg.bounces]);
      if (r.rowCount !== 1) return false;
      if (bounce) await this.query(c, 'INSERT INTO smtp_queue (id, envelope, rcpts) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING', [bounce.env.id, bounce.env, JSON.stringify(freshRcpts(bounce.env))]);
      return true;
    });
    if (!saved) this.held.delete(msg.env.id);
    return saved;
  }

  async finish(id: string): Promise<void> {
    const r = await this.query(this.pool, 'DELETE FROM smtp_queue WHERE id = $1 AND lease_owner = $2', [id, this.owner]);
    this.held.delete(id);
    if (r.rowCount === 1) {
      this.counted = Math.max(0, this.counted - 1);
      await this.spool.remove(id);
    }
  }

  async release(msg: QueuedMessage, notBefore = 0): Promise<void> {
    const next = Math.max(dueAt(msg), notBefore);
    await this.query(this.pool, 'UPDATE smtp_queue SET next_at = $3, lease_owner = NULL, lease_until = 0 WHERE id = $1 AND lease_owner = $2', [msg.env.id, this.owner, Number.isFinite(next) ? next : NEVER]);
    this.held.delete(msg.env.id);
    if (Number.isFinite(next)) this.dueLater.set(msg.env.id, next);
  }

  nextWakeAt(): number {
    let next = this.lastClaimAt + FALLBACK_POLL_MS;
    for (const at of this.dueLater.values()) if (at < next) next = at;
    return next;
  }

  private async sweep(): Promise<void> {
    try {
      const swept = await this.housekeep();
      if (swept && swept.bodies + swept.tmp > 0) this.opts.logger?.info(swept, 'queue housekeeping: removed spool files without a queue entry');
    } catch (err) {
      this.opts.logger?.warn({ err }, 'queue housekeeping failed; will try again');
    }
  }

  /**
   * Removes what no row will ever need: bodies in msg/ without a row and leftovers in tmp/, each
   * older than ORPHAN_AGE_MS. One replica at a time (an advisory lock held for the pass; the others
   * skip it and get null); a file already gone is no error, so overlapping passes are harmless too.
   */
  async housekeep(now = Date.now()): Promise<Housekeeping | null> {
    return this.tx(async (c) => {
      const locked = (await this.query<{ ok: boolean }>(c, 'SELECT pg_try_advisory_xact_lock($1) AS ok', [HOUSEKEEPING_LOCK])).rows[0]!.ok;
      if (!locked) return null;
      // asynchronous: on a shared file system a large spool's stats take a while, and deliveries go on meanwhile
      const old = async (dir: string): Promise<string[]> => {
        const out: string[] = [];
        for (const f of await fs.promises.readdir(dir)) if ((await modifiedAt(path.join(dir, f))) < now - ORPHAN_AGE_MS) out.push(f);
        return out;
      };
      const candidates = (await old(this.spool.msgDir)).filter(isQueueId);
      const kept = new Set<string>();
      for (let i = 0; i < candidates.length; i += 1000) {
        const r = await this.query<{ id: string }>(c, 'SELECT id FROM smtp_queue WHERE id = ANY($1)', [candidates.slice(i, i + 1000)]);
        for (const row of r.rows) kept.add(row.id);
      }
      let bodies = 0;
      for (const id of candidates) if (!kept.has(id) && (await unlinkIfThere(this.spool.msgPath(id)))) bodies++;
      let tmp = 0;
      for (const f of await old(this.spool.tmpDir)) if (await unlinkIfThere(path.join(this.spool.tmpDir, f))) tmp++;
      return { bodies, tmp };
    });
  }

  // ---- the CLI's side ----

  async list(): Promise<QueueListing[]> {
    const r = await this.query<Row>(this.pool, "SELECT envelope, rcpts, bounces FROM smtp_queue ORDER BY (envelope->>'arrivedAt')::bigint, id");
    return r.rows.map((row) => listing({ env: row.envelope, rcpts: row.rcpts, bounces: row.bounces }));
  }

  async retry(id: string): Promise<boolean> {
    return this.tx(async (c) => {
      const r = await this.query<{ id: string; rcpts: RcptState[] }>(c, "SELECT id, rcpts FROM smtp_queue WHERE $1 = 'ALL' OR id = $1 FOR UPDATE", [id]);
      for (const row of r.rows) {
        for (const rc of row.rcpts) if (rc.status === 'pending') rc.nextAt = 0;
        await this.query(c, 'UPDATE smtp_queue SET rcpts = $2, next_at = 0 WHERE id = $1', [row.id, JSON.stringify(row.rcpts)]);
      }
      // the daemons sleep until a retry is due: tell them (sent at commit)
      if (r.rowCount) await this.query(c, `SELECT pg_notify('${CHANNEL}', 'retry')`);
      return id === 'ALL' || r.rowCount === 1;
    });
  }

  async remove(id: string): Promise<boolean> {
    const r = await this.query(this.pool, 'DELETE FROM smtp_queue WHERE id = $1', [id]);
    if (r.rowCount !== 1) return false;
    await this.spool.remove(id);
    return true;
  }
}

/** A file's mtime in ms; Infinity when it is gone already (never old enough to remove). */
async function modifiedAt(file: string): Promise<number> {
  try {
    return (await fs.promises.stat(file)).mtimeMs;
  } catch {
    return Infinity;
  }
}

