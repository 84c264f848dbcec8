import { runDaemon } from '@hearth/daemon';
import { startOidc } from './server.ts';

await runDaemon('oidc', (ctx) => startOidc(ctx));
