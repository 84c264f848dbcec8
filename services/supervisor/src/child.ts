import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '@hearth/log';

export interface ChildOptions {
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** backoff after a crash: doubles from minDelayMs up to maxDelayMs; reset after a stable run */
  minDelayMs?: number;
  maxDelayMs?: number;
  stableAfterMs?: number;
  /** called after every (re)start */
  onStart?: () => void;
}

/** One supervised process: restarted with backoff when it dies, stopped on request. */
export class SupervisedChild {
  private proc: ChildProcess | null = null;
  private stopping = false;
  private delay: number;
  private timer: NodeJS.Timeout | null = null;
  restarts = 0;

  constructor(private readonly o: ChildOptions) {
    this.delay = o.minDelayMs ?? 1000;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  start(): void {
    const startedAt = Date.now();
    const proc = spawn(this.o.command, this.o.args, { env: this.o.env, stdio: 'inherit' });
    this.proc = proc;
    this.o.onStart?.();
    proc.on('error', (err) => this.o.logger.error({ service: this.o.name, err }, 'could not start'));
    proc.on('exit', (code, signal) => {
      this.proc = null;
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

  /** SIGTERM, then SIGKILL after graceMs. */
  stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    const proc = this.proc;
    if (!proc) return Promise.resolve();
    return new Promise((resolve) => {
      const kill = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      proc.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      proc.kill('SIGTERM');
    });
  }
}
