import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { createPostgresDatabase, tempDir, waitFor } from '@hearth/testkit';
import { ORPHAN_AGE_MS, PostgresQueueStore } from '../src/postgres-queue.ts';
import { newQueueId, Spool, type QueueEnvelope } from '../src/spool.ts';

/**
 * Two stores over one PostgreSQL database and one spool folder, as two replicas have them: what
 * a queued message announces to the other (LISTEN/NOTIFY), what happens when the listening
 * connection is cut, and the housekeeping of the shared spool. A fresh database per test.
 */

const LEASE_MS = 10_000;

function envelope(id = newQueueId()): QueueEnvelope {
  return { v: 1, id, from: 'alice@example.test', rcpts: [{ address: 'far@remote.test', local: false }], arrivedAt: Date.now(), size: 5 };
}

interface Replica {
  store: PostgresQueueStore;
  /** how often the store woke its queue */
  wakes: number;
}

let db: Awaited<ReturnType<typeof createPostgresDatabase>>;
let spoolDir: string;
let replicas: Replica[];

async function replica(): Promise<Replica> {
  const r: Replica = { store: new PostgresQueueStore(db.url, new Spool(spoolDir), { leaseMs: LEASE_MS }), wakes: 0 };
  await r.store.open(() => r.wakes++);
  replicas.push(r);
  return r;
}

async function sql<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    return (await c.query<R>(text, values)).rows;
  } finally {
    await c.end();
  }
}

/** Sets a file's mtime `ms` into the past. */
function age(file: string, ms: number): void {
  const t = new Date(Date.now() - ms);
  fs.utimesSync(file, t, t);
}

beforeEach(async () => {
  db = await createPostgresDatabase();
  spoolDir = tempDir('hearth-pgqueue-');
  replicas = [];
});
afterEach(async () => {
  for (const r of replicas) await r.store.close();
  await db.drop();
  fs.rmSync(spoolDir, { recursive: true, force: true });
});

describe('PostgreSQL queue: notifications', () => {
  it('a message queued on one replica wakes the other, not itself; an admin retry wakes both', async () => {
    const a = await replica();
    const b = await replica();
    const env = envelope();
    assert.equal(await a.store.add(env, Buffer.from('hello'), false), true);
    await waitFor(() => b.wakes === 1, 30_000);
    // B claims it; A was not woken by its own announcement (its queue pumps after add() anyway)
    const claimed = await b.store.claim(10);
    assert.deepEqual(claimed.map((c) => c.msg.env.id), [env.id]);
    assert.equal(a.wakes, 0);
    // a row that already exists announces nothing
    assert.equal(await a.store.add(env, Buffer.from('hello'), false), false);
    await b.store.release(claimed[0]!.msg, Date.now() + 60_000);
    assert.equal(await a.store.retry('ALL'), true);
    await waitFor(() => a.wakes === 1 && b.wakes >= 2, 30_000);
    // notifications reach B in order: once it has had this one, it has had any the duplicate sent
    await a.store.add(envelope(), Buffer.from('another'), false);
    await waitFor(() => b.wakes >= 3, 30_000);
    assert.equal(b.wakes, 3);
  });
});

describe('PostgreSQL queue: the listening connection', () => {
  it('cut by the server, it listens again and wakes the queue once for what it may have missed', async () => {
    const a = await replica();
    const b = await replica();
    const listeners = () => sql<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN hearth_smtp_queue'");
    await waitFor(async () => (await listeners()).length === 2, 30_000);
    const [cut] = await sql<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE pid = ANY($1) ORDER BY backend_start DESC LIMIT 1', [(await listeners()).map((l) => l.pid)]);
    await sql('SELECT pg_terminate_backend($1)', [cut!.pid]);
    // the later-started backend is B's: it reconnects and wakes its queue for what it may have missed
    await waitFor(() => b.wakes === 1, 30_000);
    await waitFor(async () => (await listeners()).length === 2, 30_000);
    await a.store.add(envelope(), Buffer.from('after the cut'), false);
    await waitFor(() => b.wakes === 2, 30_000);
    assert.equal(a.wakes, 0);
  });
});

