import { encodeValue, raw, toBuffer, type Value } from './imap-encoder.ts';
import { header, parseAddressList, type MimePart } from '@hearth/message';

/**
 * ENVELOPE (RFC 3501 §7.4.2) from a parsed header: raw field values (no decoding, as
 * servers send them) and address structures (name adl mailbox host, from @hearth/message), groups included.
 */

/** Header text as an nstring: quoted when 7-bit, else the original bytes as a literal. */
export function nstring(s: string | null): Value {
  if (s === null) return null;
  return /^[\x20-\x7e]*$/.test(s) ? s : Buffer.from(s, 'latin1');
}

function addresses(part: MimePart, name: string): Value {
  const v = header(part, name);
  if (v === null) return null;
  const list = parseAddressList(v);
  if (!list.length) return null;
  // env-from etc. are "(" 1*address ")": the addresses follow each other without spaces.
  const pieces = list.flatMap((a) => encodeValue([nstring(a.name), nstring(a.adl), nstring(a.mailbox), nstring(a.host)]));
  return raw(toBuffer(['(', ...pieces, ')']));
}

export function envelope(msg: MimePart): Value[] {
  const from = addresses(msg, 'from');
  const sender = addresses(msg, 'sender') ?? from;
  const replyTo = addresses(msg, 'reply-to') ?? from;
  return [
    nstring(header(msg, 'date')),
    nstring(header(msg, 'subject')),
    from,
    sender,
    replyTo,
    addresses(msg, 'to'),
    addresses(msg, 'cc'),
    addresses(msg, 'bcc'),
    nstring(header(msg, 'in-reply-to')),
    nstring(header(msg, 'message-id')),
  ];
}
