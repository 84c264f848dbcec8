import { loadConfig, type PortName } from '@hearth/config';
import { portAccepts } from './services.ts';

/**
 * Container healthcheck: `node --import tsx services/supervisor/src/healthcheck.ts <port-name>...`
 * exits 0 when every named TCP port accepts a connection on this host.
 */
const config = loadConfig();
const names = process.argv.slice(2) as PortName[];
const host = config.listen === '0.0.0.0' || config.listen === '::' ? '127.0.0.1' : config.listen;

const results = await Promise.all(names.map((n) => portAccepts(host, config.ports[n], 3000)));
process.exit(names.length > 0 && results.every(Boolean) ? 0 : 1);
