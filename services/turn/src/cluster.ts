import cluster, { type Worker } from 'node:cluster';
import type { DaemonContext, RunningService } from '@hearth/daemon';
import { LocalQuota, type AllocationQuota } from './quota.ts';
import { bindListeners, listenAddress, type WorkerLink } from './server.ts';
import type { TurnSettings } from './settings.ts';

/**
 * HEARTH_TURN_WORKERS > 1: relay processes under node:cluster. The primary holds the UDP listener
 * and routes each client (address and port) to one worker by a hash, so a client's requests,
 * nonces and allocation all live in that worker; a worker's socket connected to its client then
 * takes that client's datagrams straight from the kernel, and its relay sockets take the peers',
 * so the relay itself never passes through the primary. TCP and TLS connections are shared out by
 * node:cluster and served whole by the worker that accepts them. The primary also counts what
 * must hold over every worker: the total allocations and, without Redis, each user's.
 *
 * Node 20's dgram has no SO_REUSEPORT, which would let the kernel spread clients over the workers'
 * own listeners; the primary's routing stands in for it and carries only what reaches the
 * listener: requests before an allocation's connected socket is open, and Binding requests.
 */

/** what a worker learns at fork, beside the daemon's own environment */
const INDEX_ENV = 'HEARTH_TURN_WORKER_INDEX';
const PORT_ENV = 'HEARTH_TURN_WORKER_PORT';
/** a worker that died is started again after this long */
const RESTART_DELAY_MS = 1000;

type FromPrimary =
  | { t: 'dgram'; buf: Uint8Array; address: string; port: number }
  | { t: 'answer'; id: number; ok: boolean }
  /** another worker claims the reservation behind `token` (answered with 'yielded') */
  | { t: 'claim'; claim: number; token: Uint8Array }
  /** the port of a reservation claimed with request `id`, or null */
  | { t: 'port'; id: number; port: number | null };
type FromWorker =
  | { t: 'ready'; tlsPort: number | null }
  | { t: 'send'; buf: Uint8Array; address: string; port: number }
  | { t: 'reroute'; buf: Uint8Array; address: string; port: number }
  | { t: 'claim'; id: number; token: Uint8Array }
  | { t: 'yielded'; claim: number; port: number | null }
  | { t: 'take'; id: number }
  | { t: 'give' }
  | { t: 'acquire'; id: number; userKey: string; slot: string; lifetime: number }
  | { t: 'release'; userKey: string; slot: string };

/** IPC hands a Buffer over as a Uint8Array (advanced serialization). */
const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/** Which worker a client belongs to: FNV-1a over its address and port. */
export function workerFor(address: string, port: number, workers: number): number {
  let h = 0x811c9dc5 ^ port;
  for (let i = 0; i < address.length; i++) h = Math.imul(h ^ address.charCodeAt(i), 0x01000193);
  return (h >>> 0) % workers;
}

interface WorkerState {
  worker: Worker;
  ready: boolean;
  /** allocations it holds against the total */
  held: number;
  /** its slots in the user quota: slot → user */
  slots: Map<string, string>;
}

