/**
 * The subset of BER (X.690) that LDAP uses: single-byte tags, definite lengths,
 * INTEGER/ENUMERATED/BOOLEAN/OCTET STRING and constructed sequences (the NULL of an
 * UnbindRequest is read as an empty element).
 * The reader is strict (no indefinite lengths, no element running past its parent)
 * because every byte it sees comes from an untrusted client.
 */

/** Largest LDAP PDU a client may send; bigger ones close the connection. */
export const MAX_PDU_BYTES = 1024 * 1024;

export class BerError extends Error {}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  OCTET_STRING: 0x04,
  ENUMERATED: 0x0a,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/**
 * Length of the complete TLV at the start of buf, or 0 when more bytes are needed.
 * Throws BerError for a malformed header or one announcing more than maxBytes.
 */
export function pduLength(buf: Buffer, maxBytes = MAX_PDU_BYTES): number {
  if (buf.length < 2) return 0;
  if ((buf[0]! & 0x1f) === 0x1f) throw new BerError('multi-byte tags are not used by LDAP');
  const first = buf[1]!;
  let len: number;
  let header: number;
  if (first < 0x80) {
    len = first;
    header = 2;
  } else {
    const n = first & 0x7f;
    if (n === 0) throw new BerError('indefinite length is not allowed');
    if (n > 4) throw new BerError('length field too long');
    if (buf.length < 2 + n) return 0;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[2 + i]!;
    header = 2 + n;
  }
  if (header + len > maxBytes) throw new BerError(`PDU of ${header + len} bytes exceeds the ${maxBytes}-byte limit`);
  return buf.length >= header + len ? header + len : 0;
}

export class BerReader {
  constructor(
    readonly buf: Buffer,
    public pos = 0,
    readonly end = buf.length,
  ) {}

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** The next tag without consuming it, or -1 at the end. */
  peek(): number {
    return this.pos < this.end ? this.buf[this.pos]! : -1;
  }

  /** Reads a tag and length; returns [tag, contentStart, contentEnd] and moves past the element. */
  private element(expected: number | null): [number, number, number] {
    if (this.pos >= this.end) throw new BerError('unexpected end of data');
    const tag = this.buf[this.pos]!;
    if ((tag & 0x1f) === 0x1f) throw new BerError('multi-byte tags are not used by LDAP');
    if (expected !== null && tag !== expected) throw new BerError(`expected tag 0x${expected.toString(16)}, got 0x${tag.toString(16)}`);
    let p = this.pos + 1;
    if (p >= this.end) throw new BerError('truncated length');
    const first = this.buf[p++]!;
    let len: number;
    if (first < 0x80) len = first;
    else {
      const n = first & 0x7f;
      if (n === 0) throw new BerError('indefinite length is not allowed');
      if (n > 4) throw new BerError('length field too long');
      if (p + n > this.end) throw new BerError('truncated length');
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + this.buf[p++]!;
    }
    if (p + len > this.end) throw new BerError('element runs past its container');
    this.pos = p + len;
    return [tag, p, p + len];
  }

  /** A reader over the contents of the next element (which must carry `tag` when given). */
  enter(tag: number | null = TAG.SEQUENCE): BerReader {
    const [, start, end] = this.element(tag);
    return new BerReader(this.buf, start, end);
  }

  /** Like enter(), also returning the tag found. */
  enterAny(): [number, BerReader] {
    const [tag, start, end] = this.element(null);
    return [tag, new BerReader(this.buf, start, end)];
  }

  skip(): void {
    this.element(null);
  }

  readInt(tag: number = TAG.INTEGER): number {
    const [, start, end] = this.element(tag);
    const n = end - start;
    if (n < 1 || n > 4) throw new BerError('integer out of range');
    let v = this.buf[start]! & 0x80 ? -1 : 0;
    // Seeding with -1 for a set sign bit yields the two's complement value.
    for (let i = start; i < end; i++) v = v * 256 + this.buf[i]!;
    return v;
  }

  readEnum(): number {
    return this.readInt(TAG.ENUMERATED);
  }

  readBool(tag: number = TAG.BOOLEAN): boolean {
    const [, start, end] = this.element(tag);
    if (end - start !== 1) throw new BerError('boolean must be one byte');
    return this.buf[start] !== 0;
  }

  readOctets(tag: number = TAG.OCTET_STRING): Buffer {
    const [, start, end] = this.element(tag);
    return this.buf.subarray(start, end);
  }

