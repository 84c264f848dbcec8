import { ConfigError } from '@hearth/config';
import { runDaemon } from '@hearth/daemon';
import { startSmtp } from './server.ts';
import { loadSmtpSettings } from './settings.ts';

let settings;
try {
  settings = loadSmtpSettings();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`hearth smtp: ${err.message}\n`);
  process.exit(1);
}
const smtpSettings = settings;
await runDaemon('smtp', (ctx) => startSmtp(ctx, { settings: smtpSettings }));
