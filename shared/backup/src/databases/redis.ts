import fs from 'node:fs';
import path from 'node:path';
import type { HearthConfig } from '@hearth/config';
import { instanceOf, redisDir, runningPid, stopRedisInstance, withRedis } from '@hearth/provisioning';
import { BackupError } from '../errors.ts';
import { pathSwap, type SwapStep } from '../swap.ts';
import { linkFile, mirrorTree } from '../tree.ts';

/**
 * An app's own redis-server. A running instance writes a fresh RDB (BGSAVE) and that file,
 * replaced by Redis only through rename, is linked into the snapshot; a stopped one is
 * taken as its files are.
 */
export async function stageRedis(config: HearthConfig, appId: string, creds: Record<string, string>, dst: string): Promise<void> {
  const dir = redisDir(config.dataDir, appId);
  fs.mkdirSync(dst, { recursive: true, mode: 0o700 });
  if (!runningPid(config.dataDir, appId)) {
    await mirrorTree(path.join(dir, 'appendonlydir'), path.join(dst, 'appendonlydir'), { copy: true });
    if (fs.existsSync(path.join(dir, 'dump.rdb'))) linkFile(path.join(dir, 'dump.rdb'), path.join(dst, 'dump.rdb'));
    return;
  }
  await withRedis(config, instanceOf(appId, creds), async (r) => {
    const before = Number(await r.lastsave());
    // SCHEDULE: waits for an AOF rewrite in progress instead of failing
    await r.call('BGSAVE', 'SCHEDULE');
    const deadline = Date.now() + 10 * 60_000;
    for (;;) {
      const info = await r.info('persistence');
      const saved = Number(await r.lastsave());
      if (!/rdb_bgsave_in_progress:1/.test(info) && saved > before) {
        if (!/rdb_last_bgsave_status:ok/.test(info)) throw new BackupError(`the redis instance of app ${appId} could not save its data (see its redis.log)`);
        break;
      }
      if (Date.now() > deadline) throw new BackupError(`the redis instance of app ${appId} did not finish saving in 10 minutes`);
      // LASTSAVE has one-second resolution
      await new Promise((res) => setTimeout(res, 200));
    }
  });
  linkFile(path.join(dir, 'dump.rdb'), path.join(dst, 'dump.rdb'));
}

/**
 * A redis directory holding the snapshot's data: an RDB becomes the base of a fresh
 * multi-part AOF (instances run with appendonly yes, and Redis 7 ignores dump.rdb then).
 * The swap stops the instance and moves the directory in; provisioning starts it again.
 */
export function prepareRedisRestore(config: HearthConfig, appId: string, staged: string, workDir: string): SwapStep {
  const target = redisDir(config.dataDir, appId);
  const ready = path.join(workDir, `redis-${appId}`);
  fs.mkdirSync(ready, { recursive: true, mode: 0o700 });
  if (fs.existsSync(path.join(staged, 'appendonlydir'))) {
    fs.renameSync(path.join(staged, 'appendonlydir'), path.join(ready, 'appendonlydir'));
  } else if (fs.existsSync(path.join(staged, 'dump.rdb'))) {
    const aof = path.join(ready, 'appendonlydir');
    fs.mkdirSync(aof, { mode: 0o700 });
    fs.copyFileSync(path.join(staged, 'dump.rdb'), path.join(aof, 'appendonly.aof.1.base.rdb'));
    fs.writeFileSync(path.join(aof, 'appendonly.aof.manifest'), 'file appendonly.aof.1.base.rdb seq 1 type b\n', { mode: 0o600 });
  }
  if (fs.existsSync(path.join(staged, 'dump.rdb'))) fs.renameSync(path.join(staged, 'dump.rdb'), path.join(ready, 'dump.rdb'));
  const swap = pathSwap(`redis data of app ${appId}`, target, ready);
  return {
    ...swap,
    async commit() {
      await stopRedisInstance(config.dataDir, appId);
      await swap.commit();
    },
    async rollback() {
      await stopRedisInstance(config.dataDir, appId);
      await swap.rollback();
    },
  };
}
