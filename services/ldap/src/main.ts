import { runDaemon } from '@hearth/daemon';
import { loadTls } from '@hearth/tls';
import { startLdap } from './server.ts';

await runDaemon('ldap', async ({ config, directory, logger }) => {
  const tls = await loadTls(config);
  return startLdap({ directory, logger, host: config.listen, port: config.ports.ldap, ldapsPort: config.ports.ldaps, tls });
});
