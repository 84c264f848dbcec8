import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { generateSecret } from '@hearth/directory';
import { ProvisionError, type Addon, type AddonContext, type Credentials } from '../addon.ts';
import { addonFailure } from '../databases/errors.ts';
import { instanceOf, reconfigureRedisInstance, redisDir, startRedisInstance, stopRedisInstance } from '../databases/redis-instances.ts';
import { databaseSettings } from '../databases/settings.ts';

export const redisOptionsSchema = z.object({ noPassword: z.boolean().optional() }).strict();

function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** The lowest port of HEARTH_REDIS_PORT_MIN..MAX no other app holds and nothing listens on. */
async function allocatePort(ctx: AddonContext): Promise<number> {
  const { redisPortMin, redisPortMax } = databaseSettings();
  const held = new Set(ctx.directory.apps().flatMap((a) => (a.id !== ctx.app.id && a.credentials.redis?.port ? [Number(a.credentials.redis.port)] : [])));
  const host = ctx.config.listen;
  for (let port = redisPortMin; port <= redisPortMax; port++) {
    if (!held.has(port) && (await canListen(host, port))) return port;
  }
  throw new ProvisionError(`the redis addon: no free port in ${redisPortMin}-${redisPortMax} (HEARTH_REDIS_PORT_MIN/MAX)`);
}

function removeData(ctx: AddonContext): void {
  const dir = redisDir(ctx.config.dataDir, ctx.app.id);
  fs.rmSync(dir, { recursive: true, force: true });
  // The app's folder goes too when nothing else (localstorage) lives there.
  try {
    fs.rmdirSync(path.dirname(dir));
  } catch {
    // not empty, or gone already
  }
}

/**
 * The app's own redis-server (see databases/redis-instances.ts): started here so the app can
 * connect right away, kept running by the supervisor, stopped and wiped on uninstall.
 */
export const redisAddon: Addon = {
  name: 'redis',
  optionsSchema: redisOptionsSchema,
  async provision(ctx, existing) {
    const port = existing?.port ? Number(existing.port) : await allocatePort(ctx);
    const password = ctx.options.noPassword ? undefined : existing?.password || generateSecret();
    const creds: Credentials = { port: String(port) };
    if (password) creds.password = password;
    const instance = instanceOf(ctx.app.id, creds);
    // A first install starts from nothing, even if an earlier app with this id left data behind.
    if (!existing) {
      await stopRedisInstance(ctx.config.dataDir, ctx.app.id);
      fs.rmSync(redisDir(ctx.config.dataDir, ctx.app.id), { recursive: true, force: true });
    }
    try {
      await reconfigureRedisInstance(ctx.config, instance);
      await startRedisInstance(ctx.config, instance);
    } catch (err) {
      if (!existing) {
        await stopRedisInstance(ctx.config.dataDir, ctx.app.id).catch(() => {});
        removeData(ctx);
      }
      throw addonFailure('redis', err);
    }
    return creds;
  },
  async rotate(ctx, existing) {
    if (!existing.password) return existing;
    const next = { ...existing, password: generateSecret() };
    await reconfigureRedisInstance(ctx.config, instanceOf(ctx.app.id, next)).catch((err: unknown) => {
      throw addonFailure('redis', err);
    });
    return next;
  },
  async deprovision(ctx) {
    await stopRedisInstance(ctx.config.dataDir, ctx.app.id);
    removeData(ctx);
  },
  env({ config }, c) {
    const host = config.hostname;
    const url = c.password ? `redis://default:${encodeURIComponent(c.password)}@${host}:${c.port}` : `redis://${host}:${c.port}`;
    const vars: [string, string][] = [
      ['CLOUDRON_REDIS_URL', url],
      ['CLOUDRON_REDIS_HOST', host],
      ['CLOUDRON_REDIS_PORT', c.port!],
    ];
    if (c.password) vars.push(['CLOUDRON_REDIS_PASSWORD', c.password]);
    return vars;
  },
};
