import { runDaemon } from '@hearth/daemon';
import { startImap } from './server.ts';

await runDaemon('imap', ({ config, directory, logger }) => startImap({ config, directory, logger }));
