import { runDaemon } from '@hearth/daemon';
import { startPop3 } from './server.ts';

await runDaemon('pop3', ({ config, directory, logger }) => startPop3({ config, directory, logger }));
