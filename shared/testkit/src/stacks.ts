import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { DEFAULT_PORTS, portEnvName, type PortName } from '@hearth/config';
import { freePort, REPO_ROOT, waitFor } from './index.ts';

/**
 * Complete stacks (`npm start`: the supervisor and its daemons) as replicas on loopback addresses
 * of their own over one environment (one database, one Redis, one data folder), and Debian's HAProxy
 * in front of them: what the two-stack test and the replicas bench run.
 */

/** A free port for every port setting (daemons and their metrics), the same on every replica's address. */
export async function stackPorts(): Promise<Record<string, string>> {
  const ports: Record<string, string> = {};
  for (const name of Object.keys(DEFAULT_PORTS) as PortName[]) ports[portEnvName(name)] = String(await freePort());
  return ports;
}

/** Whether host:port accepts a TCP connection within timeoutMs (the supervisor's portAccepts: testkit does not depend on the supervisor). */
export type PortProbe = (host: string, port: number, timeoutMs: number) => Promise<boolean>;

export class ReplicaStacks {
  private readonly procs = new Map<string, ChildProcess>();

  /**
   * `env`: the shared environment (stackPorts() included); `ports`: the daemons whose ports say a
   * stack is up (asked with `probe`); each stack's output is appended to stack-<address>.log in `logDir`.
   */
  constructor(
    private readonly env: Record<string, string>,
    private readonly ports: PortName[],
    private readonly logDir: string,
    private readonly probe: PortProbe,
  ) {}

  /**
   * Starts the stack on `address` (HEARTH_LISTEN, HEARTH_HOSTNAME and HEARTH_METRICS_HOST); `extra`:
   * settings this start has beside the shared ones, as after an operator changed them.
   */
  start(address: string, extra: Record<string, string> = {}): ChildProcess {
    const proc = spawn(process.execPath, ['--import', 'tsx', 'services/supervisor/src/main.ts'], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...this.env, ...extra, HEARTH_LISTEN: address, HEARTH_HOSTNAME: address, HEARTH_METRICS_HOST: address },
      stdio: ['ignore', 'pipe', 'pipe'],
      // its own process group: killing the group is the whole replica dying at once
      detached: true,
    });
    const log = fs.createWriteStream(this.logPath(address), { flags: 'a' });
    proc.stdout!.pipe(log);
    proc.stderr!.pipe(log);
    this.procs.set(address, proc);
    return proc;
  }

  logPath(address: string): string {
    return path.join(this.logDir, `stack-${address}.log`);
  }

  /** The supervisor's pid (its daemons are its children), or undefined when not started. */
  pid(address: string): number | undefined {
    return this.procs.get(address)?.pid;
  }

  /** A signal to the stack's whole process group: the supervisor and every daemon. */
  kill(address: string, signal: NodeJS.Signals = 'SIGKILL'): void {
    const pid = this.pid(address);
    if (!pid) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // already gone
    }
  }

  /** SIGTERM to the supervisor (which stops its daemons), SIGKILL to the group after `graceMs`; resolves when it has exited. */
  async stop(address: string, graceMs = 60_000): Promise<void> {
    const proc = this.procs.get(address);
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    this.kill(address, 'SIGTERM');
    const timer = setTimeout(() => this.kill(address, 'SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
    // daemons the supervisor did not take down with it
    this.kill(address, 'SIGKILL');
  }

  /** Whether every daemon of the stack on `address` accepts connections. */
  async up(address: string): Promise<boolean> {
    return (await Promise.all(this.ports.map((p) => this.probe(address, Number(this.env[portEnvName(p)]), 2000)))).every(Boolean);
  }

  /** Waits until the stacks on `addresses` are up; on timeout the end of their logs goes to stderr. */
  async waitUp(addresses: readonly string[], timeoutMs = 180_000): Promise<void> {
    await waitFor(async () => (await Promise.all(addresses.map((a) => this.up(a)))).every(Boolean), timeoutMs, 500).catch((err: unknown) => {
      for (const a of addresses) process.stderr.write(fs.existsSync(this.logPath(a)) ? fs.readFileSync(this.logPath(a), 'utf8').slice(-3000) : `no log for ${a}\n`);
      throw err;
    });
  }

  killAll(): void {
    for (const address of this.procs.keys()) this.kill(address);
  }
}

export interface Balancer {
  proc: ChildProcess;
  /** HAProxy's admin socket (`disable server`, `show servers state`) */
  socket: string;
  /** sends one command to the admin socket; resolves with the answer */
  command(line: string): Promise<string>;
  stop(): void;
}

/**
 * Debian's HAProxy on `address` in front of the stacks (servers s0, s1, … in the order of `stacks`),
 * one frontend per port in `ports`, each on that port's number: TCP, or HTTP with X-Forwarded-For
 * for the names in `http`. Round robin, a check every 500 ms, a server out after one failed check,
 * and a connection that failed tried again on another server (as deploy/haproxy.cfg).
 */
export async function startBalancer(opts: { address: string; stacks: readonly string[]; env: Record<string, string>; ports: PortName[]; http: PortName[]; dir: string; probe: PortProbe }): Promise<Balancer> {
  const socket = path.join(opts.dir, 'haproxy.sock');
  const backend = (name: PortName): string => {
    const port = opts.env[portEnvName(name)];
    const mode = opts.http.includes(name) ? 'http' : 'tcp';
    return [
      `frontend ${name}`,
      `  mode ${mode}`,
      `  bind ${opts.address}:${port}`,
      mode === 'http' ? '  option forwardfor' : '',
      `  default_backend ${name}`,
      `backend ${name}`,
      `  mode ${mode}`,
      '  balance roundrobin',
      '  option redispatch',
      mode === 'http' ? '  retry-on conn-failure' : '',
      '  retries 3',
      ...opts.stacks.map((s, i) => `  server s${i} ${s}:${port} check inter 500 fall 1 rise 2`),
    ].join('\n');
  };
  // `source`: the daemons see the balancer's address as the client (trusted networks and proxies name it)
  const config = ['global', `  stats socket ${socket} level admin`, 'defaults', `  source ${opts.address}`, '  timeout connect 2s', '  timeout client 60s', '  timeout server 60s', '', ...opts.ports.map(backend)].join('\n') + '\n';
  const file = path.join(opts.dir, 'haproxy.cfg');
  fs.writeFileSync(file, config);
  const proc = spawn('haproxy', ['-db', '-f', file], { stdio: 'ignore' });
  const command = (line: string): Promise<string> =>
    new Promise((resolve, reject) => {
      let out = '';
      const s = net.connect(socket, () => s.end(`${line}\n`));
      s.on('data', (d) => (out += d));
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
  await waitFor(() => opts.probe(opts.address, Number(opts.env[portEnvName(opts.ports[0]!)]), 1000), 20_000, 200);
  return { proc, socket, command, stop: () => proc.kill('SIGKILL') };
}
