/** ManageSieve wire format (RFC 5804 §4): commands of atoms, quoted strings and literals; responses. Pure. */

/** a command line without its literals */
export const MAX_LINE = 8192;

export type SieveRequest = { words: string[] } | { error: string; fatal: boolean };

/**
 * Splits the byte stream into commands. A literal `{n+}` (or `{n}`: clients must not wait
 * for a continuation in ManageSieve) larger than `maxLiteral` is refused at its header,
 * before its bytes arrive: the connection is then done, nothing more is read.
 */
export class SieveFramer {
  private buf: Buffer = Buffer.alloc(0);
  private dead = false;

  constructor(private readonly maxLiteral: number) {}

  reset(): void {
    this.buf = Buffer.alloc(0);
  }

  *push(data: Buffer): Iterable<SieveRequest> {
    if (this.dead) return;
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
    for (;;) {
      const r = this.parse();
      if (r === null) return;
      if ('error' in r.item && r.item.fatal) {
        this.dead = true;
        this.buf = Buffer.alloc(0);
        yield r.item;
        return;
      }
      this.buf = this.buf.subarray(r.consumed);
      yield r.item;
    }
  }

  /** one command from the front of the buffer; null: more bytes needed */
  private parse(): { item: SieveRequest; consumed: number } | null {
    const b = this.buf;
    const words: string[] = [];
    let pos = 0;
    let lineBytes = 0;
    const tooLong = (): { item: SieveRequest; consumed: number } => ({ item: { error: 'Line too long', fatal: true }, consumed: b.length });
    for (;;) {
      while (b[pos] === 0x20) pos++;
      if (pos >= b.length) return lineBytes + pos > MAX_LINE ? tooLong() : null;
      lineBytes = pos;
      const c = b[pos]!;
      if (c === 0x0d || c === 0x0a) {
        const end = c === 0x0d ? pos + 2 : pos + 1;
        if (end > b.length) return null;
        return { item: { words }, consumed: end };
      }
      if (c === 0x22) {
        let v = '';
        let i = pos + 1;
        const bytes: number[] = [];
        for (;;) {
          if (i >= b.length) return i > MAX_LINE ? tooLong() : null;
          const d = b[i]!;
          if (d === 0x22) break;
          if (d === 0x0d || d === 0x0a) return this.skipLine('Line break inside a quoted string');
          if (d === 0x5c) {
            if (i + 1 >= b.length) return null;
            i++;
          }
          bytes.push(b[i]!);
          i++;
        }
        v = Buffer.from(bytes).toString('utf8');
        words.push(v);
        pos = i + 1;
        continue;
      }
      if (c === 0x7b) {
        const close = b.indexOf('}', pos);
        if (close < 0) return b.length - pos > 32 ? this.skipLine('Bad literal') : null;
        const m = /^\{(\d{1,12})\+?\}$/.exec(b.subarray(pos, close + 1).toString('latin1'));
        if (!m) return this.skipLine('Bad literal');
        const n = Number(m[1]);
        if (n > this.maxLiteral) return { item: { error: `Literal of ${n} bytes is larger than the ${this.maxLiteral} allowed`, fatal: true }, consumed: b.length };
        let start = close + 1;
        if (b[start] === 0x0d) start++;
        if (start >= b.length) return null;
        if (b[start] !== 0x0a) return this.skipLine('Literal header must end the line');
        start++;
        if (b.length < start + n) return null;
        words.push(b.subarray(start, start + n).toString('utf8'));
        pos = start + n;
        continue;
      }
      const m = /^[A-Za-z0-9_.:;/@+=-]+/.exec(b.subarray(pos, Math.min(b.length, pos + 1024)).toString('latin1'));
      if (!m) return this.skipLine('Invalid characters in command');
      if (pos + m[0].length >= b.length) return pos + m[0].length > MAX_LINE ? tooLong() : null;
      words.push(m[0]);
      pos += m[0].length;
    }
  }

  /** a bad command: its line is dropped, the session answers NO */
  private skipLine(error: string): { item: SieveRequest; consumed: number } | null {
    const nl = this.buf.indexOf(0x0a);
    if (nl < 0) return this.buf.length > MAX_LINE ? { item: { error: 'Line too long', fatal: true }, consumed: this.buf.length } : null;
    return { item: { error, fatal: false }, consumed: nl + 1 };
  }
}

/** A quoted string, or a literal when the text cannot be quoted (RFC 5804 §4). */
export function sieveString(s: string): string {
  if (s.length < 1024 && !/["\\\r\n\0]/.test(s)) return `"${s}"`;
  return `{${Buffer.byteLength(s)}}\r\n${s}`;
}

export function response(status: 'OK' | 'NO' | 'BYE', text?: string, code?: string): Buffer {
  return Buffer.from(`${status}${code ? ` (${code})` : ''}${text ? ` ${sieveString(text)}` : ''}\r\n`);
}
