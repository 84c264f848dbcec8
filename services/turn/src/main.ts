import { ConfigError } from '@hearth/config';
import { runDaemon } from '@hearth/daemon';
import { loadTls } from '@hearth/tls';
import { startTurn } from './server.ts';
import { loadTurnSettings, type TurnSettings } from './settings.ts';

let settings: TurnSettings;
try {
  settings = loadTurnSettings();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`hearth turn: ${err.message}\n`);
  process.exit(1);
}

await runDaemon('turn', async ({ config, directory, logger }) => startTurn({ config, directory, logger, settings, tls: await loadTls(config) }));
