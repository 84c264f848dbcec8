import { loadConfig } from '@hearth/config';
import { runDaemon, settingsOrExit } from '@hearth/daemon';
import { loadSettings } from './settings.ts';
import { startConsole } from './server.ts';

const settings = settingsOrExit('console', () => loadSettings(loadConfig()));

await runDaemon('console', ({ config, directory, logger }) => startConsole({ config, directory, logger, settings }));
