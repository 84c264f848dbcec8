import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * STUN (RFC 8489) and TURN (RFC 8656) wire format: message header, attributes,
 * MESSAGE-INTEGRITY(-SHA256), FINGERPRINT and ChannelData framing. Pure functions over
 * Buffers; no sockets, no state.
 */

export const MAGIC_COOKIE = 0x2112a442;
export const HEADER_LENGTH = 20;
export const FINGERPRINT_XOR = 0x5354554e;
/** Nothing legitimate needs more; larger input is dropped before any work. */
export const MAX_MESSAGE_LENGTH = 65535 + HEADER_LENGTH;

export const Method = {
  Binding: 0x001,
  Allocate: 0x003,
  Refresh: 0x004,
  Send: 0x006,
  Data: 0x007,
  CreatePermission: 0x008,
  ChannelBind: 0x009,
} as const;

export const Class = { Request: 0, Indication: 1, Success: 2, Error: 3 } as const;
export type MessageClass = (typeof Class)[keyof typeof Class];

export const Attr = {
  MappedAddress: 0x0001,
  Username: 0x0006,
  MessageIntegrity: 0x0008,
  ErrorCode: 0x0009,
  UnknownAttributes: 0x000a,
  ChannelNumber: 0x000c,
  Lifetime: 0x000d,
  XorPeerAddress: 0x0012,
  Data: 0x0013,
  Realm: 0x0014,
  Nonce: 0x0015,
  XorRelayedAddress: 0x0016,
  RequestedAddressFamily: 0x0017,
  EvenPort: 0x0018,
  RequestedTransport: 0x0019,
  DontFragment: 0x001a,
  MessageIntegritySha256: 0x001c,
  PasswordAlgorithm: 0x001d,
  Userhash: 0x001e,
  XorMappedAddress: 0x0020,
  ReservationToken: 0x0022,
  Priority: 0x0024,
  UseCandidate: 0x0025,
  AdditionalAddressFamily: 0x8000,
  AddressErrorCode: 0x8001,
  PasswordAlgorithms: 0x8002,
  Software: 0x8022,
  AlternateServer: 0x8023,
  Fingerprint: 0x8028,
  IceControlled: 0x8029,
  IceControlling: 0x802a,
  ResponseOrigin: 0x802b,
  OtherAddress: 0x802c,
} as const;

export const PasswordAlgorithmId = { Md5: 0x0001, Sha256: 0x0002 } as const;

/** Attributes 0x0000–0x7FFF must be understood by the receiver (RFC 8489 §14). */
export function isComprehensionRequired(type: number): boolean {
  return type < 0x8000;
}

export function messageType(method: number, cls: MessageClass): number {
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | ((cls & 1) << 4) | ((cls & 2) << 7);
}

