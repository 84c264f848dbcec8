import tls from 'node:tls';
import type { Logger } from '@hearth/log';
import { RequestMeter, secondsSince } from '@hearth/metrics';
import { CommandQueue } from './command-queue.ts';
import type { ConnectionLimits } from './limits.ts';
import { listenAll, type ListenerSpec } from './listeners.ts';
import { ConnectionPool, type Refusal } from './pool.ts';
import { TlsUpgradableTransport, type SessionIO } from './transport.ts';

/** Splits a connection's input into the protocol's requests (lines, IMAP commands, LDAP PDUs). */
export interface Framer<Item> {
  push(data: Buffer): Iterable<Item>;
  /** forgets buffered input (after STARTTLS: what came in clear text must not be used) */
  reset(): void;
}

/**
 * What a handled request was, for the request metrics: its command (from a bounded set, e.g.
 * "select", "bind"; "other" for anything unknown) and its outcome ("ok", "no", "bad", an LDAP
 * result name). A request that only continues another (a SASL step, IMAP IDLE's DONE) may leave
 * it to the last step: the layer counts only requests that return one.
 */
export interface RequestResult {
  command: string;
  outcome: string;
}

/** One connection's protocol state: requests in, responses out through its SessionIO. */
export interface LineSession<Item> {
  /** once true, nothing more is handled and waiting requests are dropped */
  readonly closed: boolean;
  /** written when the connection opens; null for protocols where the client speaks first */
  greeting(): Buffer | null;
  handle(item: Item): Promise<RequestResult | void>;
  /** the connection was idle too long: say goodbye (the layer then cuts it) */
  idle(): Promise<void>;
  /** whenever no request is waiting: send what was batched (LDAP) */
  flush?(): Promise<void>;
  /** the directory changed: end the session if its user lost access */
  recheck?(): Promise<void>;
  /** the server is shutting down: say goodbye */
  shutdown?(): Promise<void>;
  /** the connection closed */
  end?(): void;
}

/** Everything the layer needs to know about a protocol. */
export interface LineProtocol<Item, S extends LineSession<Item>> {
  /** for logs, e.g. "IMAP" */
  name: string;
  /** written to a client that gets no slot, e.g. "* BYE Too many connections from your address" */
  refusal(reason: Refusal): Buffer | string;
  framer(): Framer<Item>;
  session(io: SessionIO, listener: ListenerSpec): S;
  /** above this many waiting requests the socket stops reading */
  maxQueued: number;
  /** a request dropped without being handled (connection closed, STARTTLS): release what it holds */
  discard?(item: Item): void;
}

export interface LineServerOptions<Item, S extends LineSession<Item>> {
  protocol: LineProtocol<Item, S>;
  host: string;
  /** for implicit-TLS listeners and STARTTLS; null: neither is offered */
  tls: { cert: string; key: string } | null;
  listeners: ListenerSpec[];
  limits: ConnectionLimits;
  logger: Logger;
}

export interface LineServer<S> {
  /** the bound ports, in the order of `listeners` */
  ports: number[];
  endpoints: string[];
  readonly sessions: ReadonlySet<S>;
  /** asks every session to re-check its user on each directory change; returns the unsubscribe */
  recheckOn(directory: { onChange(listener: () => void): () => void }): () => void;
  /** says goodbye to every session, cuts what is left and stops listening */
  close(): Promise<void>;
}

/**
 * Serves a request/response protocol on its listeners: admission through the connection pool
 * (global and per-address caps, idle and lifetime timeouts), framing, one request at a time in
 * order with backpressure, and STARTTLS through the session's SessionIO.
 */
export async function serveLines<Item, S extends LineSession<Item>>(opts: LineServerOptions<Item, S>): Promise<LineServer<S>> {
  const { protocol, logger } = opts;
  const pool = new ConnectionPool(opts.limits, { logger, protocol: protocol.name });
  const requests = new RequestMeter(protocol.name);
  const secureContext = opts.tls ? tls.createSecureContext({ cert: opts.tls.cert, key: opts.tls.key }) : null;
  const sessions = new Set<S>();

  const listeners = await listenAll({
    host: opts.host,
    tls: opts.tls,
    listeners: opts.listeners,
    onConnection(socket, listener) {
      const slot = pool.admit(socket, { refusal: protocol.refusal, onIdle: () => session.idle() });
      if (!slot) return;
      const framer = protocol.framer();
      const dropQueue = (): void => {
        for (const item of queue.drop()) protocol.discard?.(item);
      };
      const transport = new TlsUpgradableTransport(
        socket,
        { implicitTls: listener.implicitTls, secureContext },
        {
          onData(data) {
            if (!session.closed) queue.enqueue(framer.push(data));
          },
          beforeUpgrade() {
            // Anything pipelined after STARTTLS was sent in clear text: drop it (RFC 3501 §6.2.1, RFC 2595 §4).
            dropQueue();
            framer.reset();
          },
          setIdleTimeout: (ms) => slot.setIdleTimeout(ms),
        },
      );
      const session = protocol.session(transport, listener);
      const queue = new CommandQueue<Item>({
        maxQueued: protocol.maxQueued,
        socket: () => transport.socket,
        closed: () => session.closed,
        handle: async (item) => {
          const start = process.hrtime.bigint();
          const result = await session.handle(item);
          if (result) requests.observe(result.command, result.outcome, secondsSince(start));
        },
        onError: (err) => logger.warn({ err, remote: slot.remote }, `${protocol.name} connection error`),
        whenEmpty: session.flush && (() => session.flush!()),
      });
      sessions.add(session);
      socket.once('close', () => {
        dropQueue();
        framer.reset();
        sessions.delete(session);
        session.end?.();
      });
      transport.start();
      const greeting = session.greeting();
      if (greeting) void transport.write(greeting);
    },
  });

  return {
    ports: listeners.ports,
    endpoints: listeners.endpoints,
    sessions,
    recheckOn: (directory) =>
      directory.onChange(() => {
        for (const s of sessions) void s.recheck?.().catch(() => {});
      }),
    close: async () => {
      // resolves once every connection is gone, hence the goodbyes and the cut in between
      const stopped = listeners.close();
      await Promise.all([...sessions].map((s) => s.shutdown?.().catch(() => {})));
      pool.closeAll();
      await stopped;
    },
  };
}
