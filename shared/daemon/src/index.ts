import { parentPort } from 'node:worker_threads';
import { announceRunning, ConfigError, loadConfig, type HearthConfig } from '@hearth/config';
import { Directory, DirectoryError } from '@hearth/directory';
import { createLogger, type Logger } from '@hearth/log';
import { MetricsPortError, startMetrics, type MetricsListener } from './metrics.ts';

export { loginOutcome, startMetrics, type MetricsListener } from './metrics.ts';

export interface DaemonContext {
  config: HearthConfig;
  directory: Directory;
  logger: Logger;
}

export interface RunningService {
  /** human-readable endpoints, e.g. "ldap://127.0.0.1:3890" */
  endpoints: string[];
  close(): Promise<void>;
}

/**
 * Reads a daemon's settings once at start; a bad value is one line on stderr and exit 1,
 * never a stack trace.
 */
export function settingsOrExit<T>(name: string, load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`hearth ${name}: ${err.message}\n`);
    process.exit(1);
  }
}

/**
 * The life of every daemon process: validate settings once, open the directory with
 * live change notifications, start the service, log "ready" with its endpoints, and
 * stop cleanly on SIGINT/SIGTERM. A bad setting is one line on stderr and exit 1.
 */
export async function runDaemon(name: string, start: (ctx: DaemonContext) => Promise<RunningService>): Promise<void> {
  const config = settingsOrExit(name, () => loadConfig());
  const logger = createLogger(name, config.logLevel);
  // a platform restore refuses to run under a live daemon
  announceRunning(config.dataDir, name);
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception; exiting so the supervisor restarts this service');
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection; exiting so the supervisor restarts this service');
    process.exit(1);
  });
  let directory: Directory;
  try {
    directory = await Directory.open(config, { logger, watch: true });
  } catch (err) {
    const msg = err instanceof DirectoryError ? err.message : `cannot open the directory store: ${(err as Error).message}`;
    logger.fatal(msg);
    process.exit(1);
  }
  let metrics: MetricsListener | null;
  try {
    metrics = await startMetrics(name, directory, logger, config);
  } catch (err) {
    if (!(err instanceof MetricsPortError)) throw err;
    process.stderr.write(`hearth ${name}: ${err.message}\n`);
    process.exit(1);
  }
  // Signal handlers go in before the service starts: a SIGTERM that arrives while it is
  // starting must still end in a clean exit 0, not Node's default death by signal.
  const running: { service?: RunningService } = {};
  let stopping = false;
  const shutdown = async (service: RunningService): Promise<never> => {
    await service.close().catch((err) => logger.warn({ err }, 'error while closing'));
    await metrics?.close();
    await directory.close().catch(() => {});
    process.exit(0);
  };
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    const force = setTimeout(() => process.exit(0), 5000);
    force.unref();
    // a service still starting is closed as soon as start() hands it over (below)
    if (running.service) await shutdown(running.service);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  // Run as a worker thread of the supervisor (HEARTH_SUPERVISOR_MODE=threads), which gets no
  // signals: the supervisor asks for the same clean stop with a message.
  parentPort?.on('message', (m) => m === 'stop' && void stop('stop'));
  const service = await start({ config, directory, logger });
  running.service = service;
  if (stopping) await shutdown(service);
  logger.info({ endpoints: service.endpoints, metrics: metrics?.url ?? null }, 'ready');
}
