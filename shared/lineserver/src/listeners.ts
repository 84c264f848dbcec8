import net from 'node:net';
import tls from 'node:tls';

export interface ListenPairOptions {
  host: string;
  tls: { cert: string; key: string };
  /** URL schemes of the two listeners, for the endpoints, e.g. ['imap', 'imaps'] */
  schemes: [plain: string, secure: string];
  /** 0 picks a free port */
  ports: { plain: number; secure: number };
  onConnection(socket: net.Socket, implicitTls: boolean): void;
}

export interface ListenerPair {
  ports: { plain: number; secure: number };
  /** human-readable, e.g. "imap://127.0.0.1:143" */
  endpoints: string[];
  /** stops accepting; resolves when both servers have closed */
  close(): Promise<void>;
}

function listen(server: net.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as net.AddressInfo).port));
  });
}

/** A plain listener (upgradable by STARTTLS) and an implicit-TLS one, serving the same protocol. */
export async function listenPair(opts: ListenPairOptions): Promise<ListenerPair> {
  const plain = net.createServer((s) => opts.onConnection(s, false));
  const secure = tls.createServer({ cert: opts.tls.cert, key: opts.tls.key, handshakeTimeout: 10_000 }, (s) => opts.onConnection(s, true));
  // A failed handshake concerns that client only.
  secure.on('tlsClientError', () => {});
  const ports = {
    plain: await listen(plain, opts.ports.plain, opts.host),
    secure: await listen(secure, opts.ports.secure, opts.host),
  };
  return {
    ports,
    endpoints: [`${opts.schemes[0]}://${opts.host}:${ports.plain}`, `${opts.schemes[1]}://${opts.host}:${ports.secure}`],
    close: () => Promise.all([plain, secure].map((srv) => new Promise<void>((r) => srv.close(() => r())))).then(() => {}),
  };
}
