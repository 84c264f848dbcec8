import net from 'node:net';
import tls from 'node:tls';
import type { HearthConfig } from '@hearth/config';
import type { Directory } from '@hearth/directory';
import type { Logger } from '@hearth/log';
import { MailStore } from '@hearth/mailstore';
import { loadTls } from '@hearth/tls';
import { HeaderCache } from './header-cache.ts';
import { continuation } from './imap-encoder.ts';
import { CommandFramer, DEFAULT_LIMITS, type FrameEvent, type LiteralBudget } from './imap-parser.ts';
import { Session, type Transport } from './session.ts';
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
  const sessions = new Set<Session>();
  const sockets = new Set<net.Socket>();
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
    socket.on('error', () => {});
    // Responses go out in several writes; without this, Nagle + delayed ACK add ~40 ms to each.
    socket.setNoDelay(true);
    if (sockets.size >= MAX_CONNECTIONS) {
      socket.end('* BYE Too many connections\r\n');
      return;
    }
    sockets.add(socket);
    let sock: net.Socket = socket;
    let secure = implicitTls;
    const framer = new CommandFramer({ ...DEFAULT_LIMITS, maxAppendLiteral: settings.maxMessageBytes }, budget);
    /** drops queued commands, giving their literal bytes back */
    const dropQueue = (): void => {
      for (const ev of queue.splice(0)) if (ev.type === 'command') budget.give(ev.reserved);
    };
    const queue: FrameEvent[] = [];
    let running = false;
    let paused = false;
    const remote = socket.remoteAddress ?? null;

    const transport: Transport = {
      write: (data) =>
        new Promise((resolve) => {
          if (sock.destroyed || !sock.writable) return resolve();
          if (sock.write(data)) return resolve();
          const done = (): void => {
            sock.off('drain', done);
            sock.off('close', done);
            resolve();
          };
          sock.once('drain', done);
          sock.once('close', done);
        }),
      startTls: () =>
        new Promise((resolve) => {
          // Anything pipelined after STARTTLS was sent in clear text: drop it (RFC 3501 §6.2.1).
          dropQueue();
          framer.reset();
          sock.off('data', onData);
          const upgraded = new tls.TLSSocket(sock, { isServer: true, secureContext });
          upgraded.on('error', () => upgraded.destroy());
          upgraded.once('secure', () => {
            secure = true;
            resolve();
          });
          upgraded.once('close', () => resolve());
          sock = upgraded;
          attach();
        }),
      close: () => {
        sock.end();
        setTimeout(() => sock.destroy(), 2000).unref();
      },
      get secure() {
        return secure;
      },
      remote,
    };
    const session = new Session({ directory, store, logger, settings, tlsAvailable: true, headers }, transport);
    sessions.add(session);

    const pump = async (): Promise<void> => {
      if (running) return;
      running = true;
      while (queue.length && !session.closed) {
        const ev = queue.shift()!;
        try {
          if (ev.type === 'command') await session.handle(ev.parts).finally(() => budget.give(ev.reserved));
          else if (ev.type === 'continue') await transport.write(continuation('Ready for literal data'));
          else if (ev.type === 'reject') await session.rejected(ev.tag, ev.text, ev.tooBig);
          else await session.bye(ev.text);
        } catch (err) {
          logger.warn({ err }, 'IMAP connection error');
        }
        if (paused && queue.length < MAX_QUEUED / 4) {
          paused = false;
          sock.resume();
        }
        sock.setTimeout(session.state === 'notauth' ? PREAUTH_TIMEOUT_MS : AUTH_TIMEOUT_MS);
      }
      running = false;
    };

    function onData(data: Buffer): void {
      if (session.closed) return;
      for (const ev of framer.push(data)) queue.push(ev);
      if (queue.length > MAX_QUEUED && !paused) {
        paused = true;
        sock.pause();
      }
      void pump();
    }

    function attach(): void {
      sock.on('data', onData);
      sock.setTimeout(session.state === 'notauth' ? PREAUTH_TIMEOUT_MS : AUTH_TIMEOUT_MS);
      sock.on('timeout', () => {
        void session.bye('Autologout; idle for too long').finally(() => sock.destroy());
      });
      sock.on('close', () => {
        dropQueue();
        framer.reset();
        session.end();
        sessions.delete(session);
        sockets.delete(socket);
      });
    }

    attach();
    void transport.write(session.greeting());
  };

  const plain = net.createServer((s) => serve(s, false));
  const secure = tls.createServer({ cert: material.cert, key: material.key, handshakeTimeout: 10_000 }, (s) => serve(s, true));
  secure.on('tlsClientError', () => {});
  const listen = (server: net.Server, port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, config.listen, () => resolve((server.address() as net.AddressInfo).port));
    });
  const ports = {
    imap: await listen(plain, opts.ports?.imap ?? config.ports.imap),
    imaps: await listen(secure, opts.ports?.imaps ?? config.ports.imaps),
  };
  const unwatch = directory.onChange(() => {
    for (const s of sessions) void s.recheck().catch(() => {});
  });
  return {
    endpoints: [`imap://${config.listen}:${ports.imap}`, `imaps://${config.listen}:${ports.imaps}`],
    ports,
    close: async () => {
      unwatch();
      for (const s of sessions) await s.bye('Server shutting down').catch(() => {});
      for (const s of sockets) s.destroy();
      await Promise.all([plain, secure].map((srv) => new Promise<void>((r) => srv.close(() => r()))));
    },
  };
}
