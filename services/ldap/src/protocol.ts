import { BerError, BerReader, BerWriter, lengthBytes, TAG } from './ber.ts';
import { decodeFilter, FilterError, normalizeAttr, type Filter } from './filter.ts';

/** LDAPv3 messages (RFC 4511): what the server decodes and the responses it encodes. */

export const OP = {
  bindRequest: 0x60,
  bindResponse: 0x61,
  unbindRequest: 0x42,
  searchRequest: 0x63,
  searchResultEntry: 0x64,
  searchResultDone: 0x65,
  modifyRequest: 0x66,
  modifyResponse: 0x67,
  addRequest: 0x68,
  addResponse: 0x69,
  delRequest: 0x4a,
  delResponse: 0x6b,
  modDNRequest: 0x6c,
  modDNResponse: 0x6d,
  compareRequest: 0x6e,
  compareResponse: 0x6f,
  abandonRequest: 0x50,
  extendedRequest: 0x77,
  extendedResponse: 0x78,
} as const;

export const RESULT = {
  success: 0,
  operationsError: 1,
  protocolError: 2,
  timeLimitExceeded: 3,
  sizeLimitExceeded: 4,
  compareFalse: 5,
  compareTrue: 6,
  authMethodNotSupported: 7,
  unavailableCriticalExtension: 12,
  noSuchAttribute: 16,
  constraintViolation: 19,
  noSuchObject: 32,
  invalidDNSyntax: 34,
  invalidCredentials: 49,
  insufficientAccessRights: 50,
  busy: 51,
  unavailable: 52,
  unwillingToPerform: 53,
  other: 80,
} as const;

export const OID = {
  pagedResults: '1.2.840.113556.1.4.319',
  manageDsaIT: '2.16.840.1.113730.3.4.2',
  whoAmI: '1.3.6.1.4.1.4203.1.11.3',
  passwordModify: '1.3.6.1.4.1.4203.1.11.1',
  startTls: '1.3.6.1.4.1.1466.20037',
  noticeOfDisconnection: '1.3.6.1.4.1.1466.20036',
} as const;

export interface Control {
  oid: string;
  critical: boolean;
  value: Buffer | null;
}

/** children (3) is the subordinate-subtree scope OpenLDAP clients send for `-s children`. */
export const SCOPE = { base: 0, one: 1, sub: 2, children: 3 } as const;

export interface SearchRequest {
  op: 'search';
  base: string;
  scope: number;
  sizeLimit: number;
  timeLimit: number;
  typesOnly: boolean;
  filter: Filter;
  /** as sent, for the response; selection uses normalizeAttr() */
  attributes: string[];
}

export type Request =
  | { op: 'bind'; version: number; name: string; password: Buffer | null; saslMechanism: string | null }
  | { op: 'unbind' }
  | SearchRequest
  | { op: 'compare'; dn: string; attr: string; value: string }
  | { op: 'extended'; oid: string; value: Buffer | null }
  | { op: 'abandon'; id: number }
  /** add/modify/delete/modDN: decoded only far enough to refuse them */
  | { op: 'write'; responseTag: number };

export interface Message {
  id: number;
  req: Request;
  controls: Control[];
}

/**
 * A request whose envelope decoded (so it can be answered) but whose body did not:
 * the server answers it with protocolError and keeps the connection.
 */
export class OperationError extends BerError {
  constructor(
    message: string,
    readonly id: number,
    readonly responseTag: number,
  ) {
    super(message);
  }
}

const RESPONSE_FOR: Record<number, number> = {
  [OP.bindRequest]: OP.bindResponse,
  [OP.searchRequest]: OP.searchResultDone,
  [OP.modifyRequest]: OP.modifyResponse,
  [OP.addRequest]: OP.addResponse,
  [OP.delRequest]: OP.delResponse,
  [OP.modDNRequest]: OP.modDNResponse,
  [OP.compareRequest]: OP.compareResponse,
  [OP.extendedRequest]: OP.extendedResponse,
};

/**
 * Decodes one complete LDAPMessage. Throws BerError when the envelope is unusable (the
 * connection must close) and OperationError when only the operation body is bad.
 */
