import type net from 'node:net';
import tls from 'node:tls';

/** What the connection handler does with whichever socket is current (plain, then TLS after an upgrade). */
export interface TransportHooks {
  onData(data: Buffer): void;
  /** runs for the first socket and again for the TLS socket after an upgrade: timeouts, close handling */
  onAttach(socket: net.Socket): void;
  /** runs before the upgrade: anything the client pipelined in clear text must be dropped */
  beforeUpgrade(): void;
}

/**
 * A connection that writes with backpressure and can switch to TLS in place (STARTTLS/STLS).
 * Sessions see only write/startTls/close/secure/remote; the socket underneath may change.
 */
export class TlsUpgradableTransport {
  #socket: net.Socket;
  #secure: boolean;
  readonly remote: string | null;

  constructor(
    socket: net.Socket,
    private readonly opts: { implicitTls: boolean; secureContext: tls.SecureContext },
    private readonly hooks: TransportHooks,
  ) {
    this.#socket = socket;
    this.#secure = opts.implicitTls;
    this.remote = socket.remoteAddress ?? null;
  }

  /** the current socket (the TLS one after an upgrade) */
  get socket(): net.Socket {
    return this.#socket;
  }

  get secure(): boolean {
    return this.#secure;
  }

  /** starts reading; call once the session that answers is in place */
  start(): void {
    this.#socket.on('data', this.hooks.onData);
    this.hooks.onAttach(this.#socket);
  }

  /** resolves when the bytes are accepted (waits for drain under backpressure) */
  write(data: Buffer): Promise<void> {
    const sock = this.#socket;
    return new Promise((resolve) => {
      if (sock.destroyed || !sock.writable) return resolve();
      if (sock.write(data)) return resolve();
      const done = (): void => {
        sock.off('drain', done);
        sock.off('close', done);
        resolve();
      };
      sock.once('drain', done);
      sock.once('close', done);
    });
  }

  /** resolves once the handshake is done, or when the connection closes instead */
  startTls(): Promise<void> {
    return new Promise((resolve) => {
      this.hooks.beforeUpgrade();
      this.#socket.off('data', this.hooks.onData);
      const upgraded = new tls.TLSSocket(this.#socket, { isServer: true, secureContext: this.opts.secureContext });
      upgraded.on('error', () => upgraded.destroy());
      upgraded.once('secure', () => {
        this.#secure = true;
        resolve();
      });
      upgraded.once('close', () => resolve());
      this.#socket = upgraded;
      this.start();
    });
  }

  /** ends gracefully; a peer that does not close within 2 s is cut off */
  close(): void {
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), 2000).unref();
  }
}
