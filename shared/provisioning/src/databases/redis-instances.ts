import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { HearthConfig } from '@hearth/config';
import type { Directory } from '@hearth/directory';
import { databaseSettings } from './settings.ts';

/**
 * One redis-server per app (apps expect a whole Redis: FLUSHDB, no key prefixes). Instances
 * run detached with a pidfile in their directory, so the CLI can start one at install time and
 * the supervisor adopts it; an instance runs when its pidfile's process is a redis-server
 * working in the app's redis directory.
 */

export interface RedisInstance {
  appId: string;
  port: number;
  /** undefined: noPassword */
  password: string | undefined;
}

interface MinimalLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export function redisDir(dataDir: string, appId: string): string {
  return path.join(dataDir, 'apps', appId, 'redis');
}

/** A redis.conf string argument (paths may hold spaces). */
function quoted(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function configText(config: HearthConfig, dir: string, i: RedisInstance): string {
  const lines = [
    `port ${i.port}`,
    // HEARTH_LISTEN, where the daemons listen too
    `bind ${config.listen}`,
    `dir ${quoted(dir)}`,
    'daemonize no',
    `logfile ${quoted(path.join(dir, 'redis.log'))}`,
    // Persistent as the seed promises: AOF (fsync every second) plus RDB snapshots.
    'appendonly yes',
    'appendfsync everysec',
    'save 900 1 300 10 60 10000',
    `maxmemory ${databaseSettings().redisMaxmemory}`,
    // Apps use Redis as a store and queue: refuse writes when full rather than drop keys silently.
    'maxmemory-policy noeviction',
    // An app must not reach the host through its Redis (CONFIG SET dir, MODULE LOAD, DEBUG).
    'enable-protected-configs no',
    'enable-debug-command no',
    'enable-module-command no',
  ];
  if (i.password !== undefined) lines.push(`requirepass ${i.password}`);
  return lines.join('\n') + '\n';
}

/** Writes the instance's redis.conf (0600: it holds the password). */
export function writeRedisConfig(config: HearthConfig, i: RedisInstance): string {
  const dir = redisDir(config.dataDir, i.appId);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'redis.conf');
  fs.writeFileSync(`${file}.tmp`, configText(config, dir, i), { mode: 0o600 });
  fs.renameSync(`${file}.tmp`, file);
  return file;
}

/** The password the instance was last configured with (its redis.conf), if any. */
function configuredPassword(dataDir: string, appId: string): string | undefined {
  try {
    const conf = fs.readFileSync(path.join(redisDir(dataDir, appId), 'redis.conf'), 'utf8');
    return /^requirepass (.*)$/m.exec(conf)?.[1];
  } catch {
    return undefined;
  }
}

/**
 * Brings a running instance to the given password and memory limit without a restart
 * (authenticating with the password it has now), then writes redis.conf for the next start.
 */
export async function reconfigureRedisInstance(config: HearthConfig, i: RedisInstance): Promise<void> {
  if (runningPid(config.dataDir, i.appId)) {
    const current = { ...i, password: configuredPassword(config.dataDir, i.appId) };
    await withRedis(config, current, (r) => r.config('SET', 'requirepass', i.password ?? '', 'maxmemory', databaseSettings().redisMaxmemory));
  }
  writeRedisConfig(config, i);
}

/**
 * Whether pid is the redis-server working in dir. Instances run with dir as their working
 * directory, which tells them apart from any other process (another app's instance, or a pid
 * from another PID namespace that shares the data volume); zombies have none.
 */
function isInstanceProcess(pid: number, dir: string): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (process.platform !== 'linux') return true;
  try {
    const cwd = fs.readlinkSync(`/proc/${pid}/cwd`).replace(/ \(deleted\)$/, '');
    if (cwd !== dir && cwd !== realpathOr(dir)) return false;
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('redis');
  } catch {
    return false;
  }
}

function realpathOr(dir: string): string {
  try {
    return fs.realpathSync(dir);
  } catch {
    return dir;
  }
}

