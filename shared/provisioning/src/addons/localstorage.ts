import fs from 'node:fs';
import { z } from 'zod';
import { appDataDir, removeAppFolder } from '@hearth/runtime';
import type { Addon } from '../addon.ts';

/** A writable folder of the app's own; no variables (the seed's /app/data). */
export const localstorage: Addon = {
  name: 'localstorage',
  optionsSchema: z
    .object({ ftp: z.object({ uid: z.number().int().min(0), uname: z.string().min(1).max(64) }).strict().optional() })
    .strict(),
  async provision(ctx) {
    fs.mkdirSync(appDataDir(ctx.config.dataDir, ctx.app.id), { recursive: true, mode: 0o750 });
    return {};
  },
  async deprovision(ctx) {
    // Only the data folder: other addons (redis) keep their own files beside it.
    removeAppFolder(appDataDir(ctx.config.dataDir, ctx.app.id));
  },
  env() {
    return [];
  },
};
