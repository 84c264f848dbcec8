import net from 'node:net';
import tls from 'node:tls';

/** One listening port: `implicitTls` ones do the TLS handshake before the protocol sees the socket. */
export interface ListenerSpec {
  /** URL scheme for the endpoint list, e.g. "imaps" */
  scheme: string;
  /** 0 picks a free port */
  port: number;
  implicitTls: boolean;
  /** appended to the endpoint, e.g. "(inbound MX)" */
  note?: string;
}

export interface ListenOptions<L extends ListenerSpec> {
  host: string;
  /** needed when any listener has implicitTls */
  tls: { cert: string; key: string } | null;
  listeners: L[];
  onConnection(socket: net.Socket, listener: L): void;
}

export interface Listeners {
  /** the bound ports, in the order of `listeners` */
  ports: number[];
  /** human-readable, e.g. "imap://127.0.0.1:143" */
  endpoints: string[];
  /** stops accepting; resolves when every server has closed */
  close(): Promise<void>;
}

function bind(server: net.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/** Opens the listeners of one daemon (plain ones upgradable by STARTTLS, implicit-TLS ones). */
export async function listenAll<L extends ListenerSpec>(opts: ListenOptions<L>): Promise<Listeners> {
  const servers: net.Server[] = [];
  const close = (): Promise<void> => Promise.all(servers.map((srv) => new Promise<void>((r) => srv.close(() => r())))).then(() => {});
  const ports: number[] = [];
  try {
    for (const l of opts.listeners) {
      let server: net.Server;
      if (l.implicitTls) {
        if (!opts.tls) throw new Error(`${l.scheme} needs a TLS certificate`);
        server = tls.createServer({ cert: opts.tls.cert, key: opts.tls.key, handshakeTimeout: 10_000 }, (s) => opts.onConnection(s, l));
        // A failed handshake concerns that client only.
        server.on('tlsClientError', () => {});
      } else {
        server = net.createServer((s) => opts.onConnection(s, l));
      }
      servers.push(server);
      ports.push(await bind(server, l.port, opts.host));
    }
  } catch (err) {
    await close();
    throw err;
  }
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    ports,
    endpoints: opts.listeners.map((l, i) => `${l.scheme}://${host}:${ports[i]}${l.note ? ` ${l.note}` : ''}`),
    close,
  };
}
