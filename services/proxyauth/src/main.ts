import { ConfigError } from '@hearth/config';
import { runDaemon } from '@hearth/daemon';
import { loadSettings } from './settings.ts';
import { startProxyAuth } from './server.ts';

let settings;
try {
  settings = loadSettings();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`hearth proxyauth: ${err.message}\n`);
  process.exit(1);
}

await runDaemon('proxyauth', ({ config, directory, logger }) => startProxyAuth({ config, directory, logger, settings }));
