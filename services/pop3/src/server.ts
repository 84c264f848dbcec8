import type { HearthConfig } from '@hearth/config';
import type { Directory } from '@hearth/directory';
import { loadConnectionLimits, serveLines, type ConnectionLimits } from '@hearth/lineserver';
import type { Logger } from '@hearth/log';
import { MailStore } from '@hearth/mailstore';
import { loadTls } from '@hearth/tls';
import { LineFramer } from './pop3-codec.ts';
import { Pop3Session } from './session.ts';

export interface Pop3ServerOptions {
  config: HearthConfig;
  directory: Directory;
  logger: Logger;
  store?: MailStore;
  ports?: { pop3: number; pop3s: number };
  /** default: HEARTH_POP3_MAX_CONNECTIONS, _MAX_CONNECTIONS_PER_ADDRESS, _IDLE_TIMEOUT, _MAX_LIFETIME */
  connections?: ConnectionLimits;
}

export interface RunningPop3 {
  endpoints: string[];
  ports: { pop3: number; pop3s: number };
  close(): Promise<void>;
}

/** RFC 1939 §3: an autologout timer must be at least 10 minutes. */
export const POP3_CONNECTION_DEFAULTS: ConnectionLimits = { maxConnections: 2000, maxPerAddress: 100, idleTimeoutMs: 10 * 60_000, maxLifetimeMs: 0 };
const MAX_QUEUED = 64;

/** POP3 with STLS and POP3S (implicit TLS) over the shared mail store. */
export async function startPop3(opts: Pop3ServerOptions): Promise<RunningPop3> {
  const { config, directory, logger } = opts;
  const store = opts.store ?? new MailStore(config.dataDir);
  const material = await loadTls(config);
  const server = await serveLines<string | null, Pop3Session>({
    host: config.listen,
    tls: material,
    listeners: [
      { scheme: 'pop3', port: opts.ports?.pop3 ?? config.ports.pop3, implicitTls: false },
      { scheme: 'pop3s', port: opts.ports?.pop3s ?? config.ports.pop3s, implicitTls: true },
    ],
    limits: opts.connections ?? loadConnectionLimits('POP3', POP3_CONNECTION_DEFAULTS),
    logger,
    protocol: {
      name: 'POP3',
      // RFC 3206 SYS/TEMP: a temporary condition, try again later
      refusal: (reason) => `-ERR [SYS/TEMP] Too many connections${reason === 'address' ? ' from your address' : ''}\r\n`,
      framer: () => new LineFramer(),
      maxQueued: MAX_QUEUED,
      session: (io) => new Pop3Session({ directory, store, logger, tlsAvailable: true }, io),
    },
  });
  const unwatch = server.recheckOn(directory);
  return {
    endpoints: server.endpoints,
    ports: { pop3: server.ports[0]!, pop3s: server.ports[1]! },
    close: async () => {
      unwatch();
      await server.close();
    },
  };
}
