import type net from 'node:net';
import tls from 'node:tls';
import zlib from 'node:zlib';

/**
 * What a protocol session sees of its connection: no socket, so a session can be driven in a
 * unit test by any object with these members.
 */
export interface SessionIO {
  /** resolves when the bytes are accepted (waits for drain under backpressure) */
  write(data: Buffer): Promise<void>;
  /** switches to TLS (STARTTLS/STLS/StartTLS); resolves once the handshake is done or the connection closed */
  startTls(): Promise<void>;
  /**
   * From now on both directions are raw DEFLATE streams (IMAP COMPRESS=DEFLATE, RFC 4978), each
   * write flushed so the peer can read it at once. Call it synchronously after writing the last
   * uncompressed response (its bytes are in the socket then), before anything else is written.
   */
  startDeflate(): void;
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
  #deflate: zlib.DeflateRaw | null = null;
  #inflate: zlib.InflateRaw | null = null;
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
    this.#socket.on('data', this.#receive);
  }

  /** bytes from the socket: to the protocol's framer, through the inflater once compressed */
  #receive = (data: Buffer): void => {
    if (this.#inflate) this.#inflate.write(data);
    else this.hooks.onData(data);
  };

  write(data: Buffer): Promise<void> {
    const sock = this.#socket;
    return new Promise((resolve) => {
      if (sock.destroyed || !sock.writable) return resolve();
      if (this.#deflate) {
        // the flush never completes once the socket closes and the stream is destroyed
        const closed = (): void => resolve();
        sock.once('close', closed);
        this.#deflate.write(data);
        // a sync flush ends the compressed bytes on a boundary the peer can decode now
        this.#deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => {
          sock.off('close', closed);
          drained(sock, resolve);
        });
        return;
      }
      if (sock.write(data)) return resolve();
      drained(sock, resolve);
    });
  }

  startDeflate(): void {
    if (this.#deflate) throw new Error('already compressed');
    const sock = this.#socket;
    const deflate = zlib.createDeflateRaw();
    const inflate = zlib.createInflateRaw();
    deflate.on('data', (chunk: Buffer) => {
      if (!sock.destroyed && sock.writable) sock.write(chunk);
    });
    inflate.on('data', (chunk: Buffer) => this.hooks.onData(chunk));
    // a peer whose stream does not inflate cannot be understood any more
    inflate.on('error', () => sock.destroy());
    deflate.on('error', () => sock.destroy());
    sock.once('close', () => {
      deflate.destroy();
      inflate.destroy();
    });
    this.#deflate = deflate;
    this.#inflate = inflate;
  }

  setIdleTimeout(ms: number): void {
    this.hooks.setIdleTimeout(ms);
  }

  startTls(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.opts.secureContext) throw new Error('no TLS certificate');
      this.hooks.beforeUpgrade();
      this.#socket.off('data', this.#receive);
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

/** resolves once the socket takes more (at once when it has room) or closes */
function drained(sock: net.Socket, resolve: () => void): void {
  if (!sock.writableNeedDrain) return resolve();
  const done = (): void => {
    sock.off('drain', done);
    sock.off('close', done);
    resolve();
  };
  sock.once('drain', done);
  sock.once('close', done);
}