/** The primary: binds the listeners' port, forks the workers and routes between them. */
export async function startTurnCluster(ctx: DaemonContext, settings: TurnSettings): Promise<RunningService> {
  const { config, logger } = ctx;
  const n = settings.workers;
  const host = await listenAddress(config);
  // The TCP listener only proves the port free for TCP too: the workers listen there through node:cluster.
  const { udp, tcp } = await bindListeners(config.ports.turn, host, (s) => s.destroy());
  const port = udp.address().port;
  await new Promise<void>((r) => tcp.close(() => r()));
  cluster.setupPrimary({ serialization: 'advanced' });

  const workers: (WorkerState | null)[] = Array.from({ length: n }, () => null);
  const userQuota = config.redisUrl ? null : new LocalQuota(settings.maxAllocationsPerUser);
  let total = 0;
  /** reservation claims passed on to the worker that holds the port: claim number → the asking worker and its request */
  const claims = new Map<number, { w: WorkerState; id: number }>();
  let nextClaim = 1;
  let stopping = false;
  let tlsPort: number | null = null;

  const route = (buf: Buffer, address: string, port: number): void => {
    const w = workers[workerFor(address, port, n)];
    // a worker starting again: the client retransmits
    if (w?.ready && w.worker.isConnected()) w.worker.send({ t: 'dgram', buf, address, port } satisfies FromPrimary);
  };
  udp.on('message', (buf, rinfo) => route(buf, rinfo.address, rinfo.port));
  udp.on('error', (err) => logger.warn({ err }, 'udp socket error'));

  const answer = (w: WorkerState, id: number, ok: boolean): void => {
    if (w.worker.isConnected()) w.worker.send({ t: 'answer', id, ok } satisfies FromPrimary);
  };
  const onMessage = async (w: WorkerState, m: FromWorker): Promise<void> => {
    switch (m.t) {
      case 'send':
        return udp.send(asBuffer(m.buf), m.port, m.address);
      case 'reroute':
        return route(asBuffer(m.buf), m.address, m.port);
      case 'claim': {
        const holder = workers[m.token[0]! % n];
        if (!holder?.ready || holder === w || !holder.worker.isConnected()) return void w.worker.send({ t: 'port', id: m.id, port: null } satisfies FromPrimary);
        const claim = nextClaim++;
        claims.set(claim, { w, id: m.id });
        holder.worker.send({ t: 'claim', claim, token: m.token } satisfies FromPrimary);
        return;
      }
      case 'yielded': {
        const asked = claims.get(m.claim);
        claims.delete(m.claim);
        if (asked?.w.worker.isConnected()) asked.w.worker.send({ t: 'port', id: asked.id, port: m.port } satisfies FromPrimary);
        return;
      }
      case 'take': {
        const ok = total < settings.maxAllocations;
        if (ok) {
          total++;
          w.held++;
        }
        return answer(w, m.id, ok);
      }
      case 'give':
        if (w.held > 0) {
          w.held--;
          total--;
        }
        return;
      case 'acquire': {
        const ok = userQuota ? await userQuota.acquire(m.userKey, m.slot) : true;
        if (ok) w.slots.set(m.slot, m.userKey);
        return answer(w, m.id, ok);
      }
      case 'release':
        w.slots.delete(m.slot);
        userQuota?.release(m.userKey, m.slot);
        return;
    }
  };

  /** What a dead worker held is free again. */
  const forget = (w: WorkerState, index: number): void => {
    total -= w.held;
    for (const [slot, user] of w.slots) userQuota?.release(user, slot);
    workers[index] = null;
  };

  const fork = (index: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const worker = cluster.fork({ [INDEX_ENV]: String(index), [PORT_ENV]: String(port) });
      const w: WorkerState = { worker, ready: false, held: 0, slots: new Map() };
      workers[index] = w;
      worker.on('message', (m: FromWorker) => {
        if (m?.t === 'ready') {
          w.ready = true;
          tlsPort = m.tlsPort;
          resolve();
        } else if (m && typeof m.t === 'string') onMessage(w, m).catch((err: unknown) => logger.warn({ err, worker: index }, 'failed to handle a turn worker message'));
      });
      worker.once('exit', (code, signal) => {
        forget(w, index);
        if (!w.ready) return reject(new Error(`turn worker ${index} exited with ${code ?? signal} before it was ready`));
        if (stopping) return;
        logger.warn({ worker: index, pid: worker.process.pid, code, signal }, 'turn worker died; its allocations are gone; starting another');
        setTimeout(() => {
          if (!stopping) fork(index).catch((err) => logger.error({ err }, 'could not restart a turn worker'));
        }, RESTART_DELAY_MS).unref();
      });
    });
  try {
    await Promise.all(workers.map((_, i) => fork(i)));
  } catch (err) {
    stopping = true;
    for (const w of workers) w?.worker.process.kill('SIGKILL');
    udp.close();
    throw err;
  }
  const shown = host.includes(':') ? `[${host}]` : host;
  const endpoints = [`stun:${shown}:${port}`, `turn:${shown}:${port}?transport=udp`, `turn:${shown}:${port}?transport=tcp`];
  if (tlsPort !== null) endpoints.push(`turns:${shown}:${tlsPort}?transport=tcp`);
  logger.info({ workers: n, port }, 'turn relay processes ready');
  return {
    endpoints: [...endpoints, `(${n} relay processes)`],
    close: async () => {
      stopping = true;
      await Promise.all(
        workers.map(
          (w) =>
            new Promise<void>((resolve) => {
              if (!w || w.worker.isDead()) return resolve();
              w.worker.once('exit', () => resolve());
              w.worker.process.kill('SIGTERM');
            }),
        ),
      );
      await new Promise<void>((r) => udp.close(() => r()));
    },
  };
}

