import type net from 'node:net';
import tls from 'node:tls';

/**
 * What a protocol session sees of its connection: no socket, so a session can be driven in a
 * unit test by any object with these members.
 */
export interface SessionIO {
  /** resolves when the bytes are accepted (waits for drain under backpressure) */
  write(data: Buffer): Promise<void>;
  /** switches to TLS (STARTTLS/STLS/StartTLS); resolves once the handshake is done or the connection closed */
  startTls(): Promise<void>;
  /** ends gracefully */
  close(): void;
  /** the idle timeout from now on (e.g. longer once logged in) */
  setIdleTimeout(ms: number): void;
  readonly secure: boolean;
  readonly remote: string | null;
}

/** What the connection handler does with whichever socket is current (plain, then TLS after an upgrade). */
export interface TransportHooks {
  onData(data: Buffer): void;
  /** runs before the upgrade: anything the client pipelined in clear text must be dropped */
  beforeUpgrade(): void;
  setIdleTimeout(ms: number): void;
}

/**
 * A connection that writes with backpressure and can switch to TLS in place (STARTTLS/STLS).
 * Sessions see only the SessionIO members; the socket underneath may change.
 */
export class TlsUpgradableTransport implements SessionIO {
  #socket: net.Socket;
  #secure: boolean;
  readonly remote: string | null;

  constructor(
    socket: net.Socket,
    private readonly opts: { implicitTls: boolean; secureContext: tls.SecureContext | null },
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
  }

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

  setIdleTimeout(ms: number): void {
    this.hooks.setIdleTimeout(ms);
  }

  startTls(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.opts.secureContext) throw new Error('no TLS certificate');
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
    const sock = this.#socket;
    sock.end();
    setTimeout(() => sock.destroy(), 2000).unref();
  }
}