describe('PostgreSQL queue: when to look again', () => {
  it('a released entry wakes its replica at its next attempt; with nothing of its own, a slow poll (leases that ran out)', async () => {
    const a = await replica();
    const before = Date.now();
    assert.deepEqual(await a.store.claim(10), []);
    const poll = a.store.nextWakeAt() - before;
    assert.ok(poll >= 1_000 && poll <= 60_000, `fallback poll ${poll} ms`);
    const env = envelope();
    await a.store.add(env, Buffer.from('x'), false);
    const [c] = await a.store.claim(10);
    const retryAt = Date.now() + 700;
    await a.store.release(c!.msg, retryAt);
    assert.equal(a.store.nextWakeAt(), retryAt);
    // once due and claimed, the replica's own wake-up is spent
    await waitFor(async () => (await a.store.claim(10)).length === 1, 30_000);
    assert.ok(a.store.nextWakeAt() > retryAt);
  });
});

describe('PostgreSQL queue: housekeeping of the shared spool', () => {
  it('old bodies without a row and old tmp/ leftovers go, once, whichever replica sweeps; queued and young files stay', async () => {
    const a = await replica();
    const b = await replica();
    const spool = new Spool(spoolDir);
    const old = ORPHAN_AGE_MS + 60_000;
    // crash between the body and the row: a body never queued
    const neverQueued = envelope();
    await spool.write(neverQueued, Buffer.from('never queued'));
    age(spool.msgPath(neverQueued.id), old);
    // crash between the row's delete and the body's (after delivery)
    const delivered = envelope();
    await a.store.add(delivered, Buffer.from('delivered'), false);
    await sql('DELETE FROM smtp_queue WHERE id = $1', [delivered.id]);
    age(spool.msgPath(delivered.id), old);
    // an old message still queued (a long retry), and a body written a moment ago whose row is on its way
    const queued = envelope();
    await a.store.add(queued, Buffer.from('still queued'), false);
    age(spool.msgPath(queued.id), old);
    const young = envelope();
    await spool.write(young, Buffer.from('row on its way'));
    // tmp/: a write cut short long ago, and one running now
    const staleTmp = path.join(spool.tmpDir, `${newQueueId()}.dead`);
    fs.writeFileSync(staleTmp, 'half a message');
    age(staleTmp, old);
    const runningTmp = path.join(spool.tmpDir, `${newQueueId()}.live`);
    fs.writeFileSync(runningTmp, 'being written');

    const passes = await Promise.all([a.store.housekeep(), b.store.housekeep()]);
    const done = passes.filter((p) => p !== null);
    assert.ok(done.length >= 1, 'at least one replica swept');
    assert.deepEqual(
      done.reduce((sum, p) => ({ bodies: sum.bodies + p.bodies, tmp: sum.tmp + p.tmp }), { bodies: 0, tmp: 0 }),
      { bodies: 2, tmp: 1 },
    );
    assert.deepEqual(fs.readdirSync(spool.msgDir).sort(), [queued.id, young.id].sort());
    assert.deepEqual(fs.readdirSync(spool.tmpDir), [path.basename(runningTmp)]);
    assert.deepEqual(await a.store.housekeep(), { bodies: 0, tmp: 0 });
    // the message still queued is delivered from its body as before
    assert.equal((await b.store.body(queued.id))?.toString(), 'still queued');
  });

  it('while another replica sweeps (holds the lock), a replica skips its pass', async () => {
    const a = await replica();
    const spool = new Spool(spoolDir);
    const orphan = envelope();
    await spool.write(orphan, Buffer.from('orphan'));
    age(spool.msgPath(orphan.id), ORPHAN_AGE_MS + 60_000);
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      // the key housekeeping takes (a transaction-scoped advisory lock, as a sweeping replica holds it)
      await holder.query('SELECT pg_advisory_xact_lock(4242026)');
      assert.equal(await a.store.housekeep(), null);
      assert.ok(fs.existsSync(spool.msgPath(orphan.id)));
      await holder.query('COMMIT');
    } finally {
      await holder.end();
    }
    assert.deepEqual(await a.store.housekeep(), { bodies: 1, tmp: 0 });
    assert.equal(fs.existsSync(spool.msgPath(orphan.id)), false);
  });
});
