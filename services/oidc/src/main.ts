import cluster, { type Worker } from 'node:cluster';
import { runDaemon, settingsOrExit } from '@hearth/daemon';
import { oidcEndpoints } from './endpoints.ts';
import { loadOrCreateKeys } from './keys.ts';
import { startOidc } from './server.ts';
import { loadOidcSettings } from './settings.ts';

const settings = settingsOrExit('oidc', loadOidcSettings);

if (settings.workers > 1 && cluster.isPrimary) {
  // HEARTH_OIDC_WORKERS > 1: this process only supervises; each worker is a full provider on the
  // shared port. Sessions, codes, tokens and keys live in the store (or Redis), so they act as one.
  await runDaemon('oidc', async ({ config, directory, logger }) => {
    await loadOrCreateKeys(directory.store);
    let stopping = false;
    const fork = (): Promise<Worker> =>
      new Promise((resolve, reject) => {
        const w = cluster.fork();
        w.once('listening', () => resolve(w));
        w.once('exit', (code) => reject(new Error(`an oidc worker exited with ${code} before listening`)));
      });
    await Promise.all(Array.from({ length: settings.workers }, fork));
    cluster.on('exit', (w, code, signal) => {
      if (stopping) return;
      logger.warn({ pid: w.process.pid, code, signal }, 'oidc worker died; starting another');
      fork().catch((err) => logger.error({ err }, 'could not restart an oidc worker'));
    });
    const ep = oidcEndpoints(config.oidcIssuer);
    return {
      endpoints: [`${ep.issuer} (${settings.workers} workers on http://${config.listen}:${config.ports.oidc})`, ep.discovery],
      close: async () => {
        stopping = true;
        await Promise.all(
          Object.values(cluster.workers ?? {}).map(
            (w) =>
              new Promise<void>((resolve) => {
                if (!w || w.isDead()) return resolve();
                w.once('exit', () => resolve());
                w.process.kill('SIGTERM');
              }),
          ),
        );
      },
    };
  });
} else {
  await runDaemon('oidc', (ctx) => startOidc(ctx));
}
