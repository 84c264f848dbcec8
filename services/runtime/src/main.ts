import { runDaemon, settingsOrExit } from '@hearth/daemon';
import { EngineError, runtimeSettings } from '@hearth/runtime';
import { startRuntime } from './daemon.ts';

const settings = settingsOrExit('runtime', () => runtimeSettings());

await runDaemon('runtime', async ({ config, directory, logger }) => {
  try {
    return await startRuntime({ config, directory, logger, settings });
  } catch (err) {
    if (!(err instanceof EngineError)) throw err;
    logger.fatal(err.message);
    process.exit(1);
  }
});
