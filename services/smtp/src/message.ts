import { randomBytes } from 'node:crypto';
import { headerEnd, headerFields, headerValues, mailboxes, type Mailbox } from '@hearth/message';

/** SMTP's pure helpers over raw RFC 5322 messages (CRLF line endings); headers and addresses are read by @hearth/message. */

export type BodyProblem = 'nul' | 'bare-lf' | 'bare-cr' | 'long-line';

/**
 * One pass over the received bytes. Bare LF/CR are refused rather than normalised:
 * they are how SMTP smuggling splits one message into two at the next hop.
 */
export function inspectBody(raw: Buffer, maxLineLength: number): BodyProblem | null {
  let lineStart = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === 0) return 'nul';
    if (c === 0x0d) {
      if (raw[i + 1] !== 0x0a) return 'bare-cr';
      if (i - lineStart > maxLineLength) return 'long-line';
      i++;
      lineStart = i + 1;
    } else if (c === 0x0a) {
      return 'bare-lf';
    }
  }
  if (raw.length - lineStart > maxLineLength) return 'long-line';
  return null;
}

export function prependHeaders(raw: Buffer, lines: string[]): Buffer {
  if (lines.length === 0) return raw;
  return Buffer.concat([Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'utf8'), raw]);
}

/** Inserts header lines at the end of the header section (Message-ID/Date belong with the author's fields). */
export function appendHeaders(raw: Buffer, lines: string[]): Buffer {
  if (lines.length === 0) return raw;
  const end = headerEnd(raw);
  const add = Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'utf8');
  if (end === raw.length && raw.indexOf('\r\n\r\n') < 0) {
    // headers only, maybe without a final CRLF
    const base = raw.length === 0 || raw.subarray(-2).toString() === '\r\n' ? raw : Buffer.concat([raw, Buffer.from('\r\n')]);
    return Buffer.concat([base, add]);
  }
  const split = end - 2; // before the empty line
  return Buffer.concat([raw.subarray(0, split), add, raw.subarray(split)]);
}

/** RFC 5322 date-time, e.g. "Thu, 26 Nov 2026 10:44:52 +0000". */
export function rfc5322Date(d = new Date()): string {
  return d.toUTCString().replace(/GMT$/, '+0000');
}

export function newMessageId(domain: string): string {
  return `<${Date.now().toString(36)}.${randomBytes(8).toString('hex')}@${domain}>`;
}

/** Adds Message-ID and Date when the author left them out (submission only). */
export function ensureIdentity(raw: Buffer, domain: string, now = new Date()): Buffer {
  const missing: string[] = [];
  if (headerValues(raw, 'message-id').length === 0) missing.push(`Message-ID: ${newMessageId(domain)}`);
  if (headerValues(raw, 'date').length === 0) missing.push(`Date: ${rfc5322Date(now)}`);
  return appendHeaders(raw, missing);
}

export interface ReceivedInfo {
  heloName: string;
  remoteAddress: string;
  byHost: string;
  /** ESMTP, ESMTPS, ESMTPA, ESMTPSA (RFC 3848) */
  protocol: string;
  queueId: string;
  /** named only for single-recipient messages, as Postfix does */
  recipient: string | null;
  date?: Date;
}

/** Strips anything that could break out of a header line. */
function clean(s: string): string {
  return s.replace(/[^\x21-\x7e]/g, '?').slice(0, 255);
}

export function receivedHeader(r: ReceivedInfo): string {
  const forPart = r.recipient ? `\r\n\tfor <${clean(r.recipient)}>` : '';
  return `Received: from ${clean(r.heloName) || 'unknown'} ([${clean(r.remoteAddress)}])\r\n\tby ${clean(r.byHost)} (Hearth) with ${r.protocol} id ${r.queueId}${forPart};\r\n\t${rfc5322Date(r.date)}`;
}

/** Fields that say who wrote or sent a message: each field's mailboxes, one entry per field. */
export interface AuthorFields {
  from: Mailbox[][];
  sender: Mailbox[][];
  resentFrom: Mailbox[][];
  resentSender: Mailbox[][];
}

export function authorFields(raw: Buffer): AuthorFields {
  const out: AuthorFields = { from: [], sender: [], resentFrom: [], resentSender: [] };
  const slots = new Map([
    ['from', out.from],
    ['sender', out.sender],
    ['resent-from', out.resentFrom],
    ['resent-sender', out.resentSender],
  ]);
  for (const f of headerFields(raw)) slots.get(f.name)?.push(mailboxes(f.value));
  return out;
}

/** The domain of the one From address, or null when the message has no single From field. */
export function fromDomain(raw: Buffer): string | null {
  const from = authorFields(raw).from;
  if (from.length !== 1) return null;
  const first = from[0]![0];
  return first ? (splitAddress(first.address)?.domain ?? null) : null;
}

/** local@domain split; null when it is not a usable mailbox address. */
export function splitAddress(address: string): { local: string; domain: string } | null {
  const at = address.lastIndexOf('@');
  if (at < 1 || at === address.length - 1) return null;
  const domain = address.slice(at + 1).toLowerCase();
  if (!/^[a-z0-9.-]+$/.test(domain) && !/^\[[0-9a-f:.]+\]$/i.test(domain)) return null;
  return { local: address.slice(0, at), domain };
}