  readString(tag: number = TAG.OCTET_STRING): string {
    const [, start, end] = this.element(tag);
    return this.buf.toString('utf8', start, end);
  }

  /** The remaining bytes of this reader as a string (for primitive CHOICE members already entered). */
  rest(): string {
    const s = this.buf.toString('utf8', this.pos, this.end);
    this.pos = this.end;
    return s;
  }
}

/** Bytes of a definite length field for `len` (the tag not included). */
export function lengthBytes(len: number): number {
  return len < 0x80 ? 1 : len < 0x100 ? 2 : len < 0x10000 ? 3 : len < 0x1000000 ? 4 : 5;
}

/**
 * Appends BER into one growing buffer. Sequences reserve one length byte and shift
 * their contents only when they turn out longer than 127 bytes.
 */
export class BerWriter {
  private buf: Buffer;
  private pos = 0;
  private readonly stack: number[] = [];

  constructor(size = 512) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  private writeLength(len: number): void {
    const n = lengthBytes(len);
    this.ensure(n);
    if (n === 1) {
      this.buf[this.pos++] = len;
      return;
    }
    this.buf[this.pos++] = 0x80 | (n - 1);
    for (let i = n - 2; i >= 0; i--) this.buf[this.pos++] = (len / 2 ** (8 * i)) & 0xff;
  }

  /** Bytes written so far. */
  get length(): number {
    return this.pos;
  }

  startSequence(tag: number = TAG.SEQUENCE): this {
    this.ensure(2);
    this.buf[this.pos++] = tag;
    this.stack.push(this.pos);
    this.pos += 1;
    return this;
  }

  endSequence(): this {
    const at = this.stack.pop();
    if (at === undefined) throw new Error('endSequence without startSequence');
    const len = this.pos - at - 1;
    const n = lengthBytes(len);
    if (n === 1) {
      this.buf[at] = len;
      return this;
    }
    this.ensure(n - 1);
    this.buf.copyWithin(at + n, at + 1, this.pos);
    this.buf[at] = 0x80 | (n - 1);
    for (let i = 0; i < n - 1; i++) this.buf[at + 1 + i] = (len / 2 ** (8 * (n - 2 - i))) & 0xff;
    this.pos += n - 1;
    return this;
  }

  writeInt(value: number, tag: number = TAG.INTEGER): this {
    const v = value | 0;
    let n = 4;
    // Drop leading bytes that only repeat the sign.
    while (n > 1) {
      const top = (v >> (8 * (n - 1))) & 0xff;
      const nextSign = (v >> (8 * (n - 2))) & 0x80;
      if ((top === 0x00 && nextSign === 0) || (top === 0xff && nextSign !== 0)) n--;
      else break;
    }
    this.ensure(2 + n);
    this.buf[this.pos++] = tag;
    this.buf[this.pos++] = n;
    for (let i = n - 1; i >= 0; i--) this.buf[this.pos++] = (v >> (8 * i)) & 0xff;
    return this;
  }

  writeEnum(value: number): this {
    return this.writeInt(value, TAG.ENUMERATED);
  }

  writeBool(value: boolean, tag: number = TAG.BOOLEAN): this {
    this.ensure(3);
    this.buf[this.pos++] = tag;
    this.buf[this.pos++] = 1;
    this.buf[this.pos++] = value ? 0xff : 0;
    return this;
  }

  writeString(value: string, tag: number = TAG.OCTET_STRING): this {
    const len = Buffer.byteLength(value);
    this.ensure(1);
    this.buf[this.pos++] = tag;
    this.writeLength(len);
    this.ensure(len);
    this.pos += this.buf.write(value, this.pos, 'utf8');
    return this;
  }

  writeOctets(value: Buffer, tag: number = TAG.OCTET_STRING): this {
    this.ensure(1);
    this.buf[this.pos++] = tag;
    this.writeLength(value.length);
    return this.writeRaw(value);
  }

  /** Appends bytes that are already BER. */
  writeRaw(value: Buffer): this {
    this.ensure(value.length);
    value.copy(this.buf, this.pos);
    this.pos += value.length;
    return this;
  }

  /** A copy of what was written (the writer can be reused after reset()). */
  toBuffer(): Buffer {
    if (this.stack.length) throw new Error('unterminated sequence');
    return Buffer.from(this.buf.subarray(0, this.pos));
  }

  reset(): this {
    this.pos = 0;
    this.stack.length = 0;
    return this;
  }
}
