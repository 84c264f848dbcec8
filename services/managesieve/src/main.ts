import { runDaemon, settingsOrExit } from '@hearth/daemon';
import { startManageSieve } from './server.ts';
import { loadManageSieveSettings } from './settings.ts';

await runDaemon('managesieve', ({ config, directory, logger }) => startManageSieve({ config, directory, logger, settings: settingsOrExit('managesieve', () => loadManageSieveSettings()) }));
