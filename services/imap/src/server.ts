import type net from 'node:net';
import tls from 'node:tls';
import type { HearthConfig } from '@hearth/config';
import type { Directory } from '@hearth/directory';
import type { Logger } from '@hearth/log';
import { CommandQueue, Connections, listenPair, TlsUpgradableTransport } from '@hearth/lineserver';
import { MailStore } from '@hearth/mailstore';
import { loadTls } from '@hearth/tls';
import { HeaderCache } from './header-cache.ts';
import { continuation } from './imap-encoder.ts';
import { CommandFramer, DEFAULT_LIMITS, type FrameEvent, type LiteralBudget } from './imap-parser.ts';
import { Session } from './session.ts';
import { loadImapSettings, type ImapSettings } from './settings.ts';

export interface ImapServerOptions {
  config: HearthConfig;
  directory: Directory;
  logger: Logger;
  store?: MailStore;
  settings?: ImapSettings;
  /** override config.ports (tests pass 0) */
  ports?: { imap: number; imaps: number };
}

export interface RunningImap {
  endpoints: string[];
  ports: { imap: number; imaps: number };
  close(): Promise<void>;
}

const PREAUTH_TIMEOUT_MS = 60_000;
const AUTH_TIMEOUT_MS = 30 * 60_000;
const MAX_CONNECTIONS = 2000;
const MAX_QUEUED = 32;
/** literal bytes buffered over all connections at once (APPENDs beyond it are refused until others finish) */
const LITERAL_BUDGET = 512 * 1024 * 1024;

/** IMAP on the STARTTLS port and IMAPS (implicit TLS), both over the shared mail store. */
export async function startImap(opts: ImapServerOptions): Promise<RunningImap> {
  const { config, directory, logger } = opts;
  const settings = opts.settings ?? loadImapSettings();
  const store = opts.store ?? new MailStore(config.dataDir);
  const material = await loadTls(config);
  const secureContext = tls.createSecureContext({ cert: material.cert, key: material.key });
  const headers = new HeaderCache();
  const connections = new Connections<Session>(MAX_CONNECTIONS);
  let literalBytes = 0;
  const budget: LiteralBudget = {
    take: (n) => {
      if (literalBytes + n > LITERAL_BUDGET) return false;
      literalBytes += n;
      return true;
    },
    give: (n) => {
      literalBytes -= n;
    },
  };

  const serve = (socket: net.Socket, implicitTls: boolean): void => {
    if (!connections.admit(socket, '* BYE Too many connections\r\n')) return;
    const framer = new CommandFramer({ ...DEFAULT_LIMITS, maxAppendLiteral: settings.maxMessageBytes }, budget);
    /** drops queued commands, giving their literal bytes back */
    const dropQueue = (): void => {
      for (const ev of queue.drop()) if (ev.type === 'command') budget.give(ev.reserved);
    };
    const idleTimeout = (): number => (session.state === 'notauth' ? PREAUTH_TIMEOUT_MS : AUTH_TIMEOUT_MS);

    const transport = new TlsUpgradableTransport(
      socket,
      { implicitTls, secureContext },
      {
        onData(data) {
          if (session.closed) return;
          queue.enqueue(framer.push(data));
        },
        onAttach(sock) {
          sock.setTimeout(idleTimeout());
          sock.on('timeout', () => {
            void session.bye('Autologout; idle for too long').finally(() => sock.destroy());
          });
          sock.on('close', () => {
            dropQueue();
            framer.reset();
            session.end();
            connections.remove(socket, session);
          });
        },
        beforeUpgrade() {
          // Anything pipelined after STARTTLS was sent in clear text: drop it (RFC 3501 §6.2.1).
          dropQueue();
          framer.reset();
        },
      },
    );
    const session = new Session({ directory, store, logger, settings, tlsAvailable: true, headers }, transport);
    connections.add(session);
    const queue = new CommandQueue<FrameEvent>({
      maxQueued: MAX_QUEUED,
      socket: () => transport.socket,
      closed: () => session.closed,
      handle: async (ev) => {
        if (ev.type === 'command') await session.handle(ev.parts).finally(() => budget.give(ev.reserved));
        else if (ev.type === 'continue') await transport.write(continuation('Ready for literal data'));
        else if (ev.type === 'reject') await session.rejected(ev.tag, ev.text, ev.tooBig);
        else await session.bye(ev.text);
      },
      onError: (err) => logger.warn({ err }, 'IMAP connection error'),
      afterEach: () => transport.socket.setTimeout(idleTimeout()),
    });

    transport.start();
    void transport.write(session.greeting());
  };

  const listeners = await listenPair({
    host: config.listen,
    tls: material,
    schemes: ['imap', 'imaps'],
    ports: { plain: opts.ports?.imap ?? config.ports.imap, secure: opts.ports?.imaps ?? config.ports.imaps },
    onConnection: serve,
  });
  const unwatch = connections.recheckOn(directory);
  return {
    endpoints: listeners.endpoints,
    ports: { imap: listeners.ports.plain, imaps: listeners.ports.secure },
    close: async () => {
      unwatch();
      for (const s of connections.sessions) await s.bye('Server shutting down').catch(() => {});
      connections.closeAll();
      await listeners.close();
    },
  };
}
