import net from 'node:net';
import tls from 'node:tls';
import type { HearthConfig } from '@hearth/config';
import type { Directory } from '@hearth/directory';
import type { Logger } from '@hearth/log';
import { MailStore } from '@hearth/mailstore';
import { loadTls } from '@hearth/tls';
import { MAX_LINE } from './pop3-codec.ts';
import { Pop3Session, type Pop3Transport } from './session.ts';

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
  const sessions = new Set<Pop3Session>();
  const sockets = new Set<net.Socket>();

  const serve = (socket: net.Socket, implicitTls: boolean): void => {
    socket.on('error', () => {});
    // Responses go out in several writes; without this, Nagle + delayed ACK add ~40 ms to each.
    socket.setNoDelay(true);
    if (sockets.size >= MAX_CONNECTIONS) {
      socket.end('-ERR [SYS/TEMP] Too many connections\r\n');
      return;
    }
    sockets.add(socket);
    let sock = socket;
    let secure = implicitTls;
    let buf: Buffer = Buffer.alloc(0);
    let skipping = false;
    const queue: (string | null)[] = [];
    let running = false;
    let paused = false;

    const transport: Pop3Transport = {
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
          // Commands pipelined in clear text after STLS are dropped.
          queue.length = 0;
          buf = Buffer.alloc(0);
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
      remote: socket.remoteAddress ?? null,
    };
    const session = new Pop3Session({ directory, store, logger, tlsAvailable: true }, transport);
    sessions.add(session);

    const pump = async (): Promise<void> => {
      if (running) return;
      running = true;
      while (queue.length && session.state !== 'closed') {
        const line = queue.shift()!;
        try {
          if (line === null) await session.lineTooLong();
          else await session.handle(line);
        } catch (e) {
          logger.warn({ err: e }, 'POP3 connection error');
        }
        if (paused && queue.length < MAX_QUEUED / 4) {
          paused = false;
          sock.resume();
        }
      }
      running = false;
    };

    function onData(data: Buffer): void {
      buf = buf.length ? Buffer.concat([buf, data]) : data;
      for (;;) {
        const nl = buf.indexOf(10);
        if (nl < 0) {
          if (buf.length > MAX_LINE) {
            if (!skipping) queue.push(null);
            skipping = true;
            buf = Buffer.alloc(0);
          }
          break;
        }
        const end = nl > 0 && buf[nl - 1] === 13 ? nl - 1 : nl;
        if (skipping) skipping = false;
        else queue.push(end > MAX_LINE ? null : buf.toString('utf8', 0, end));
        buf = buf.subarray(nl + 1);
      }
      if (queue.length > MAX_QUEUED && !paused) {
        paused = true;
        sock.pause();
      }
      void pump();
    }

    function attach(): void {
      sock.on('data', onData);
      sock.setTimeout(TIMEOUT_MS);
      sock.on('timeout', () => void session.close('Autologout').finally(() => sock.destroy()));
      sock.on('close', () => {
        sessions.delete(session);
        sockets.delete(socket);
      });
    }

    attach();
    void transport.write(session.greeting());
  };

  const plain = net.createServer((s) => serve(s, false));
  const secureServer = tls.createServer({ cert: material.cert, key: material.key, handshakeTimeout: 10_000 }, (s) => serve(s, true));
  secureServer.on('tlsClientError', () => {});
  const listen = (server: net.Server, port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, config.listen, () => resolve((server.address() as net.AddressInfo).port));
    });
  const ports = {
    pop3: await listen(plain, opts.ports?.pop3 ?? config.ports.pop3),
    pop3s: await listen(secureServer, opts.ports?.pop3s ?? config.ports.pop3s),
  };
  const unwatch = directory.onChange(() => {
    for (const s of sessions) void s.recheck().catch(() => {});
  });
  return {
    endpoints: [`pop3://${config.listen}:${ports.pop3}`, `pop3s://${config.listen}:${ports.pop3s}`],
    ports,
    close: async () => {
      unwatch();
      for (const s of sockets) s.destroy();
      await Promise.all([plain, secureServer].map((srv) => new Promise<void>((r) => srv.close(() => r()))));
    },
  };
}
