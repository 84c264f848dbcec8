import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { Directory } from '@hearth/directory';
import { waitFor } from '@hearth/testkit';
import { redisDir, runningPid, stopRedisInstance, superviseRedisInstances } from '../src/databases/redis-instances.ts';
import { stack, uniqueId, type Stack } from './helpers.ts';

/** Connects, authenticates when a password is given (an explicit AUTH, so a wrong one shows as WRONGPASS), runs fn. */
async function run<T>(port: string, password: string | undefined, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({ host: '127.0.0.1', port: Number(port), lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  r.on('error', () => {});
  try {
    await r.connect();
    if (password !== undefined) await r.auth(password);
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

function listening(port: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: Number(port) });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

const silent = { info: () => {}, warn: () => {} };

describe('redis addon (a redis-server per app)', () => {
  let s: Stack;
  const a = uniqueId('a.b-c');
  const b = uniqueId('bee');
  const open = uniqueId('open');
  let varsA: Record<string, string>;
  let varsB: Record<string, string>;

  before(async () => {
    s = await stack();
    // The supervisor half runs in this process and reads the same settings.
    Object.assign(process.env, s.env);
    varsA = await s.install(a, { redis: {} });
    varsB = await s.install(b, { redis: {} });
  });
  after(async () => {
    for (const id of [a, b, open]) await stopRedisInstance(s.t.dataDir, id);
    await s.t.cleanup();
  });

  it('hands out its own port and password, with the URL apps expect', () => {
    assert.notEqual(varsA.CLOUDRON_REDIS_PORT, varsB.CLOUDRON_REDIS_PORT);
    assert.ok(Number(varsA.CLOUDRON_REDIS_PORT) >= Number(s.env.HEARTH_REDIS_PORT_MIN));
    assert.equal(varsA.CLOUDRON_REDIS_HOST, '127.0.0.1');
    assert.equal(varsA.CLOUDRON_REDIS_URL, `redis://default:${varsA.CLOUDRON_REDIS_PASSWORD}@127.0.0.1:${varsA.CLOUDRON_REDIS_PORT}`);
    assert.ok(varsA.CLOUDRON_REDIS_PASSWORD!.length >= 32);
    const conf = fs.statSync(`${redisDir(s.t.dataDir, a)}/redis.conf`);
    assert.equal(conf.mode & 0o077, 0, 'redis.conf (with the password) is private');
  });

  it("the app's credentials work on its instance and not on another app's", async () => {
    assert.equal(await run(varsA.CLOUDRON_REDIS_PORT!, varsA.CLOUDRON_REDIS_PASSWORD, (r) => r.set('k', 'from-a')), 'OK');
    await run(varsA.CLOUDRON_REDIS_PORT!, varsA.CLOUDRON_REDIS_PASSWORD, (r) => r.flushdb()); // a whole Redis of its own
    await run(varsA.CLOUDRON_REDIS_PORT!, varsA.CLOUDRON_REDIS_PASSWORD, (r) => r.set('k', 'from-a'));
    await assert.rejects(run(varsB.CLOUDRON_REDIS_PORT!, varsA.CLOUDRON_REDIS_PASSWORD, (r) => r.get('k')), /WRONGPASS|invalid/);
    await assert.rejects(run(varsA.CLOUDRON_REDIS_PORT!, undefined, (r) => r.get('k')), /NOAUTH/);
    assert.equal(await run(varsB.CLOUDRON_REDIS_PORT!, varsB.CLOUDRON_REDIS_PASSWORD, (r) => r.get('k')), null);
    // nor can it reach the host's files through CONFIG
    await assert.rejects(run(varsA.CLOUDRON_REDIS_PORT!, varsA.CLOUDRON_REDIS_PASSWORD, (r) => r.config('SET', 'dir', '/tmp')), /protected/);
    const maxmemory = await run(varsA.CLOUDRON_REDIS_PORT!, varsA.CLOUDRON_REDIS_PASSWORD, (r) => r.config('GET', 'maxmemory'));
    assert.deepEqual(maxmemory, ['maxmemory', String(32 * 1024 * 1024)]);
  });

  it("a pidfile naming another process (another app's instance, a stale pid) is not taken for the instance", () => {
    const pidA = runningPid(s.t.dataDir, a)!;
    const fileB = `${redisDir(s.t.dataDir, b)}/redis.pid`;
    const pidB = fs.readFileSync(fileB, 'utf8');
    try {
      for (const other of [pidA, process.pid]) {
        fs.writeFileSync(fileB, `${other}\n`);
        assert.equal(runningPid(s.t.dataDir, b), null, String(other));
      }
    } finally {
      fs.writeFileSync(fileB, pidB);
    }
    assert.equal(runningPid(s.t.dataDir, b), Number(pidB));
  });

  it('noPassword: no password, no PASSWORD variable', async () => {
    const vars = await s.install(open, { redis: { noPassword: true } });
    assert.equal(vars.CLOUDRON_REDIS_PASSWORD, undefined);
    assert.equal(vars.CLOUDRON_REDIS_URL, `redis://127.0.0.1:${vars.CLOUDRON_REDIS_PORT}`);
    assert.equal(await run(vars.CLOUDRON_REDIS_PORT!, undefined, (r) => r.ping()), 'PONG');
  });

  it('data survives a stop and start of the stack; a crashed instance comes back', async () => {
    const directory = await Directory.open(s.t.config, { watch: true });
    let sup: { close: () => Promise<void> } | undefined;
    try {
      const installed = runningPid(s.t.dataDir, a);
      assert.ok(installed, 'install started the instance');
      const first = superviseRedisInstances({ config: s.t.config, directory, logger: silent, intervalMs: 100 });
      await new Promise((res) => setTimeout(res, 300));
      const adopted = runningPid(s.t.dataDir, a);
      await first.close();
      assert.equal(adopted, installed, 'the supervisor adopted the running instance');
      assert.equal(runningPid(s.t.dataDir, a), null);
      assert.equal(await listening(varsA.CLOUDRON_REDIS_PORT!), false, 'stopped with the stack');
      sup = superviseRedisInstances({ config: s.t.config, directory, logger: silent, intervalMs: 100 });
      await waitFor(() => runningPid(s.t.dataDir, a), 10_000);
      await waitFor(() => run(varsA.CLOUDRON_REDIS_PORT!, varsA.CLOUDRON_REDIS_PASSWORD, (r) => r.ping()).catch(() => false), 10_000);
      assert.equal(await run(varsA.CLOUDRON_REDIS_PORT!, varsA.CLOUDRON_REDIS_PASSWORD, (r) => r.get('k')), 'from-a');
      const before = runningPid(s.t.dataDir, a)!;
      process.kill(before, 'SIGKILL');
      const after = await waitFor(() => {
        const p = runningPid(s.t.dataDir, a);
        return p && p !== before ? p : null;
      }, 10_000);
      assert.notEqual(after, before);
      assert.equal(await waitFor(() => run(varsA.CLOUDRON_REDIS_PORT!, varsA.CLOUDRON_REDIS_PASSWORD, (r) => r.get('k')).catch(() => null), 10_000), 'from-a');
      // uninstall while supervised: stopped, wiped, and not brought back
      const r = await s.cli(['app', 'uninstall', b]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(fs.existsSync(redisDir(s.t.dataDir, b)), false);
      assert.equal(await listening(varsB.CLOUDRON_REDIS_PORT!), false);
      await new Promise((res) => setTimeout(res, 1500)); // past the 1 s restart delay
      assert.equal(await listening(varsB.CLOUDRON_REDIS_PORT!), false, 'the supervisor did not restart it');
    } finally {
      await sup?.close();
      await directory.close();
    }
  });

  it('re-install keeps port and password; rotate changes the password in the running instance', async () => {
    const again = await s.install(a, { redis: {} });
    assert.equal(again.CLOUDRON_REDIS_PORT, varsA.CLOUDRON_REDIS_PORT);
    assert.equal(again.CLOUDRON_REDIS_PASSWORD, varsA.CLOUDRON_REDIS_PASSWORD);
    const pid = runningPid(s.t.dataDir, a);
    assert.ok(pid, 'install started it again');
    assert.equal((await s.cli(['app', 'rotate', a])).code, 0);
    const rotated = await s.appEnv(a);
    assert.notEqual(rotated.CLOUDRON_REDIS_PASSWORD, varsA.CLOUDRON_REDIS_PASSWORD);
    assert.equal(runningPid(s.t.dataDir, a), pid, 'no restart needed');
    assert.equal(await run(rotated.CLOUDRON_REDIS_PORT!, rotated.CLOUDRON_REDIS_PASSWORD, (r) => r.get('k')), 'from-a');
    await assert.rejects(run(varsA.CLOUDRON_REDIS_PORT!, varsA.CLOUDRON_REDIS_PASSWORD, (r) => r.get('k')), /WRONGPASS|invalid/);
  });

  it('an update that drops the addon stops the instance and removes its data', async () => {
    const vars = await s.appEnv(open);
    const after = await s.install(open, { localstorage: {} });
    assert.equal(after.CLOUDRON_REDIS_URL, undefined);
    assert.equal(await listening(vars.CLOUDRON_REDIS_PORT!), false);
    assert.equal(fs.existsSync(redisDir(s.t.dataDir, open)), false);
    assert.equal(fs.existsSync(`${s.t.dataDir}/apps/${open}/data`), true, "the app's other data stays");
  });

  it('uninstall stops the instance and removes its data', async () => {
    for (const id of [a, open]) {
      const vars = await s.appEnv(id);
      const r = await s.cli(['app', 'uninstall', id]);
      assert.equal(r.code, 0, r.stderr);
      if (vars.CLOUDRON_REDIS_PORT) assert.equal(await listening(vars.CLOUDRON_REDIS_PORT), false);
      assert.equal(fs.existsSync(redisDir(s.t.dataDir, id)), false);
      assert.equal(fs.existsSync(`${s.t.dataDir}/apps/${id}`), false);
    }
  });

  it('install fails naming redis when redis-server cannot run, leaving nothing', async () => {
    const id = uniqueId('nobin');
    const r = await s.cli(['app', 'install', s.manifest({ redis: {} }), '--id', id, '--domain', 'nobin.example.test'], { HEARTH_REDIS_SERVER_BIN: '/nonexistent/redis-server' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the redis addon failed: cannot run \/nonexistent\/redis-server \(HEARTH_REDIS_SERVER_BIN\)/);
    assert.equal(fs.existsSync(`${s.t.dataDir}/apps/${id}`), false);
    assert.equal((await s.cli(['app', 'show', id])).code, 1);
  });
});
