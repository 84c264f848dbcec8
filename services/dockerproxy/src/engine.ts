import http from 'node:http';
import type { Engine } from '@hearth/runtime';

/** Where the engine listens, as node's http.request wants it. */
export type EngineTarget = { socketPath: string } | { host: string; port: number };

/** The address of the runtime's engine client (connectEngine), for requests streamed through as they are. */
export function engineTarget(engine: Engine): EngineTarget {
  const modem = engine.modem as { socketPath?: string; host?: string; port?: number | string };
  return modem.socketPath ? { socketPath: modem.socketPath } : { host: modem.host!, port: Number(modem.port) };
}

/** A request to the engine; the caller writes the body (or ends it) and reads the response. */
export function engineRequest(target: EngineTarget, method: string, path: string, headers: http.OutgoingHttpHeaders = {}): http.ClientRequest {
  return http.request({ ...target, method, path, headers: { ...headers, host: 'docker' } });
}
