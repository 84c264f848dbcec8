import type { SessionIO } from './transport.ts';

/**
 * A SessionIO without a network, for driving a protocol session in unit tests: it keeps what the
 * session wrote, and STARTTLS simply marks it secure, COMPRESS compressed.
 */
export class MemoryIO implements SessionIO {
  readonly written: Buffer[] = [];
  closed = false;
  deflated = false;
  idleTimeoutMs: number | null = null;

  constructor(
    public secure = false,
    readonly remote: string | null = '192.0.2.1',
  ) {}

  async write(data: Buffer): Promise<void> {
    this.written.push(data);
  }

  async startTls(): Promise<void> {
    this.secure = true;
  }

  /** COMPRESS only marks it: what is written stays readable */
  startDeflate(): void {
    this.deflated = true;
  }

  close(): void {
    this.closed = true;
  }

  setIdleTimeout(ms: number): void {
    this.idleTimeoutMs = ms;
  }

  /** everything written since the last call, as text */
  take(): string {
    const text = Buffer.concat(this.written).toString('latin1');
    this.written.length = 0;
    return text;
  }
}
