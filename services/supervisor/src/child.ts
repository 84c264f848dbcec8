import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import type { Logger } from '@hearth/log';

/** A daemon running now: a child process, or a worker thread of the supervisor's own process. */
interface Instance {
  readonly pid: number | undefined;
  onExit(cb: (code: number | null, signal: string | null) => void): void;
  /** asks for a clean stop: SIGTERM to a process, a "stop" message to a thread (threads get no signals) */
  terminate(): void;
  /** ends it at once */
  kill(): void;
}

export interface ChildOptions {
  name: string;
  /** a child process: `command args…` */
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** instead of a process, run this compiled entry point in a worker thread */
  threadEntry?: string;
  /** the daemon's young-generation limit: a thread's resourceLimits, a process's --max-semi-space-size */
  youngGenerationMb?: number;
  logger: Logger;
  /** backoff after a crash: doubles from minDelayMs up to maxDelayMs; reset after a stable run */
  minDelayMs?: number;
  maxDelayMs?: number;
  stableAfterMs?: number;
  /** called after every (re)start */
  onStart?: () => void;
}

/** V8 sizes the young generation at three semi-spaces. */
const semiSpaceMb = (youngGenerationMb: number): number => Math.max(1, Math.round(youngGenerationMb / 3));

function startProcess(o: ChildOptions): Instance {
  const args = o.youngGenerationMb ? [`--max-semi-space-size=${semiSpaceMb(o.youngGenerationMb)}`, ...o.args] : o.args;
  const proc = spawn(o.command, args, { env: o.env, stdio: 'inherit' });
  proc.on('error', (err) => o.logger.error({ service: o.name, err }, 'could not start'));
  return {
    pid: proc.pid,
    onExit: (cb) => proc.once('exit', cb),
    terminate: () => proc.kill('SIGTERM'),
    kill: () => proc.kill('SIGKILL'),
  };
}

function startThread(o: ChildOptions, entry: string): Instance {
  // A thread has its own heap and module graph: an uncaught exception or process.exit() in the
  // daemon ends that thread only, and the supervisor restarts it like a crashed process.
  const resourceLimits = o.youngGenerationMb ? { maxYoungGenerationSizeMb: o.youngGenerationMb } : undefined;
  const worker = new Worker(entry, { env: o.env, argv: [], name: o.name, resourceLimits });
  worker.on('error', (err) => o.logger.error({ service: o.name, err }, 'service thread failed'));
  return {
    pid: process.pid,
    onExit: (cb) => worker.once('exit', (code) => cb(code, null)),
    terminate: () => worker.postMessage('stop'),
    kill: () => void worker.terminate(),
  };
}

/** One supervised daemon: restarted with backoff when it dies, stopped on request. */
export class SupervisedChild {
  private instance: Instance | null = null;
  private stopping = false;
  private delay: number;
  private timer: NodeJS.Timeout | null = null;
  private readonly exited: (() => void)[] = [];
  restarts = 0;

  constructor(private readonly o: ChildOptions) {
    this.delay = o.minDelayMs ?? 1000;
  }

  get pid(): number | undefined {
    return this.instance?.pid;
  }

  start(): void {
    const startedAt = Date.now();
    const instance = this.o.threadEntry ? startThread(this.o, this.o.threadEntry) : startProcess(this.o);
    this.instance = instance;
    this.o.onStart?.();
    instance.onExit((code, signal) => {
      this.instance = null;
      for (const resolve of this.exited.splice(0)) resolve();
      if (this.stopping) return;
      if (Date.now() - startedAt > (this.o.stableAfterMs ?? 60_000)) this.delay = this.o.minDelayMs ?? 1000;
      this.o.logger.warn({ service: this.o.name, code, signal, restartInMs: this.delay }, 'service exited; restarting');
      this.timer = setTimeout(() => {
        this.restarts++;
        this.start();
      }, this.delay);
      this.delay = Math.min(this.delay * 2, this.o.maxDelayMs ?? 30_000);
    });
  }

  /** A clean stop (SIGTERM or a stop message), then a forced one after graceMs. */
  stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    const instance = this.instance;
    if (!instance) return Promise.resolve();
    return new Promise((resolve) => {
      const kill = setTimeout(() => instance.kill(), graceMs);
      this.exited.push(() => {
        clearTimeout(kill);
        resolve();
      });
      instance.terminate();
    });
  }
}
