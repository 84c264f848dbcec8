import { runDaemon, settingsOrExit } from '@hearth/daemon';
import { loadSettings } from './settings.ts';
import { startProxyAuth } from './server.ts';

const settings = settingsOrExit('proxyauth', loadSettings);

await runDaemon('proxyauth', ({ config, directory, logger }) => startProxyAuth({ config, directory, logger, settings }));
