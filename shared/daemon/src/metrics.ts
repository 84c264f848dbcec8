import http from 'node:http';
import { collectDefaultMetrics, Counter, Registry } from 'prom-client';
import type { Directory } from '@hearth/directory';
import type { Logger } from '@hearth/log';

/** The setting naming a daemon's metrics port, e.g. HEARTH_LDAP_METRICS_PORT. */
export const metricsPortSetting = (name: string): string => `HEARTH_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_METRICS_PORT`;

export interface MetricsListener {
  url: string;
  registry: Registry;
  close(): Promise<void>;
}

export class MetricsPortError extends Error {}

/**
 * Prometheus metrics for one daemon on its own port (HEARTH_<SERVICE>_METRICS_PORT, on
 * HEARTH_METRICS_HOST, 127.0.0.1 by default): process metrics, and logins by protocol and
 * outcome from the directory's audit (the one place every accepted or refused login passes).
 * Returns null when the port is not set.
 */
export async function startMetrics(name: string, directory: Directory, logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<MetricsListener | null> {
  const setting = metricsPortSetting(name);
  const raw = env[setting];
  if (raw === undefined || raw === '') return null;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new MetricsPortError(`${setting} must be a port number (0-65535), not "${raw}"`);
  const host = env.HEARTH_METRICS_HOST || '127.0.0.1';
  const registry = new Registry();
  registry.setDefaultLabels({ service: name });
  collectDefaultMetrics({ register: registry });
  const logins = new Counter({ name: 'hearth_logins_total', help: 'Logins checked by the directory, by protocol and outcome (ok or the refusal reason).', labelNames: ['protocol', 'outcome'], registers: [registry] });
  directory.onAudit((e) => logins.inc({ protocol: e.protocol, outcome: e.ok ? 'ok' : (e.detail ?? 'refused') }));
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
      return;
    }
    registry
      .metrics()
      .then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text))
      .catch((err) => {
        logger.warn({ err }, 'metrics collection failed');
        res.writeHead(500).end();
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' || err.code === 'EACCES' ? new MetricsPortError(`${setting}: cannot listen on ${host}:${port} (${err.code === 'EADDRINUSE' ? 'already in use' : 'permission denied'})`) : err),
    );
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as { port: number };
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}/metrics`,
    registry,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
