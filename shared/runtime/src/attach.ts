import type { Duplex, Readable, Writable } from 'node:stream';
import { engineMessage, EngineError } from './engine.ts';
import type { AppRuntime } from './apps.ts';
import { appContainerName } from './names.ts';
import type { RuntimeApp } from './spec.ts';

/** The terminal (or pipes) `hearth app exec` and `app logs` talk to. */
export interface Terminal {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  stdout: Writable & { isTTY?: boolean; columns?: number; rows?: number; on(event: 'resize', l: () => void): unknown };
  stderr: Writable;
}

/** bash when the image has it, otherwise sh: what `cloudron exec` opens. */
export const DEFAULT_SHELL = ['/bin/sh', '-c', 'if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi'];

/**
 * Runs `cmd` (default: a shell) in the app's running container with the app's variables, like
 * `cloudron exec`: through a pseudo-terminal when stdin is one, else with stdout and stderr apart.
 * Resolves to the command's exit code.
 */
export async function execInApp(runtime: AppRuntime, app: RuntimeApp, cmd: string[], term: Terminal): Promise<number> {
  const container = runtime.engine.getContainer(appContainerName(app.id));
  const state = await runtime.state(app.id);
  if (state.state !== 'running') throw new EngineError(`app ${app.id} is not running (${state.state}); start it with hearth app start ${app.id}`);
  const tty = Boolean(term.stdin.isTTY && term.stdout.isTTY);
  const exec = await container.exec({
    Cmd: cmd.length ? cmd : DEFAULT_SHELL,
    Env: app.env.map(([k, v]) => `${k}=${v}`),
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: tty,
  });
  const stream = (await exec.start({ hijack: true, stdin: true, Tty: tty })) as Duplex;
  const resize = (): void => {
    if (term.stdout.columns && term.stdout.rows) exec.resize({ h: term.stdout.rows, w: term.stdout.columns }).catch(() => {});
  };
  if (tty) {
    term.stdin.setRawMode?.(true);
    term.stdout.on('resize', resize);
    resize();
    stream.pipe(term.stdout, { end: false });
  } else {
    runtime.engine.modem.demuxStream(stream, term.stdout, term.stderr);
  }
  // stdin's end closes the command's stdin (half-close), so `echo x | hearth app exec id -- cat` ends.
  term.stdin.pipe(stream);
  try {
    await new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', reject);
    });
  } finally {
    term.stdin.unpipe(stream);
    if (tty) term.stdin.setRawMode?.(false);
    term.stdin.pause();
  }
  const info = await exec.inspect().catch((err) => {
    throw new EngineError(`exec in app ${app.id}: ${engineMessage(err)}`);
  });
  return info.ExitCode ?? 1;
}

/** The output of a container (the app's, or a task run's): everything so far, or following it with `follow`. */
export async function containerLogs(runtime: AppRuntime, containerName: string, opts: { follow: boolean; tail?: number }, term: Pick<Terminal, 'stdout' | 'stderr'>): Promise<void> {
  const container = runtime.engine.getContainer(containerName);
  const options = { stdout: true, stderr: true, timestamps: false, ...(opts.tail !== undefined ? { tail: opts.tail } : {}) };
  try {
    if (!opts.follow) {
      const buffer = await container.logs({ ...options, follow: false });
      demuxBuffer(buffer, term);
      return;
    }
    const stream = await container.logs({ ...options, follow: true });
    runtime.engine.modem.demuxStream(stream, term.stdout, term.stderr);
    await new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('error', reject);
    });
  } catch (err) {
    throw new EngineError(`logs of ${containerName}: ${engineMessage(err)}`);
  }
}

/** Docker's multiplexed log format: frames of [stream, 0, 0, 0, size (4 bytes BE)] + payload. */
function demuxBuffer(buffer: Buffer, term: Pick<Terminal, 'stdout' | 'stderr'>): void {
  let i = 0;
  while (i + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(i + 4);
    const payload = buffer.subarray(i + 8, i + 8 + size);
    (buffer[i] === 2 ? term.stderr : term.stdout).write(payload);
    i += 8 + size;
  }
}
