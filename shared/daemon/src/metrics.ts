import cluster from 'node:cluster';
import fs from 'node:fs';
import http from 'node:http';
import { AggregatorRegistry, collectDefaultMetrics, Gauge } from 'prom-client';
import { metricsPortName, portEnvName, type HearthConfig } from '@hearth/config';
import type { AuditEvent, Directory } from '@hearth/directory';
import type { Logger } from '@hearth/log';
import { counter, registry } from '@hearth/metrics';

export interface MetricsListener {
  url: string;
  close(): Promise<void>;
}

export class MetricsPortError extends Error {}

/** The refusal reasons the directory gives (AuthFailure); anything else a protocol records is "refused". */
const LOGIN_REFUSALS = new Set(['invalid_credentials', 'throttled', 'disabled', 'not_allowed']);

/**
 * Whether an audit event is a login, and its outcome label: ok, a directory refusal reason, a
 * second factor that failed (totp, passkey) or "refused". Token grants, logouts, TURN allocations
 * and account changes are audited too but are not logins. Free-text details never become labels.
 */
export function loginOutcome(e: Pick<AuditEvent, 'ok' | 'detail'>): string | null {
  const d = e.detail;
  if (e.ok) return d === null || /^(app |oidc sign-in$|passkey$|passkey \(second factor\)$|totp$|key )/.test(d) ? 'ok' : null;
  if (d === null) return 'refused';
  if (d.startsWith('token refused')) return null;
  if (LOGIN_REFUSALS.has(d)) return d;
  if (d === 'totp' || d.startsWith('passkey')) return d === 'totp' ? 'totp' : 'passkey';
  return 'refused';
}

let processMetrics = false;

/**
 * Prometheus metrics for one daemon on its own port (HEARTH_<SERVICE>_METRICS_PORT on
 * HEARTH_METRICS_HOST; both in the config): the shared registry (every library's and the
 * service's metrics), process metrics, and logins by protocol and outcome from the directory's
 * audit, the one place every accepted or refused login passes. Null when metrics are off or the
 * daemon has no metrics port. In a cluster worker nothing listens: the primary's endpoint asks
 * its workers and serves their sum.
 */
export async function startMetrics(name: string, directory: Directory, logger: Logger, config: HearthConfig): Promise<MetricsListener | null> {
  const portName = metricsPortName(name);
  if (!config.metrics.enabled || !portName) return null;
  if (!processMetrics) {
    processMetrics = true;
    registry.setDefaultLabels({ service: name });
    collectDefaultMetrics({ register: registry });
    new Gauge({ name: 'hearth_build_info', help: 'Always 1; the labels say which Hearth and which Node.js run this daemon.', labelNames: ['version', 'node'], registers: [registry], aggregator: 'max' }).set({ version: hearthVersion(), node: process.version }, 1);
    countLogins(directory);
  }
  if (cluster.isWorker) {
    AggregatorRegistry.setRegistries([registry]);
    new AggregatorRegistry();
    return null;
  }
  const workers = new AggregatorRegistry();
  const text = (): Promise<string> => (Object.keys(cluster.workers ?? {}).length > 0 ? workers.clusterMetrics() : registry.metrics());
  const setting = portEnvName(portName);
  const port = config.ports[portName];
  const host = config.metrics.host;
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
      return;
    }
    text()
      .then((body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body))
      .catch((err) => {
        logger.warn({ err }, 'metrics collection failed');
        res.writeHead(503, { 'content-type': 'text/plain' }).end('metrics are not available right now\n');
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' || err.code === 'EACCES' ? new MetricsPortError(`${setting}: cannot listen on ${host}:${port} (${err.code === 'EADDRINUSE' ? 'already in use' : 'permission denied'}); set another port, or HEARTH_METRICS=off`) : err),
    );
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as { port: number };
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}/metrics`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The version in the repository's package.json (three folders up, from src/ or a build folder alike). */
function hearthVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function countLogins(directory: Directory): void {
  const logins = counter({ name: 'hearth_logins_total', help: 'Logins by protocol and outcome (ok, or why it was refused: invalid_credentials, throttled, disabled, not_allowed, totp, passkey, refused).', labelNames: ['protocol', 'outcome'] });
  const throttled = counter({ name: 'hearth_login_throttled_total', help: 'Login attempts refused by the failed-login throttle, by protocol (already counted in hearth_logins_total as outcome "throttled").', labelNames: ['protocol'] });
  directory.onAudit((e) => {
    const outcome = loginOutcome(e);
    if (outcome === null) return;
    logins.inc({ protocol: e.protocol, outcome });
    if (outcome === 'throttled') throttled.inc({ protocol: e.protocol });
  });
}
