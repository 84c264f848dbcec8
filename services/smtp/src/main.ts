import { runDaemon, settingsOrExit } from '@hearth/daemon';
import { startSmtp } from './server.ts';
import { loadSmtpSettings } from './settings.ts';

const settings = settingsOrExit('smtp', loadSmtpSettings);
await runDaemon('smtp', (ctx) => startSmtp(ctx, { settings }));
