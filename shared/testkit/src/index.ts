import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig, METRICS_PORTS, portEnvName, type HearthConfig } from '@hearth/config';
import { busyboxImage, derivedImage, docker, dockerEnv, removeAppLeftovers, requireDocker } from './docker.ts';

/** Helpers for tests: temp data dirs, free ports, throwaway PostgreSQL databases, the CLI, daemons. */

export { cpuSeconds, memoryMiB, percentile, reapedCpuSeconds, treeCpuSeconds } from './bench.ts';
export { formatRatio, interleave, median, spread, type RoundResult, type Side, type Spread } from './rounds.ts';
export { busyboxImage, derivedImage, docker, dockerEnv, fillBusybox, fillFromHost, importedImage, removeAppLeftovers, requireDocker, TEST_DOCKER_HOST } from './docker.ts';
export { mountTmpfs, type SmallDisk } from './tmpfs.ts';
export { prng } from './prng.ts';
export { startTestDns, type TestDns } from './dns.ts';
import { startTestDns, type TestDns } from './dns.ts';
export { ReplicaStacks, stackPorts, startBalancer, type Balancer, type PortProbe } from './stacks.ts';
export { metricValue, parsePrometheusText, scrapeMetrics, type PromExposition, type PromSample } from './prometheus.ts';

export const REPO_ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
/** The example app manifests the README documents; tests install these, so a plain clone can run them. */
export const MANIFESTS = path.join(REPO_ROOT, 'examples/manifests');
export const PG_ADMIN_URL = process.env.HEARTH_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export function tempDir(prefix = 'hearth-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * The kernel's ephemeral range, where it picks source ports for outgoing connections. A port
 * chosen inside it can be taken as some connection's source port between our check and the
 * daemon's listen (seen as EADDRINUSE in CI), so test ports come from below it.
 */
function ephemeralStart(): number {
  try {
    const [low] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low && low > 12000) return low;
  } catch {
    // not Linux: fall back to IANA's dynamic range start
  }
  return 49152;
}
const PORT_LOW = 10000;
const PORT_HIGH = ephemeralStart() - 1;
const handedOut = new Set<number>();

function bindFree(kind: 'tcp' | 'udp', port: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (kind === 'tcp') {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '0.0.0.0', () => s.close(() => resolve(true)));
    } else {
      const u = dgram.createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, '0.0.0.0', () => u.close(() => resolve(true)));
    }
  });
}

