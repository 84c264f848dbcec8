import { createRequire } from 'node:module';
import type Docker from 'dockerode';

export type Engine = Docker;

/** Something went wrong talking to the Docker engine; the message is one line for the operator. */
export class EngineError extends Error {}

/**
 * One Docker Engine API client for everything in Hearth that talks to the engine (app
 * containers, the scheduler, the docker addon's proxy). `host` is unix:///path or tcp://host:port.
 */
export function connectEngine(host: string): Engine {
  // required on first use: the CLI and the supervisor load this module without always needing an engine
  const Docker = createRequire(import.meta.url)('dockerode') as typeof import('dockerode');
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) });
  const url = new URL(host.replace(/^tcp:/, 'http:'));
  return new Docker({ host: url.hostname, port: Number(url.port), protocol: 'http' });
}

/** True when the engine answers /_ping within timeoutMs. */
export async function engineReachable(engine: Engine, timeoutMs = 3000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      engine.ping().then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** The HTTP status of an Engine API error (404 no such container/image, 409 conflict, ...). */
export function engineStatus(err: unknown): number | undefined {
  const status = (err as { statusCode?: unknown }).statusCode;
  return typeof status === 'number' ? status : undefined;
}

/** The engine's own message ("No such image: x") without dockerode's "(HTTP code 404) ..." prefix. */
export function engineMessage(err: unknown): string {
  const json = (err as { json?: { message?: string } }).json;
  if (json?.message) return json.message;
  const message = (err as Error).message ?? String(err);
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES') return `cannot reach the Docker engine (${code})`;
  return message.replace(/^\(HTTP code \d+\)\s*[a-z ]*-\s*/i, '').trim();
}