/** The pid of the app's running instance, or null. */
export function runningPid(dataDir: string, appId: string): number | null {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(path.join(redisDir(dataDir, appId), 'redis.pid'), 'utf8').trim());
  } catch {
    return null;
  }
  return Number.isInteger(pid) && pid > 0 && isInstanceProcess(pid, redisDir(dataDir, appId)) ? pid : null;
}

function connectHost(config: HearthConfig): string {
  return config.listen === '0.0.0.0' ? '127.0.0.1' : config.listen === '::' ? '::1' : config.listen;
}

/** A short-lived client for one command; never retries, never queues. */
export async function withRedis<T>(config: HearthConfig, i: RedisInstance, fn: (r: Redis) => Promise<T>): Promise<T> {
  const { Redis } = await import('ioredis'); // loaded when an app has a Redis, not by every CLI call
  const r = new Redis({
    host: connectHost(config),
    port: i.port,
    password: i.password,
    lazyConnect: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  r.on('error', () => {});
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

async function serverPid(config: HearthConfig, i: RedisInstance): Promise<number | null> {
  try {
    const info = await withRedis(config, i, (r) => r.info('server'));
    return Number(/process_id:(\d+)/.exec(info)?.[1] ?? 0) || null;
  } catch {
    return null;
  }
}

function logTail(dir: string): string {
  try {
    const lines = fs.readFileSync(path.join(dir, 'redis.log'), 'utf8').trim().split('\n');
    return lines.slice(-3).join(' | ');
  } catch {
    return 'no log';
  }
}

/**
 * Starts the app's instance unless it runs already, and resolves once that very process
 * answers on its port (INFO's process_id, so another server on the port does not count).
 */
export async function startRedisInstance(config: HearthConfig, i: RedisInstance, opts: { createDir?: boolean; timeoutMs?: number } = {}): Promise<number> {
  const running = runningPid(config.dataDir, i.appId);
  if (running) return running;
  // Only install creates the directory: an instance whose data is gone (uninstalled, or wiped) is not brought back empty.
  if (opts.createDir === false && !fs.existsSync(redisDir(config.dataDir, i.appId))) {
    throw new Error(`the data directory ${redisDir(config.dataDir, i.appId)} is missing; run hearth app install again`);
  }
  const file = writeRedisConfig(config, i);
  const dir = path.dirname(file);
  const child = spawn(databaseSettings().redisServerBin, [file], { cwd: dir, detached: true, stdio: 'ignore' });
  const spawned = await new Promise<number>((resolve, reject) => {
    child.once('spawn', () => resolve(child.pid!));
    child.once('error', (err) => reject(new Error(`cannot run ${databaseSettings().redisServerBin} (HEARTH_REDIS_SERVER_BIN): ${err.message}`)));
  });
  let exited = false;
  child.once('exit', () => (exited = true));
  child.unref();
  fs.writeFileSync(path.join(dir, 'redis.pid'), `${spawned}\n`);
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  while (!exited && Date.now() < deadline) {
    if ((await serverPid(config, i)) === spawned) return spawned;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!exited) process.kill(spawned, 'SIGKILL');
  fs.rmSync(path.join(dir, 'redis.pid'), { force: true });
  throw new Error(`redis-server for app ${i.appId} on port ${i.port} did not start: ${logTail(dir)}`);
}

/** SIGTERM (Redis then flushes its AOF and saves), SIGKILL after graceMs. */
export async function stopRedisInstance(dataDir: string, appId: string, opts: { pid?: number; graceMs?: number } = {}): Promise<void> {
  const graceMs = opts.graceMs ?? 15_000;
  const dir = redisDir(dataDir, appId);
  const pid = runningPid(dataDir, appId) ?? (opts.pid && isInstanceProcess(opts.pid, dir) ? opts.pid : null);
  if (pid) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // exited meanwhile
    }
    const deadline = Date.now() + graceMs;
    while (isInstanceProcess(pid, dir)) {
      if (Date.now() > deadline) {
        process.kill(pid, 'SIGKILL');
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  fs.rmSync(path.join(dir, 'redis.pid'), { force: true });
}

/** 1 s, doubling per failure in a row, at most a minute. */
function backoff(failures: number): number {
  return Math.min(60_000, 1000 * 2 ** (failures - 1));
}

export function instanceOf(appId: string, creds: Record<string, string>): RedisInstance {
  return { appId, port: Number(creds.port), password: creds.password };
}

/**
 * Keeps one redis-server per app that has the redis addon, in step with the directory:
 * starts missing ones (at start and on every change; a crashed one after 1 s, the delay
 * doubling up to a minute while it keeps failing), stops those of apps that lost
 * the addon or were uninstalled. close() stops every instance (they persist their data).
 * The supervisor runs this next to the daemons.
 */
export function superviseRedisInstances(opts: { config: HearthConfig; directory: Directory; logger: MinimalLogger; intervalMs?: number }): { close: () => Promise<void> } {
  const { config, directory, logger } = opts;
  // pid: the instance last seen running (kept to stop it even after its pidfile is gone)
  const state = new Map<string, { failures: number; nextAttempt: number; startedAt: number; starting: boolean; pid: number | null }>();
  const known = new Set<string>();
  const inFlight = new Set<Promise<unknown>>();
  let closed = false;

  const track = (p: Promise<unknown>): void => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };

  const wanted = (): Map<string, RedisInstance> =>
    new Map(directory.apps().flatMap((a) => (a.credentials.redis?.port ? [[a.id, instanceOf(a.id, a.credentials.redis)] as const] : [])));

  const tick = (): void => {
    if (closed) return;
    const now = Date.now();
    const apps = wanted();
    for (const [id, instance] of apps) {
      known.add(id);
      const s = state.get(id) ?? { failures: 0, nextAttempt: 0, startedAt: 0, starting: false, pid: null };
      state.set(id, s);
      if (s.starting) continue;
      const pid = runningPid(config.dataDir, id);
      if (pid) {
        s.pid = pid;
        if (s.failures && now - s.startedAt > 60_000) s.failures = 0;
        continue;
      }
      if (s.pid) {
        // Gone since the last look: a crash, or an uninstall this view has not caught up with yet
        // (changes arrive within ~250 ms). Either way, look again after the backoff.
        logger.warn({ app: id, port: instance.port, pid: s.pid }, 'redis instance exited');
        s.pid = null;
        s.failures++;
        s.nextAttempt = now + backoff(s.failures);
      }
      if (now < s.nextAttempt) continue;
      s.starting = true;
      track(
        startRedisInstance(config, instance, { createDir: false })
          .then((started) => {
            s.startedAt = Date.now();
            s.pid = started;
            logger.info({ app: id, port: instance.port, pid: started }, 'redis instance started');
          })
          .catch((err: Error) => {
            s.failures++;
            const delay = backoff(s.failures);
            s.nextAttempt = Date.now() + delay;
            logger.warn({ app: id, port: instance.port, err: err.message, retryInMs: delay }, 'redis instance failed to start');
          })
          .finally(() => (s.starting = false)),
      );
    }
    for (const id of known) {
      if (apps.has(id)) continue;
      const pid = state.get(id)?.pid ?? undefined;
      known.delete(id);
      state.delete(id);
      track(stopRedisInstance(config.dataDir, id, { pid }).then(() => logger.info({ app: id }, 'redis instance stopped (app removed)')));
    }
  };

  tick();
  const unsubscribe = directory.onChange(tick);
  const timer = setInterval(tick, opts.intervalMs ?? 1000);
  return {
    close: async () => {
      closed = true;
      clearInterval(timer);
      unsubscribe();
      await Promise.allSettled([...inFlight]);
      await Promise.allSettled([...state].map(([id, s]) => stopRedisInstance(config.dataDir, id, { pid: s.pid ?? undefined })));
    },
  };
}
