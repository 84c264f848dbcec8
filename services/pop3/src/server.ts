import type net from 'node:net';
import tls from 'node:tls';
import type { HearthConfig } from '@hearth/config';
import type { Directory } from '@hearth/directory';
import type { Logger } from '@hearth/log';
import { CommandQueue, Connections, listenPair, TlsUpgradableTransport } from '@hearth/lineserver';
import { MailStore } from '@hearth/mailstore';
import { loadTls } from '@hearth/tls';
import { MAX_LINE } from './pop3-codec.ts';
import { Pop3Session } from './session.ts';

export interface Pop3ServerOptions {
  config: HearthConfig;
  directory: Directory;
  logger: Logger;
  store?: MailStore;
  ports?: { pop3: number; pop3s: number };
}

export interface RunningPop3 {
  endpoints: string[];
  ports: { pop3: number; pop3s: number };
  close(): Promise<void>;
}

const TIMEOUT_MS = 10 * 60_000;
const MAX_CONNECTIONS = 2000;
const MAX_QUEUED = 64;

/** POP3 with STLS and POP3S (implicit TLS) over the shared mail store. */
export async function startPop3(opts: Pop3ServerOptions): Promise<RunningPop3> {
  const { config, directory, logger } = opts;
  const store = opts.store ?? new MailStore(config.dataDir);
  const material = await loadTls(config);
  const secureContext = tls.createSecureContext({ cert: material.cert, key: material.key });
  const connections = new Connections<Pop3Session>(MAX_CONNECTIONS);

  const serve = (socket: net.Socket, implicitTls: boolean): void => {
    if (!connections.admit(socket, '-ERR [SYS/TEMP] Too many connections\r\n')) return;
    let buf: Buffer = Buffer.alloc(0);
    let skipping = false;

    const transport = new TlsUpgradableTransport(
      socket,
      { implicitTls, secureContext },
      {
        onData(data) {
          // Lines (null: too long) in arrival order.
          const lines: (string | null)[] = [];
          buf = buf.length ? Buffer.concat([buf, data]) : data;
          for (;;) {
            const nl = buf.indexOf(10);
            if (nl < 0) {
              if (buf.length > MAX_LINE) {
                if (!skipping) lines.push(null);
                skipping = true;
                buf = Buffer.alloc(0);
              }
              break;
            }
            const end = nl > 0 && buf[nl - 1] === 13 ? nl - 1 : nl;
            if (skipping) skipping = false;
            else lines.push(end > MAX_LINE ? null : buf.toString('utf8', 0, end));
            buf = buf.subarray(nl + 1);
          }
          queue.enqueue(lines);
        },
        onAttach(sock) {
          sock.setTimeout(TIMEOUT_MS);
          sock.on('timeout', () => void session.close('Autologout').finally(() => sock.destroy()));
          sock.on('close', () => connections.remove(socket, session));
        },
        beforeUpgrade() {
          // Commands pipelined in clear text after STLS are dropped.
          queue.drop();
          buf = Buffer.alloc(0);
        },
      },
    );
    const session = new Pop3Session({ directory, store, logger, tlsAvailable: true }, transport);
    connections.add(session);
    const queue = new CommandQueue<string | null>({
      maxQueued: MAX_QUEUED,
      socket: () => transport.socket,
      closed: () => session.state === 'closed',
      handle: (line) => (line === null ? session.lineTooLong() : session.handle(line)),
      onError: (err) => logger.warn({ err }, 'POP3 connection error'),
    });

    transport.start();
    void transport.write(session.greeting());
  };

  const listeners = await listenPair({
    host: config.listen,
    tls: material,
    schemes: ['pop3', 'pop3s'],
    ports: { plain: opts.ports?.pop3 ?? config.ports.pop3, secure: opts.ports?.pop3s ?? config.ports.pop3s },
    onConnection: serve,
  });
  const unwatch = connections.recheckOn(directory);
  return {
    endpoints: listeners.endpoints,
    ports: { pop3: listeners.ports.plain, pop3s: listeners.ports.secure },
    close: async () => {
      unwatch();
      connections.closeAll();
      await listeners.close();
    },
  };
}
