import { runDaemon, settingsOrExit } from '@hearth/daemon';
import { loadCa } from '@hearth/tls';
import { connectEngine } from '@hearth/runtime';
import { startDockerProxy } from './server.ts';
import { loadDockerProxySettings } from './settings.ts';

const settings = settingsOrExit('dockerproxy', loadDockerProxySettings);

await runDaemon('dockerproxy', async ({ config, directory, logger }) =>
  startDockerProxy({ config, directory, logger, settings, ca: await loadCa(config), engine: connectEngine(config.dockerHost) }),
);
