import fs from 'node:fs';
import path from 'node:path';
import { parseBackupSettings, scheduleBackups, type BackupSettings } from '@hearth/backup';
import { announceRunning, ConfigError, loadConfig, metricsPortName, metricsUrl, type HearthConfig } from '@hearth/config';
import { Directory, DirectoryError } from '@hearth/directory';
import { createLogger } from '@hearth/log';
import { superviseRedisInstances } from '@hearth/provisioning';
import { connectEngine, engineReachable } from '@hearth/runtime';
import { loadTls } from '@hearth/tls';
import { SupervisedChild } from './child.ts';
import { availableServices, compiledEntry, serviceEntry, supervisorStatusFile, type SupervisorStatus } from './services.ts';

const MODES = ['processes', 'threads'] as const;

/**
 * HEARTH_DAEMON_YOUNG_GENERATION_MB: the most memory each daemon's V8 keeps for short-lived objects.
 * V8's default (48 MiB: 16 MiB semi-spaces) is sized for throughput; a mostly idle daemon grows it
 * at start and never gives it back, which made it the largest part of the stack's idle memory.
 */
function parseYoungGeneration(value: string | undefined): number {
  if (value === undefined || value === '') return 4;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 3 || n > 256) throw new ConfigError(`HEARTH_DAEMON_YOUNG_GENERATION_MB must be a whole number of MiB from 3 to 256, not "${value}"`);
  return n;
}

/** The metrics endpoint printed beside a daemon's own. */
function metricsEndpoint(config: HearthConfig, service: string): string | null {
  const url = metricsUrl(config, service);
  if (url) return `${url} (metrics)`;
  return config.metrics.enabled && metricsPortName(service) ? 'metrics on a free port (see its "ready" log line)' : null;
}

/**
 * `npm start`: migrates the store once, then runs every daemon in this checkout as a
 * child process (or, with HEARTH_SUPERVISOR_MODE=threads, as a worker thread of this one),
 * restarting crashed ones with backoff, and stops them all on SIGINT/SIGTERM.
 */
async function main(): Promise<void> {
  let config: HearthConfig;
  let backupSettings: BackupSettings;
  let youngGenerationMb: number;
  // Daemons run the way the supervisor itself was started: compiled JavaScript with plain node
  // (npm start, the image), or the TypeScript sources through tsx (tests, development).
  const compiled = process.argv[1]?.endsWith('.js') ?? false;
  const mode = (process.env.HEARTH_SUPERVISOR_MODE || 'processes') as (typeof MODES)[number];
  try {
    if (!MODES.includes(mode)) throw new ConfigError(`HEARTH_SUPERVISOR_MODE must be processes or threads, not "${mode}"`);
    if (mode === 'threads' && !compiled) throw new ConfigError('HEARTH_SUPERVISOR_MODE=threads runs the compiled daemons: start with npm start (or node services/supervisor/dist/main.js)');
    youngGenerationMb = parseYoungGeneration(process.env.HEARTH_DAEMON_YOUNG_GENERATION_MB);
    config = loadConfig();
    backupSettings = parseBackupSettings();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`hearth: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger('supervisor', config.logLevel);
  announceRunning(config.dataDir, 'supervisor');
  let directory: Directory;
  try {
    // Opening migrates the store before the daemons start, so they never race on an empty one.
    directory = await Directory.open(config, { watch: true, logger });
  } catch (err) {
    process.stderr.write(`hearth: ${err instanceof DirectoryError ? err.message : `cannot open the directory store: ${(err as Error).message}`}\n`);
    process.exit(1);
  }
  const only = process.env.HEARTH_SERVICES?.split(',').map((s) => s.trim()).filter(Boolean);
  let services = availableServices(compiled ? compiledEntry : serviceEntry).filter((s) => !only || only.includes(s.name));
  // App containers need a Docker engine; without one every other service still runs, and the operator is told once.
  let dockerNote: string | null = null;
  if (services.some((s) => s.needsDocker) && !(await engineReachable(connectEngine(config.dockerHost)))) {
    services = services.filter((s) => !s.needsDocker);
    dockerNote = `App containers are off: no Docker engine answers at ${config.dockerHost} (set HEARTH_DOCKER_HOST and restart to run apps, their scheduler tasks and certificates, and the docker addon's API)`;
    logger.warn({ dockerHost: config.dockerHost }, 'no Docker engine; app containers are off');
  }
  // The console's status page reads restarts from here.
  const status: SupervisorStatus = { startedAt: new Date().toISOString(), services: {} };
  const statusFile = supervisorStatusFile(config.dataDir);
  const writeStatus = (): void => {
    try {
      fs.mkdirSync(path.dirname(statusFile), { recursive: true, mode: 0o700 });
      fs.writeFileSync(`${statusFile}.tmp`, JSON.stringify(status), { mode: 0o600 });
      fs.renameSync(`${statusFile}.tmp`, statusFile);
    } catch (err) {
      logger.warn({ err }, 'could not write the supervisor status file');
    }
  };
  const children = services.map((s) => {
    const child: SupervisedChild = new SupervisedChild({
      name: s.name,
      command: process.execPath,
      args: compiled ? ['--enable-source-maps', compiledEntry(s.name)] : ['--import', 'tsx', serviceEntry(s.name)],
      threadEntry: mode === 'threads' ? compiledEntry(s.name) : undefined,
      youngGenerationMb,
      env: process.env,
      logger,
      onStart: () => {
        status.services[s.name] = { pid: child.pid ?? null, restarts: child.restarts, startedAt: new Date().toISOString() };
        writeStatus();
      },
    });
    return child;
  });
  // The self-signed certificate the TLS ports share is made here, once, before they start: otherwise
  // at first start each TLS daemon loads the generator (kept resident after) and they race to write it.
  await loadTls(config);
  const store = config.databaseUrl ? `PostgreSQL (${new URL(config.databaseUrl).host})` : `SQLite (${config.dataDir}/hearth.db)`;
  const backups = scheduleBackups({ config, settings: backupSettings, logger });
  const nameWidth = Math.max(...services.map((s) => s.name.length));
  const lines = [
    `Hearth is starting; directory store: ${store}`,
    ...services.map((s) => `  ${s.name.padEnd(nameWidth)} ${[...s.endpoints(config), metricsEndpoint(config, s.name)].filter(Boolean).join('  ')}`),
    backups.describe,
    ...(dockerNote ? [dockerNote] : []),
    'Manage users and apps with: npx hearth --help',
  ];
  process.stdout.write(lines.join('\n') + '\n');
  for (const c of children) c.start();
  // Apps with the redis addon each have a redis-server of their own, kept in step with the directory.
  const redisInstances = superviseRedisInstances({ config, directory, logger });

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping all services');
    backups.close();
    await Promise.all([...children.map((c) => c.stop()), redisInstances.close()]);
    await directory.close().catch(() => {});
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

await main();
