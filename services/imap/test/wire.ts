import net from 'node:net';
import tls from 'node:tls';

/** A raw IMAP/POP3 connection for tests: send bytes, wait for text to show up. */
export class Wire {
  private buf = '';
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('error', () => {});
  }

  /** `from`: the local address to connect from (any 127.0.0.0/8 address is this host); `host` that of the server (127.0.0.1) */
  static async connect(port: number, opts: { tls?: boolean; ca?: string; from?: string; host?: string } = {}): Promise<Wire> {
    const raw = net.connect({ port, host: opts.host ?? '127.0.0.1', localAddress: opts.from });
    const socket = opts.tls ? tls.connect({ socket: raw, ca: opts.ca, servername: 'localhost' }) : raw;
    await new Promise<void>((resolve, reject) => {
      socket.once(opts.tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    return new Wire(socket);
  }

  /** Everything received so far, and forgets it. */
  take(): string {
    const b = this.buf;
    this.buf = '';
    return b;
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Waits until the received text matches, returns it all and forgets it. */
  async until(re: RegExp, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!re.test(this.buf)) {
      if (this.closed) throw new Error(`connection closed while waiting for ${re}; got: ${this.buf.slice(-500)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${re}; got: ${this.buf.slice(-500)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.take();
  }

  /** Sends `tag command` and returns the response up to the tagged line. */
  async cmd(tag: string, command: string | Buffer, timeoutMs = 5000): Promise<string> {
    this.write(typeof command === 'string' ? `${tag} ${command}\r\n` : Buffer.concat([Buffer.from(`${tag} `), command, Buffer.from('\r\n')]));
    return this.until(new RegExp(`(^|\\r\\n)${tag} (OK|NO|BAD)[^\\r\\n]*\\r\\n`), timeoutMs);
  }

  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('connection still open');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