export function methodOf(type: number): number {
  return (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
}

export function classOf(type: number): MessageClass {
  return (((type >> 4) & 1) | ((type >> 7) & 2)) as MessageClass;
}

export interface AttributeRef {
  type: number;
  /** offset of the value inside `raw` */
  offset: number;
  length: number;
}

export interface StunMessage {
  method: number;
  cls: MessageClass;
  /** 12 bytes, a view into raw */
  transactionId: Buffer;
  attributes: AttributeRef[];
  /** the whole message (header + attributes), a view into the input */
  raw: Buffer;
}

/** Total length of the STUN message starting at buf[offset] per its header, or -1 when the header is not there yet. */
export function stunLengthAt(buf: Buffer, offset = 0): number {
  if (buf.length - offset < 4) return -1;
  return HEADER_LENGTH + buf.readUInt16BE(offset + 2);
}

/**
 * Parses one complete STUN message (exactly `buf`), or returns null when it is not a
 * well-formed one: the caller drops it silently. Checks the FINGERPRINT when present.
 * Attributes after MESSAGE-INTEGRITY other than MESSAGE-INTEGRITY-SHA256 and FINGERPRINT
 * are ignored, as RFC 8489 §14.5 requires.
 */
export function parseMessage(buf: Buffer): StunMessage | null {
  if (buf.length < HEADER_LENGTH || buf.length > MAX_MESSAGE_LENGTH) return null;
  const type = buf.readUInt16BE(0);
  if (type & 0xc000) return null;
  const length = buf.readUInt16BE(2);
  if (length % 4 !== 0 || length + HEADER_LENGTH !== buf.length) return null;
  if (buf.readUInt32BE(4) !== MAGIC_COOKIE) return null;
  const attributes: AttributeRef[] = [];
  let pos = HEADER_LENGTH;
  let afterIntegrity = false;
  while (pos < buf.length) {
    if (pos + 4 > buf.length) return null;
    const at = buf.readUInt16BE(pos);
    const al = buf.readUInt16BE(pos + 2);
    const valueAt = pos + 4;
    if (valueAt + al > buf.length) return null;
    const next = valueAt + ((al + 3) & ~3);
    if (next > buf.length) return null;
    if (at === Attr.Fingerprint) {
      if (al !== 4 || next !== buf.length) return null;
      const expected = (crc32(withLength(buf, pos, 8)) ^ FINGERPRINT_XOR) >>> 0;
      if (buf.readUInt32BE(valueAt) !== expected) return null;
      attributes.push({ type: at, offset: valueAt, length: al });
    } else if (!afterIntegrity || at === Attr.MessageIntegritySha256) {
      attributes.push({ type: at, offset: valueAt, length: al });
      if (at === Attr.MessageIntegrity || at === Attr.MessageIntegritySha256) afterIntegrity = true;
    }
    pos = next;
  }
  return { method: methodOf(type), cls: classOf(type), transactionId: buf.subarray(8, 20), attributes, raw: buf };
}

/** The message from its start up to `end`, with the header length rewritten as if it ended `extra` bytes after `end`. */
function withLength(buf: Buffer, end: number, extra: number): Buffer {
  const copy = Buffer.from(buf.subarray(0, end));
  copy.writeUInt16BE(end - HEADER_LENGTH + extra, 2);
  return copy;
}

export function findAttr(msg: StunMessage, type: number): AttributeRef | undefined {
  for (const a of msg.attributes) if (a.type === type) return a;
  return undefined;
}

export function attrValue(msg: StunMessage, type: number): Buffer | undefined {
  const a = findAttr(msg, type);
  return a ? msg.raw.subarray(a.offset, a.offset + a.length) : undefined;
}

export function attrString(msg: StunMessage, type: number): string | undefined {
  return attrValue(msg, type)?.toString('utf8');
}

export function attrUint32(msg: StunMessage, type: number): number | undefined {
  const v = attrValue(msg, type);
  return v && v.length === 4 ? v.readUInt32BE(0) : undefined;
}

/** Types of comprehension-required attributes the receiver does not know (for a 420 response). */
export function unknownRequired(msg: StunMessage, known: ReadonlySet<number>): number[] {
  const out: number[] = [];
  for (const a of msg.attributes) if (isComprehensionRequired(a.type) && !known.has(a.type) && !out.includes(a.type)) out.push(a.type);
  return out;
}

// ---- integrity ----

export type IntegrityKind = 'sha1' | 'sha256';

/** Which integrity attribute the message carries (SHA-256 preferred when both). */
export function integrityKind(msg: StunMessage): IntegrityKind | null {
  if (findAttr(msg, Attr.MessageIntegritySha256)) return 'sha256';
  if (findAttr(msg, Attr.MessageIntegrity)) return 'sha1';
  return null;
}

/** Checks MESSAGE-INTEGRITY-SHA256 if present, else MESSAGE-INTEGRITY, with the given key. */
export function checkIntegrity(msg: StunMessage, key: Buffer): boolean {
  const sha256 = findAttr(msg, Attr.MessageIntegritySha256);
  const a = sha256 ?? findAttr(msg, Attr.MessageIntegrity);
  if (!a) return false;
  if (sha256 ? a.length < 16 || a.length > 32 || a.length % 4 !== 0 : a.length !== 20) return false;
  const start = a.offset - 4;
  const mac = createHmac(sha256 ? 'sha256' : 'sha1', key)
    .update(withLength(msg.raw, start, 4 + a.length))
    .digest()
    .subarray(0, a.length);
  return timingSafeEqual(mac, msg.raw.subarray(a.offset, a.offset + a.length));
}

/** Long-term credential key (RFC 8489 §9.2.2): MD5 or SHA-256 of "username:realm:password". */
export function longTermKey(username: string, realm: string, password: string, algorithm: 'md5' | 'sha256' = 'md5'): Buffer {
  return createHash(algorithm).update(`${username}:${realm}:${password}`, 'utf8').digest();
}

// ---- encoding ----

export interface AddressValue {
  family: 4 | 6;
  address: string;
  port: number;
}

export interface OutgoingMessage {
  method: number;
  cls: MessageClass;
  transactionId: Buffer;
  attributes: [type: number, value: Buffer][];
}

export interface EncodeOptions {
  /** appends MESSAGE-INTEGRITY (sha1) or MESSAGE-INTEGRITY-SHA256 computed with this key */
  integrity?: { key: Buffer; kind: IntegrityKind };
  fingerprint?: boolean;
}

export function encodeMessage(m: OutgoingMessage, opts: EncodeOptions = {}): Buffer {
  let size = HEADER_LENGTH;
  for (const [, v] of m.attributes) size += 4 + ((v.length + 3) & ~3);
  const macLength = opts.integrity ? (opts.integrity.kind === 'sha256' ? 32 : 20) : 0;
  const total = size + (macLength ? 4 + macLength : 0) + (opts.fingerprint ? 8 : 0);
  if (total > MAX_MESSAGE_LENGTH) throw new RangeError('STUN message too large');
  const buf = Buffer.alloc(total);
  buf.writeUInt16BE(messageType(m.method, m.cls), 0);
  buf.writeUInt32BE(MAGIC_COOKIE, 4);
  m.transactionId.copy(buf, 8, 0, 12);
  let pos = HEADER_LENGTH;
  for (const [t, v] of m.attributes) {
    buf.writeUInt16BE(t, pos);
    buf.writeUInt16BE(v.length, pos + 2);
    v.copy(buf, pos + 4);
    pos += 4 + ((v.length + 3) & ~3);
  }
  if (opts.integrity) {
    buf.writeUInt16BE(pos + 4 + macLength - HEADER_LENGTH, 2);
    const mac = createHmac(opts.integrity.kind === 'sha256' ? 'sha256' : 'sha1', opts.integrity.key)
      .update(buf.subarray(0, pos))
      .digest();
    buf.writeUInt16BE(opts.integrity.kind === 'sha256' ? Attr.MessageIntegritySha256 : Attr.MessageIntegrity, pos);
    buf.writeUInt16BE(macLength, pos + 2);
    mac.copy(buf, pos + 4);
    pos += 4 + macLength;
  }
  if (opts.fingerprint) {
    buf.writeUInt16BE(pos + 8 - HEADER_LENGTH, 2);
    const crc = (crc32(buf.subarray(0, pos)) ^ FINGERPRINT_XOR) >>> 0;
    buf.writeUInt16BE(Attr.Fingerprint, pos);
    buf.writeUInt16BE(4, pos + 2);
    buf.writeUInt32BE(crc, pos + 4);
    pos += 8;
  }
  buf.writeUInt16BE(pos - HEADER_LENGTH, 2);
  return buf;
}

export function uint32Value(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

/** REQUESTED-TRANSPORT / CHANNEL-NUMBER style: a 16-bit or 8-bit value followed by RFFU zeros. */
export function channelNumberValue(channel: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(channel, 0);
  return b;
}

export function requestedTransportValue(protocol: number): Buffer {
  const b = Buffer.alloc(4);
  b[0] = protocol;
  return b;
}

export function errorCodeValue(code: number, reason: string): Buffer {
  const text = Buffer.from(reason, 'utf8');
  const b = Buffer.alloc(4 + text.length);
  b[2] = Math.floor(code / 100);
  b[3] = code % 100;
  text.copy(b, 4);
  return b;
}

export function parseErrorCode(v: Buffer): { code: number; reason: string } | null {
  if (v.length < 4) return null;
  return { code: (v[2]! & 7) * 100 + v[3]!, reason: v.subarray(4).toString('utf8') };
}

export function unknownAttributesValue(types: number[]): Buffer {
  const b = Buffer.alloc(types.length * 2);
  types.forEach((t, i) => b.writeUInt16BE(t, i * 2));
  return b;
}

/** PASSWORD-ALGORITHMS value: each algorithm with an empty parameter list. */
export function passwordAlgorithmsValue(ids: number[]): Buffer {
  const b = Buffer.alloc(ids.length * 4);
  ids.forEach((id, i) => b.writeUInt16BE(id, i * 4));
  return b;
}

export function passwordAlgorithmValue(id: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(id, 0);
  return b;
}

/** The algorithm ids in a PASSWORD-ALGORITHMS or PASSWORD-ALGORITHM value, or null when malformed. */
export function parsePasswordAlgorithms(v: Buffer): number[] | null {
  const out: number[] = [];
  let pos = 0;
  while (pos < v.length) {
    if (pos + 4 > v.length) return null;
    const id = v.readUInt16BE(pos);
    const len = v.readUInt16BE(pos + 2);
    pos += 4 + ((len + 3) & ~3);
    if (pos > v.length) return null;
    out.push(id);
  }
  return out;
}

/** XOR-MAPPED-ADDRESS / XOR-PEER-ADDRESS / XOR-RELAYED-ADDRESS value. */
export function xorAddressValue(a: AddressValue, transactionId: Buffer): Buffer {
  const raw = ipBytes(a.address, a.family);
  const b = Buffer.alloc(4 + raw.length);
  b[1] = a.family === 4 ? 0x01 : 0x02;
  b.writeUInt16BE((a.port ^ (MAGIC_COOKIE >>> 16)) & 0xffff, 2);
  for (let i = 0; i < raw.length; i++) b[4 + i] = raw[i]! ^ xorPad(i, transactionId);
  return b;
}

export function parseXorAddress(v: Buffer, transactionId: Buffer): AddressValue | null {
  if (v.length < 4) return null;
  const fam = v[1];
  const n = fam === 0x01 ? 4 : fam === 0x02 ? 16 : 0;
  if (!n || v.length !== 4 + n) return null;
  const raw = Buffer.alloc(n);
  for (let i = 0; i < n; i++) raw[i] = v[4 + i]! ^ xorPad(i, transactionId);
  return { family: n === 4 ? 4 : 6, address: ipString(raw), port: v.readUInt16BE(2) ^ (MAGIC_COOKIE >>> 16) };
}

/** Byte i of magic cookie followed by the transaction id. */
function xorPad(i: number, transactionId: Buffer): number {
  return i < 4 ? (MAGIC_COOKIE >>> (24 - 8 * i)) & 0xff : transactionId[i - 4]!;
}

export function ipBytes(address: string, family: 4 | 6): Buffer {
  if (family === 4) return Buffer.from(address.split('.').map((p) => Number(p)));
  const b = Buffer.alloc(16);
  // a dotted IPv4 tail (::ffff:1.2.3.4, 64:ff9b::1.2.3.4) is the last two groups
  const dottedTail = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (dottedTail) {
    const v4 = ipBytes(dottedTail[2]!, 4);
    address = `${dottedTail[1]}${v4.readUInt16BE(0).toString(16)}:${v4.readUInt16BE(2).toString(16)}`;
  }
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const hs = head ? head.split(':') : [];
  const ts = tail ? tail.split(':') : [];
  const groups = tail === undefined ? hs : [...hs, ...Array<string>(8 - hs.length - ts.length).fill('0'), ...ts];
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16) & 0xffff, i * 2));
  return b;
}

export function ipString(raw: Buffer): string {
  if (raw.length === 4) return `${raw[0]}.${raw[1]}.${raw[2]}.${raw[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(raw.readUInt16BE(i));
  // RFC 5952 form: the longest run (>= 2) of zero groups becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (best < 0) return hex(groups);
  return `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`;
}

// ---- ChannelData (RFC 8656 §12.4) ----

export const CHANNEL_MIN = 0x4000;
/** RFC 8656 narrowed the range to 0x4FFF, but RFC 5766 clients (coturn's among them) still pick up to 0x7FFE. */
export const CHANNEL_MAX = 0x7ffe;
export const CHANNEL_HEADER = 4;

export function isChannelData(buf: Buffer): boolean {
  return buf.length >= CHANNEL_HEADER && (buf[0]! & 0xc0) === 0x40;
}

/** Size of the ChannelData frame at buf[offset] on a stream (padded to 4), or -1 when incomplete header. */
export function channelFrameLengthAt(buf: Buffer, offset = 0): number {
  if (buf.length - offset < CHANNEL_HEADER) return -1;
  return CHANNEL_HEADER + ((buf.readUInt16BE(offset + 2) + 3) & ~3);
}