/** In a worker: its side of the link to the primary. `redis`: the user quota is counted in Redis, not by the primary. */
export function workerLink(redis: boolean): WorkerLink {
  const index = Number(process.env[INDEX_ENV]);
  const port = Number(process.env[PORT_ENV]);
  if (!Number.isInteger(index) || !Number.isInteger(port) || port <= 0) throw new Error(`a turn worker needs ${INDEX_ENV} and ${PORT_ENV} from the primary`);
  let deliver: ((buf: Buffer, address: string, port: number) => void) | null = null;
  let yieldReservation: ((token: Buffer) => Promise<number | null>) | null = null;
  const waiting = new Map<number, (ok: boolean) => void>();
  const claiming = new Map<number, (port: number | null) => void>();
  let nextId = 1;
  const post = (m: FromWorker): void => {
    if (process.connected) process.send!(m);
  };
  const ask = (m: { t: 'take' } | { t: 'acquire'; userKey: string; slot: string; lifetime: number }): Promise<boolean> =>
    new Promise((resolve) => {
      const id = nextId++;
      waiting.set(id, resolve);
      post({ ...m, id });
    });
  process.on('message', (m: FromPrimary) => {
    if (m?.t === 'dgram') deliver?.(asBuffer(m.buf), m.address, m.port);
    else if (m?.t === 'answer') {
      waiting.get(m.id)?.(m.ok);
      waiting.delete(m.id);
    } else if (m?.t === 'port') {
      claiming.get(m.id)?.(m.port);
      claiming.delete(m.id);
    } else if (m?.t === 'claim') {
      const answer = yieldReservation ? yieldReservation(asBuffer(m.token)) : Promise.resolve(null);
      void answer.catch(() => null).then((port) => post({ t: 'yielded', claim: m.claim, port }));
    }
  });
  const quota: AllocationQuota = {
    acquire: (userKey, slot, lifetime) => ask({ t: 'acquire', userKey, slot, lifetime }),
    extend: () => {},
    release: (userKey, slot) => post({ t: 'release', userKey, slot }),
    close: () => {},
  };
  return {
    index,
    port,
    out: { send: (buf, port, address) => post({ t: 'send', buf, address, port }) },
    onDatagram: (handler) => {
      deliver = handler;
    },
    reroute: (buf, address, port) => post({ t: 'reroute', buf, address, port }),
    claimReservation: (token) =>
      new Promise((resolve) => {
        const id = nextId++;
        claiming.set(id, resolve);
        post({ t: 'claim', id, token });
      }),
    onClaim: (handler) => {
      yieldReservation = handler;
    },
    quota: redis ? null : quota,
    capacity: { take: () => ask({ t: 'take' }), give: () => post({ t: 'give' }) },
    ready: (tlsPort) => post({ t: 'ready', tlsPort }),
  };
}
