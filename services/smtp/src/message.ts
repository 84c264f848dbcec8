import { randomBytes } from 'node:crypto';
import { simpleParser } from 'mailparser';
import addressparser from 'nodemailer/lib/addressparser/index.js';

/** Pure helpers over raw RFC 5322 messages (CRLF line endings). */

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

/** Byte offset where the body starts (after the empty line), or raw.length when there is none. */
export function headerEnd(raw: Buffer): number {
  if (raw.length >= 2 && raw[0] === 0x0d && raw[1] === 0x0a) return 2;
  const i = raw.indexOf('\r\n\r\n');
  return i < 0 ? raw.length : i + 4;
}

/** Unfolded values of a header field (case-insensitive name), in order. */
export function headerValues(raw: Buffer, name: string): string[] {
  const head = raw.subarray(0, headerEnd(raw)).toString('latin1');
  const lines = head.split('\r\n');
  const want = name.toLowerCase();
  const out: string[] = [];
  let current: string | null = null;
  for (const line of lines) {
    if (/^[ \t]/.test(line)) {
      if (current !== null) current += line;
      continue;
    }
    if (current !== null) out.push(current.trim());
    current = null;
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === want) current = line.slice(colon + 1);
  }
  if (current !== null) out.push(current.trim());
  return out;
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

export interface FromAddress {
  address: string;
  name: string;
}

/** The mailboxes of the From header(s), display names decoded (RFC 2047). */
export async function fromAddresses(raw: Buffer): Promise<FromAddress[]> {
  const head = raw.subarray(0, headerEnd(raw));
  const parsed = await simpleParser(Buffer.concat([head, Buffer.from('\r\n')]), { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true });
  const from = parsed.from;
  if (!from) return [];
  const out: FromAddress[] = [];
  const walk = (list: { address?: string; name: string; group?: unknown[] }[]): void => {
    for (const a of list) {
      if (a.group) walk(a.group as { address?: string; name: string; group?: unknown[] }[]);
      else out.push({ address: (a.address ?? '').toLowerCase(), name: a.name ?? '' });
    }
  };
  walk(from.value);
  return out;
}

/** The first From address, cheaply (no MIME decoding): enough to pick a DKIM domain. */
export function firstFromAddress(raw: Buffer): string | null {
  const value = headerValues(raw, 'from')[0];
  if (!value) return null;
  const first = addressparser(value, { flatten: true })[0];
  return first?.address ? first.address.toLowerCase() : null;
}

/** local@domain split; null when it is not a usable mailbox address. */
export function splitAddress(address: string): { local: string; domain: string } | null {
  const at = address.lastIndexOf('@');
  if (at < 1 || at === address.length - 1) return null;
  const domain = address.slice(at + 1).toLowerCase();
  if (!/^[a-z0-9.-]+$/.test(domain) && !/^\[[0-9a-f:.]+\]$/i.test(domain)) return null;
  return { local: address.slice(0, at), domain };
}
