import { z } from 'zod';
import { appCertsDir, ensureAppCert, removeAppFolder } from '@hearth/runtime';
import type { Addon } from '../addon.ts';

/** The app's certificate and key, read-only at /etc/certs in its container: self-signed for its domain until `hearth app cert` installs one. */
export const tls: Addon = {
  name: 'tls',
  optionsSchema: z.object({}).strict(),
  async provision(ctx) {
    await ensureAppCert(ctx.config.dataDir, ctx.app.id, ctx.app.domain);
    return {};
  },
  async deprovision(ctx) {
    removeAppFolder(appCertsDir(ctx.config.dataDir, ctx.app.id));
  },
  env() {
    return [];
  },
};