export function decodeMessage(pdu: Buffer): Message {
  const top = new BerReader(pdu);
  const msg = top.enter(TAG.SEQUENCE);
  if (!top.done) throw new BerError('trailing bytes after message');
  const id = msg.readInt();
  if (id < 0) throw new BerError('negative message id');
  const [tag, body] = msg.enterAny();
  const responseTag = RESPONSE_FOR[tag];
  let req: Request;
  try {
    req = decodeRequest(tag, body);
    if (!body.done && req.op !== 'write') throw new BerError('trailing data in request');
  } catch (err) {
    if (err instanceof BerError && responseTag !== undefined) throw new OperationError(err.message, id, responseTag);
    throw err;
  }
  const controls: Control[] = [];
  if (!msg.done) {
    try {
      const list = msg.enter(0xa0);
      while (!list.done) {
        const c = list.enter(TAG.SEQUENCE);
        const oid = c.readString();
        const critical = c.peek() === TAG.BOOLEAN ? c.readBool() : false;
        const value = c.peek() === TAG.OCTET_STRING ? c.readOctets() : null;
        if (!c.done) throw new BerError('malformed control');
        controls.push({ oid, critical, value });
      }
      if (!msg.done) throw new BerError('trailing data after controls');
    } catch (err) {
      if (err instanceof BerError && responseTag !== undefined) throw new OperationError(err.message, id, responseTag);
      throw err;
    }
  }
  return { id, req, controls };
}

function decodeRequest(tag: number, r: BerReader): Request {
  switch (tag) {
    case OP.bindRequest: {
      const version = r.readInt();
      const name = r.readString();
      const [authTag, auth] = r.enterAny();
      if (authTag === 0x80) return { op: 'bind', version, name, password: auth.buf.subarray(auth.pos, auth.end), saslMechanism: null };
      if (authTag === 0xa3) return { op: 'bind', version, name, password: null, saslMechanism: auth.readString() || '?' };
      throw new BerError('unknown authentication choice');
    }
    case OP.unbindRequest:
      return { op: 'unbind' };
    case OP.searchRequest: {
      const base = r.readString();
      const scope = r.readEnum();
      const deref = r.readEnum();
      const sizeLimit = r.readInt();
      const timeLimit = r.readInt();
      const typesOnly = r.readBool();
      if (scope < 0 || scope > 3 || deref < 0 || deref > 3 || sizeLimit < 0 || timeLimit < 0) throw new BerError('search parameter out of range');
      const filter = decodeFilter(r);
      const list = r.enter(TAG.SEQUENCE);
      const attributes: string[] = [];
      while (!list.done) {
        if (attributes.length >= 256) throw new FilterError('too many requested attributes');
        attributes.push(list.readString());
      }
      return { op: 'search', base, scope, sizeLimit, timeLimit, typesOnly, filter, attributes };
    }
    case OP.compareRequest: {
      const dn = r.readString();
      const ava = r.enter(TAG.SEQUENCE);
      const attr = normalizeAttr(ava.readString());
      const value = ava.readString();
      return { op: 'compare', dn, attr, value };
    }
    case OP.extendedRequest: {
      const oid = r.readString(0x80);
      const value = r.done ? null : r.readOctets(0x81);
      return { op: 'extended', oid, value };
    }
    case OP.abandonRequest: {
      const n = r.end - r.pos;
      if (n < 1 || n > 4) throw new BerError('bad abandon id');
      let id = 0;
      for (let i = r.pos; i < r.end; i++) id = id * 256 + r.buf[i]!;
      r.pos = r.end;
      return { op: 'abandon', id };
    }
    case OP.addRequest:
    case OP.modifyRequest:
    case OP.delRequest:
    case OP.modDNRequest:
      r.pos = r.end;
      return { op: 'write', responseTag: RESPONSE_FOR[tag]! };
    default:
      throw new BerError(`unknown operation 0x${tag.toString(16)}`);
  }
}

/** Simple Paged Results request value (RFC 2696). */
export function decodePagedControl(value: Buffer | null): { size: number; cookie: Buffer } {
  if (!value) throw new BerError('paged results control without a value');
  const r = new BerReader(value).enter(TAG.SEQUENCE);
  const size = r.readInt();
  const cookie = r.readOctets();
  if (size < 0) throw new BerError('negative page size');
  return { size, cookie };
}

export function encodePagedControl(cookie: Buffer, estimate = 0): Control {
  const w = new BerWriter(64).startSequence().writeInt(estimate).writeOctets(cookie).endSequence();
  return { oid: OID.pagedResults, critical: false, value: w.toBuffer() };
}

