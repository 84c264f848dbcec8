import net from 'node:net';
import { loadConfig, type PortName } from '@hearth/config';

/**
 * Container healthcheck: `node --import tsx services/supervisor/src/healthcheck.ts <port-name>...`
 * exits 0 when every named TCP port accepts a connection on this host.
 */
const config = loadConfig();
const names = process.argv.slice(2) as PortName[];
const host = config.listen === '0.0.0.0' || config.listen === '::' ? '127.0.0.1' : config.listen;

const check = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 3000 });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
    s.once('timeout', () => (s.destroy(), resolve(false)));
  });

const results = await Promise.all(names.map((n) => check(config.ports[n])));
process.exit(names.length > 0 && results.every(Boolean) ? 0 : 1);
