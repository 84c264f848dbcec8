import { encodeValue, raw, toBuffer, type Value } from './imap-encoder.ts';
import { header, type MimePart } from './mime.ts';

/**
 * ENVELOPE (RFC 3501 §7.4.2) from a parsed header: raw field values (no decoding, as
 * servers send them) and address structures (name adl mailbox host), groups included.
 */

export interface Address {
  name: string | null;
  adl: string | null;
  mailbox: string | null;
  host: string | null;
}

/** Header text as an nstring: quoted when 7-bit, else the original bytes as a literal. */
export function nstring(s: string | null): Value {
  if (s === null) return null;
  return /^[\x20-\x7e]*$/.test(s) ? s : Buffer.from(s, 'latin1');
}

type Tok = { t: 'word' | 'quoted' | 'comment' | 'special'; v: string };

function lex(s: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      i++;
    } else if (c === '"') {
      let v = '';
      i++;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        v += s[i++];
      }
      i++;
      out.push({ t: 'quoted', v });
    } else if (c === '(') {
      let depth = 1;
      let v = '';
      i++;
      while (i < s.length && depth > 0) {
        if (s[i] === '\\' && i + 1 < s.length) v += s[++i];
        else if (s[i] === '(') depth++;
        else if (s[i] === ')') depth--;
        if (depth > 0) v += s[i];
        i++;
      }
      out.push({ t: 'comment', v });
    } else if ('<>,:;@'.includes(c)) {
      out.push({ t: 'special', v: c });
      i++;
    } else {
      let v = '';
      while (i < s.length && !' \t\r\n"(<>,:;@'.includes(s[i]!)) v += s[i++];
      out.push({ t: 'word', v });
    }
  }
  return out;
}

function mailboxFrom(tokens: Tok[]): Address | null {
  const words = tokens.filter((t) => t.t !== 'comment');
  if (words.length === 0) return null;
  const lt = words.findIndex((t) => t.t === 'special' && t.v === '<');
  let addrToks: Tok[];
  let name: string | null = null;
  if (lt >= 0) {
    const gt = words.findIndex((t, i) => i > lt && t.t === 'special' && t.v === '>');
    addrToks = words.slice(lt + 1, gt < 0 ? undefined : gt);
    const nameToks = words.slice(0, lt);
    if (nameToks.length) name = nameToks.map((t) => t.v).join(' ');
  } else {
    addrToks = words;
    const comment = tokens.find((t) => t.t === 'comment');
    if (comment) name = comment.v.trim() || null;
  }
  let adl: string | null = null;
  const colon = addrToks.findIndex((t) => t.t === 'special' && t.v === ':');
  if (colon >= 0 && addrToks[0]?.v === '@') {
    adl = addrToks
      .slice(0, colon)
      .map((t) => t.v)
      .join('');
    addrToks = addrToks.slice(colon + 1);
  }
  const spec = addrToks.map((t) => (t.t === 'quoted' && /[\s"\\]/.test(t.v) ? `"${t.v}"` : t.v)).join('');
  const at = spec.lastIndexOf('@');
  if (at < 0) return { name, adl, mailbox: spec || null, host: spec ? 'MISSING_DOMAIN' : null };
  return { name, adl, mailbox: spec.slice(0, at), host: spec.slice(at + 1) };
}

/** An address-list header into IMAP address structures; groups become start/end markers. */
export function parseAddressList(value: string): Address[] {
  const toks = lex(value);
  const out: Address[] = [];
  let cur: Tok[] = [];
  let inGroup = false;
  let angle = false;
  const flush = (): void => {
    const a = mailboxFrom(cur);
    if (a && a.mailbox) out.push(a);
    cur = [];
  };
  for (const t of toks) {
    if (t.t === 'special' && t.v === '<') angle = true;
    if (t.t === 'special' && t.v === '>') angle = false;
    if (!angle && t.t === 'special' && t.v === ':' && !inGroup && !cur.some((x) => x.t === 'special' && (x.v === '<' || x.v === '@'))) {
      out.push({ name: null, adl: null, mailbox: cur.map((x) => x.v).join(' ') || '', host: null });
      cur = [];
      inGroup = true;
    } else if (!angle && t.t === 'special' && t.v === ';' && inGroup) {
      flush();
      out.push({ name: null, adl: null, mailbox: null, host: null });
      inGroup = false;
    } else if (!angle && t.t === 'special' && t.v === ',') flush();
    else cur.push(t);
  }
  flush();
  if (inGroup) out.push({ name: null, adl: null, mailbox: null, host: null });
  return out.slice(0, 1000);
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
