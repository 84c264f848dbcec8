import cluster from 'node:cluster';
import { isMainThread } from 'node:worker_threads';
import { runDaemon, settingsOrExit } from '@hearth/daemon';
import { loadTls } from '@hearth/tls';
import { startTurnCluster, workerLink } from './cluster.ts';
import { startTurn } from './server.ts';
import { loadTurnSettings } from './settings.ts';

const settings = settingsOrExit('turn', loadTurnSettings);

if (cluster.isWorker) {
  // one of HEARTH_TURN_WORKERS relay processes (cluster.ts)
  await runDaemon('turn', async ({ config, directory, logger }) =>
    startTurn({ config, directory, logger, settings, tls: await loadTls(config), worker: workerLink(Boolean(config.redisUrl)) }),
  );
} else if (settings.workers > 1 && isMainThread) {
  // A daemon run as a thread of the supervisor (HEARTH_SUPERVISOR_MODE=threads) stays one process: that mode is for a small footprint.
  await runDaemon('turn', (ctx) => startTurnCluster(ctx, settings));
} else {
  await runDaemon('turn', async ({ config, directory, logger }) => startTurn({ config, directory, logger, settings, tls: await loadTls(config) }));
}
