import { runDaemon, settingsOrExit } from '@hearth/daemon';
import { startSftp } from './server.ts';
import { loadSftpSettings } from './settings.ts';

const settings = settingsOrExit('sftp', loadSftpSettings);

await runDaemon('sftp', async ({ config, directory, logger }) => startSftp({ config, directory, logger, settings }));