/** Password Modify request value (RFC 3062); every field optional. */
export function decodePasswordModify(value: Buffer | null): { userIdentity: string | null; oldPassword: string | null; newPassword: string | null } {
  const out = { userIdentity: null as string | null, oldPassword: null as string | null, newPassword: null as string | null };
  if (!value || value.length === 0) return out;
  const r = new BerReader(value).enter(TAG.SEQUENCE);
  while (!r.done) {
    const [tag, f] = r.enterAny();
    const s = f.rest();
    if (tag === 0x80) out.userIdentity = s;
    else if (tag === 0x81) out.oldPassword = s;
    else if (tag === 0x82) out.newPassword = s;
    else throw new BerError('unknown password modify field');
  }
  return out;
}

// ---- responses ----

function writeControls(w: BerWriter, controls: Control[] | undefined): void {
  if (!controls?.length) return;
  w.startSequence(0xa0);
  for (const c of controls) {
    w.startSequence().writeString(c.oid);
    if (c.critical) w.writeBool(true);
    if (c.value) w.writeOctets(c.value);
    w.endSequence();
  }
  w.endSequence();
}

export interface ResultOptions {
  matchedDn?: string;
  message?: string;
  controls?: Control[];
  /** extended responses */
  responseName?: string;
  responseValue?: Buffer;
}

/** An LDAPResult-shaped response (bind, search done, compare, modify..., extended). */
export function encodeResult(id: number, tag: number, code: number, opts: ResultOptions = {}): Buffer {
  const w = new BerWriter(64 + (opts.message?.length ?? 0));
  w.startSequence().writeInt(id).startSequence(tag);
  w.writeEnum(code).writeString(opts.matchedDn ?? '').writeString(opts.message ?? '');
  if (opts.responseName !== undefined) w.writeString(opts.responseName, 0x8a);
  if (opts.responseValue !== undefined) w.writeOctets(opts.responseValue, 0x8b);
  w.endSequence();
  writeControls(w, opts.controls);
  return w.endSequence().toBuffer();
}

/** Unsolicited notice sent before the server drops a connection it cannot talk to. */
export function encodeNoticeOfDisconnection(code: number, message: string): Buffer {
  return encodeResult(0, OP.extendedResponse, code, { message, responseName: OID.noticeOfDisconnection });
}

export interface Attribute {
  name: string;
  values: readonly string[];
}

/** PartialAttribute: SEQUENCE { type, SET OF value } (values empty for typesOnly). */
export function encodeAttribute(w: BerWriter, a: Attribute, typesOnly = false): void {
  w.startSequence().writeString(a.name).startSequence(TAG.SET);
  if (!typesOnly) for (const v of a.values) w.writeString(v);
  w.endSequence().endSequence();
}

function writeHeader(out: Buffer, p: number, tag: number, len: number): number {
  out[p++] = tag;
  const n = lengthBytes(len);
  if (n === 1) out[p++] = len;
  else {
    out[p++] = 0x80 | (n - 1);
    for (let i = n - 2; i >= 0; i--) out[p++] = (len / 2 ** (8 * i)) & 0xff;
  }
  return p;
}

/**
 * SearchResultEntry from pre-encoded parts: the DN as an OCTET STRING TLV and each
 * attribute as a PartialAttribute TLV, copied into one buffer with no other allocation.
 */
export function encodeEntry(id: number, dnTlv: Buffer, attrs: readonly Buffer[]): Buffer {
  let attrsLen = 0;
  for (const a of attrs) attrsLen += a.length;
  const bodyLen = dnTlv.length + 1 + lengthBytes(attrsLen) + attrsLen;
  // Message ids are 0..2^31-1, so the shortest two's complement needs no sign byte beyond these steps.
  const idLen = id < 0x80 ? 1 : id < 0x8000 ? 2 : id < 0x800000 ? 3 : 4;
  const msgLen = 2 + idLen + 1 + lengthBytes(bodyLen) + bodyLen;
  const out = Buffer.allocUnsafe(1 + lengthBytes(msgLen) + msgLen);
  let p = writeHeader(out, 0, TAG.SEQUENCE, msgLen);
  out[p++] = TAG.INTEGER;
  out[p++] = idLen;
  for (let i = idLen - 1; i >= 0; i--) out[p++] = (id >> (8 * i)) & 0xff;
  p = writeHeader(out, p, OP.searchResultEntry, bodyLen);
  p += dnTlv.copy(out, p);
  p = writeHeader(out, p, TAG.SEQUENCE, attrsLen);
  for (const a of attrs) p += a.copy(out, p);
  return out;
}
