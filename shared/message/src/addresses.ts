import { decodeWords } from './words.ts';

/**
 * RFC 5322 address lists, lexed once for every reader: IMAP's ENVELOPE structures
 * (name adl mailbox host, groups as start/end markers, bytes kept as they are) and the plain
 * mailboxes SMTP's sender checks and Sieve's address tests compare.
 */

export interface Address {
  name: string | null;
  adl: string | null;
  mailbox: string | null;
  host: string | null;
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

/** One mailbox as sender checks and Sieve compare it: address lower-cased, display name decoded (RFC 2047). */
export interface Mailbox {
  address: string;
  name: string;
}

/**
 * The mailboxes of one address field's value, groups flattened. `value` is the field as bytes
 * (latin1 string, as header fields are read); 8-bit text is taken as UTF-8 (RFC 6532).
 */
export function mailboxes(value: string): Mailbox[] {
  const utf8 = Buffer.from(value, 'latin1').toString('utf8');
  return parseAddressList(utf8)
    .filter((a) => a.mailbox !== null && a.host !== null)
    .map((a) => ({ address: (a.host === 'MISSING_DOMAIN' ? a.mailbox! : `${a.mailbox!}@${a.host!}`).toLowerCase(), name: decodeWords(a.name ?? '') }));
}
