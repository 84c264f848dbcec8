import { runDaemon, settingsOrExit } from '@hearth/daemon';
import { loadTls } from '@hearth/tls';
import { startTurn } from './server.ts';
import { loadTurnSettings } from './settings.ts';

const settings = settingsOrExit('turn', loadTurnSettings);

await runDaemon('turn', async ({ config, directory, logger }) => startTurn({ config, directory, logger, settings, tls: await loadTls(config) }));