/**
 * A port nothing listens on right now, on TCP and on UDP (TURN and STUN use both), on any
 * address; random below the ephemeral range and never the same twice in one process, so
 * parallel test files and outgoing connections rarely race for it.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = PORT_LOW + Math.floor(Math.random() * (PORT_HIGH - PORT_LOW));
    if (handedOut.has(port)) continue;
    if ((await bindFree('tcp', port)) && (await bindFree('udp', port))) {
      handedOut.add(port);
      return port;
    }
  }
}

/** A new PostgreSQL database for one test file; drop() removes it. */
export async function createPostgresDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `hearth_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = PG_ADMIN_URL.replace(/\/[^/]*$/, `/${name}`);
  return {
    url,
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface TestEnv {
  env: Record<string, string>;
  config: HearthConfig;
  dataDir: string;
  /** the loopback DNS server HEARTH_SMTP_DNS_SERVERS points at (one per test process; add records to it) */
  dns: TestDns;
  cleanup: () => Promise<void>;
}

let processDns: Promise<TestDns> | null = null;

/** One loopback DNS server per test process, so no daemon a test starts asks the system's resolver. */
function testDns(): Promise<TestDns> {
  processDns ??= startTestDns().then((d) => {
    d.unref();
    // the test machine is the mail server of the default domain: mail from 127.0.0.1 passes SPF for it
    d.txt.set('example.test', ['v=spf1 ip4:127.0.0.1 ip6:::1 -all']);
    return d;
  });
  return processDns;
}

/** Environment for a test stack: temp data dir, cheap argon2, a loopback DNS server, the given backend, and overrides. */
export async function testEnv(opts: { backend?: 'sqlite' | 'postgres'; env?: Record<string, string> } = {}): Promise<TestEnv> {
  const dataDir = tempDir();
  const env: Record<string, string> = {
    HEARTH_DATA_DIR: dataDir,
    HEARTH_ARGON2_MEMORY_KIB: '1024',
    HEARTH_ARGON2_TIME_COST: '1',
    HEARTH_LOG_LEVEL: process.env.HEARTH_LOG_LEVEL ?? 'warn',
    HEARTH_LOG_FORMAT: 'json',
    // metrics on, each daemon on a free port of its own: tests run side by side (and beside `npm start`)
    ...Object.fromEntries(METRICS_PORTS.map((p) => [portEnvName(p), '0'])),
  };
  const dns = await testDns();
  env.HEARTH_SMTP_DNS_SERVERS = dns.server;
  let drop = async (): Promise<void> => {};
  if (opts.backend === 'postgres') {
    const db = await createPostgresDatabase();
    env.HEARTH_DATABASE_URL = db.url;
    drop = db.drop;
  }
  Object.assign(env, opts.env);
  return {
    env,
    config: loadConfig({ ...process.env, ...env }),
    dataDir,
    dns,
    cleanup: async () => {
      await drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * `hearth` from its TypeScript sources (node + these arguments): tests check the code as it is
 * now, not a build that may be older. The compiled bin is tested by test/compiled.test.ts.
 */
export const HEARTH_SOURCE_ARGS = ['--import', 'tsx', path.join(REPO_ROOT, 'services/cli/src/main.ts')];

/** Runs `hearth <args>` as a user would, with stdin when given. */
export function hearth(args: string[], opts: { env: Record<string, string>; input?: string }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...HEARTH_SOURCE_ARGS, ...args], { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

export interface CommandResult {
  code: number | null;
  /** stdout and stderr together, as they arrived. */
  out: string;
  stdout: string;
  stderr: string;
}

/**
 * Runs a client tool (swaks, python3, coturn's turnutils, ...) with `env` over this process's
 * environment and `input` on stdin (none when not given); killed after `timeoutMs`.
 */
export function runCommand(
  cmd: string,
  args: string[],
  opts: { input?: string; env?: Record<string, string>; timeoutMs?: number; inheritEnv?: boolean } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const env = opts.inheritEnv === false ? opts.env : { ...process.env, ...opts.env };
    const child = spawn(cmd, args, { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env });
    let out = '';
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => {
      out += d;
      stdout += d;
    });
    child.stderr!.on('data', (d) => {
      out += d;
      stderr += d;
    });
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out, stdout, stderr });
    });
    child.stdin?.end(opts.input);
  });
}

/** Parses `KEY=VALUE` lines as `hearth app env` prints them. */
export function parseEnvLines(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

export interface Daemon {
  child: ChildProcess;
  output: () => string;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/**
 * Starts a daemon's entry file (e.g. services/ldap/src/main.ts) with the env and waits
 * until `ready(output)` is true (typically a log line), or fails after timeoutMs. The
 * default allows for a loaded 2-core CI machine, where booting tsx (once per worker
 * for multi-process daemons) can take tens of seconds. `nodeArgs` go to node before the entry
 * (a bench's `--cpu-prof`). A TypeScript entry runs through tsx, a compiled one (dist/*.js) with
 * plain node.
 */
export async function startDaemon(entry: string, env: Record<string, string>, ready: (output: string) => boolean, timeoutMs = 60_000, nodeArgs: string[] = []): Promise<Daemon> {
  const loader = entry.endsWith('.ts') ? ['--import', 'tsx'] : ['--enable-source-maps'];
  const child = spawn(process.execPath, [...nodeArgs, ...loader, path.resolve(REPO_ROOT, entry)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: REPO_ROOT,
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const stop = (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
      // daemons force their own exit 5 s after a signal; the margin is for a loaded machine
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.once('exit', (code) => {
        clearTimeout(t);
        resolve(code);
      });
      child.kill(signal);
    });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      cleanup();
      child.kill('SIGKILL');
      reject(new Error(`${entry} not ready after ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const check = (): void => {
      if (ready(out)) {
        cleanup();
        resolve();
      }
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`${entry} exited with ${code} before it was ready:\n${out}`));
    };
    const cleanup = (): void => {
      clearTimeout(t);
      child.stdout!.off('data', check);
      child.stderr!.off('data', check);
      child.off('exit', onExit);
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    child.on('exit', onExit);
    check();
  });
  return { child, output: () => out, stop };
}

/** Polls fn until it returns truthy or the deadline passes. */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 5000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * How a bench ends: with failures it names each one on stderr, leaves BENCHMARKS.md alone and sets
 * exit code 1; without, it writes the `## <title>` section when `write` (a full-size run).
 */
export function recordBenchmark(title: string, body: string, failures: string[], write: boolean): void {
  if (failures.length) {
    for (const f of failures) process.stderr.write(`FAILED: ${f}\n`);
    process.stderr.write('BENCHMARKS.md left unchanged\n');
    process.exitCode = 1;
  } else if (write) {
    writeBenchmarkSection(title, body);
    process.stderr.write(`wrote the ${title} section of BENCHMARKS.md\n`);
  }
}

/** Replaces (or appends) the `## <title>` section of BENCHMARKS.md, leaving other sections alone. */
export function writeBenchmarkSection(title: string, body: string): void {
  const file = path.join(REPO_ROOT, 'BENCHMARKS.md');
  const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmarks\n\nFigures from `npm run bench*` on the machine named in each section.\n';
  const section = `## ${title}\n\n${body.trim()}\n`;
  const re = new RegExp(`^## ${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n[\\s\\S]*?(?=^## |(?![\\s\\S]))`, 'm');
  const next = re.test(current) ? current.replace(re, section + '\n') : `${current.trimEnd()}\n\n${section}`;
  fs.writeFileSync(file, next.trimEnd() + '\n');
}



export interface AppTestEnv extends TestEnv {
  /** a throwaway image (busybox + `cmd`), removed by cleanup */
  image: string;
}

/**
 * For tests that run an app on the Docker engine: requires the engine, builds the app's image (on busybox, or `base`),
 * and gives a test environment pointed at the engine whose cleanup also removes everything
 * labelled with `appId` and the image.
 */
export async function appTestEnv(appId: string, opts: { cmd: string; base?: () => string; imageEnv?: Record<string, string>; env?: Record<string, string> }): Promise<AppTestEnv> {
  requireDocker();
  const image = derivedImage((opts.base ?? busyboxImage)(), { cmd: opts.cmd, env: opts.imageEnv });
  const t = await testEnv({ env: { ...dockerEnv(), ...opts.env } });
  return {
    ...t,
    image,
    cleanup: async () => {
      removeAppLeftovers(appId);
      docker(['rmi', image]);
      await t.cleanup();
    },
  };
}
