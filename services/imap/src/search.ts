import { asAtom, asUtf8, parseDate, parseNumber, parseSequenceSet, ParseError, resolveSequenceSet, type SequenceSet, type Token } from './imap-parser.ts';
import { bodyText, decodeWords, parseAddressList, parseHeaderDate, parseMessage, type HeaderField, type MimePart } from '@hearth/message';

/** SEARCH keys (RFC 3501 §6.4.4, RFC 7162 MODSEQ): parsing from tokens and matching, pure. */

export type SearchKey =
  | { k: 'all' }
  | { k: 'none' }
  | { k: 'flag'; flag: string; set: boolean }
  /** `address`: FROM/TO/CC/BCC, matched against the parsed addresses rather than the raw text */
  | { k: 'header'; field: string; value: string; address?: boolean }
  | { k: 'body'; value: string; withHeader: boolean }
  | { k: 'date'; sent: boolean; op: 'before' | 'on' | 'since'; day: number }
  | { k: 'size'; larger: boolean; n: number }
  /** WITHIN (RFC 5032): OLDER/YOUNGER n seconds, as an INTERNALDATE cut-off (ms) fixed when parsed */
  | { k: 'age'; older: boolean; cutoff: number }
  | { k: 'set'; uid: boolean; set: SequenceSet }
  | { k: 'modseq'; n: number }
  /** `$`: the result a SEARCH RETURN (SAVE) kept (SEARCHRES, RFC 5182) */
  | { k: 'saved' }
  | { k: 'not'; key: SearchKey }
  | { k: 'or'; a: SearchKey; b: SearchKey }
  | { k: 'and'; keys: SearchKey[] };

export class BadCharsetError extends Error {}

const FLAG_KEYS: Record<string, [string, boolean]> = {
  ANSWERED: ['\\Answered', true],
  DELETED: ['\\Deleted', true],
  DRAFT: ['\\Draft', true],
  FLAGGED: ['\\Flagged', true],
  SEEN: ['\\Seen', true],
  UNANSWERED: ['\\Answered', false],
  UNDELETED: ['\\Deleted', false],
  UNDRAFT: ['\\Draft', false],
  UNFLAGGED: ['\\Flagged', false],
  UNSEEN: ['\\Seen', false],
};
const HEADER_KEYS: Record<string, string> = { BCC: 'bcc', CC: 'cc', FROM: 'from', SUBJECT: 'subject', TO: 'to' };
export const ADDRESS_FIELDS = new Set(['from', 'to', 'cc', 'bcc']);
const DATE_KEYS: Record<string, [boolean, 'before' | 'on' | 'since']> = {
  BEFORE: [false, 'before'],
  ON: [false, 'on'],
  SINCE: [false, 'since'],
  SENTBEFORE: [true, 'before'],
  SENTON: [true, 'on'],
  SENTSINCE: [true, 'since'],
};

/** Parses `[CHARSET x] key...`; throws ParseError (BAD) or BadCharsetError (NO [BADCHARSET]). */
export function parseSearch(args: Token[]): SearchKey {
  let i = 0;
  if (args[0]?.kind === 'atom' && args[0].value.toUpperCase() === 'CHARSET') {
    const cs = asUtf8(args[1], 'charset').toUpperCase();
    if (cs !== 'UTF-8' && cs !== 'US-ASCII') throw new BadCharsetError(cs);
    i = 2;
  }
  const keys: SearchKey[] = [];
  const next = (): SearchKey => {
    if (i >= args.length) throw new ParseError('missing search key');
    return parseKey(args, () => {
      const t = args[i++];
      if (!t) throw new ParseError('incomplete search key');
      return t;
    });
  };
  while (i < args.length) keys.push(next());
  if (keys.length === 0) throw new ParseError('missing search key');
  return keys.length === 1 ? keys[0]! : { k: 'and', keys };
}

function parseKey(args: Token[], take: () => Token, depth = 0): SearchKey {
  if (depth > 50) throw new ParseError('search nested too deep');
  const t = take();
  if (t.kind === 'list') {
    if (t.items.length === 0) throw new ParseError('empty search list');
    let j = 0;
    const keys: SearchKey[] = [];
    const inner = (): Token => {
      const x = t.items[j++];
      if (!x) throw new ParseError('incomplete search key');
      return x;
    };
    while (j < t.items.length) keys.push(parseKey(t.items, inner, depth + 1));
    return keys.length === 1 ? keys[0]! : { k: 'and', keys };
  }
  if (t.kind !== 'atom') throw new ParseError('search key expected');
  const word = t.value.toUpperCase();
  const arg = (): Token => take();
  const str = (): string => asUtf8(arg(), 'search string');
  if (word === 'ALL') return { k: 'all' };
  // The session passes \Recent among a candidate's flags when the message is recent there.
  if (word === 'RECENT' || word === 'OLD') return { k: 'flag', flag: '\\Recent', set: word === 'RECENT' };
  if (word === 'NEW') return { k: 'and', keys: [{ k: 'flag', flag: '\\Recent', set: true }, { k: 'flag', flag: '\\Seen', set: false }] };
  const flag = FLAG_KEYS[word];
  if (flag) return { k: 'flag', flag: flag[0], set: flag[1] };
  if (word === 'KEYWORD' || word === 'UNKEYWORD') return { k: 'flag', flag: asAtom(arg(), 'keyword'), set: word === 'KEYWORD' };
  const hk = HEADER_KEYS[word];
  if (hk) return { k: 'header', field: hk, value: str(), address: ADDRESS_FIELDS.has(hk) };
  if (word === 'HEADER') {
    const field = asUtf8(arg(), 'header name').toLowerCase();
    return { k: 'header', field, value: str() };
  }
  if (word === 'BODY' || word === 'TEXT') return { k: 'body', value: str(), withHeader: word === 'TEXT' };
  const dk = DATE_KEYS[word];
  if (dk) return { k: 'date', sent: dk[0], op: dk[1], day: parseDate(asUtf8(arg(), 'date')) };
  if (word === 'OLDER' || word === 'YOUNGER') return { k: 'age', older: word === 'OLDER', cutoff: Date.now() - parseNumber(asAtom(arg(), 'interval')) * 1000 };
  if (word === 'LARGER' || word === 'SMALLER') return { k: 'size', larger: word === 'LARGER', n: parseNumber(asAtom(arg(), 'size'), { allowZero: true }) };
  if (word === 'UID') return { k: 'set', uid: true, set: parseSequenceSet(asAtom(arg(), 'UID set')) };
  if (word === 'NOT') return { k: 'not', key: parseKey(args, take, depth + 1) };
  if (word === 'OR') return { k: 'or', a: parseKey(args, take, depth + 1), b: parseKey(args, take, depth + 1) };
  if (word === 'MODSEQ') {
    // MODSEQ [entry-name entry-type] n
    let v = asAtom(arg(), 'mod-sequence');
    if (!/^\d+$/.test(v)) {
      asAtom(arg(), 'entry type');
      v = asAtom(arg(), 'mod-sequence');
    }
    return { k: 'modseq', n: parseNumber(v, { allowZero: true, max: Number.MAX_SAFE_INTEGER }) };
  }
  if (t.value === '$') return { k: 'saved' };
  if (/^[\d*:,]+$/.test(t.value)) return { k: 'set', uid: false, set: parseSequenceSet(t.value) };
  throw new ParseError(`unknown search key: ${t.value.slice(0, 40)}`);
}

/** What a key needs beyond flags and numbers: nothing, the header fields, or the whole message. */
export function needsContent(key: SearchKey): 'none' | 'header' | 'body' {
  switch (key.k) {
    case 'header':
      return 'header';
    case 'body':
      return 'body';
    case 'date':
      return key.sent ? 'header' : 'none';
    case 'not':
      return needsContent(key.key);
    case 'or':
      return max(needsContent(key.a), needsContent(key.b));
    case 'and':
      return key.keys.map(needsContent).reduce(max, 'none');
    default:
      return 'none';
  }
}

function max(a: 'none' | 'header' | 'body', b: 'none' | 'header' | 'body'): 'none' | 'header' | 'body' {
  return a === 'body' || b === 'body' ? 'body' : a === 'header' || b === 'header' ? 'header' : 'none';
}

export interface Candidate {
  seq: number;
  uid: number;
  flags: readonly string[];
  modseq: number;
  size: number;
  internalDate: Date;
  /** the raw message, when needsContent() is 'body' */
  raw: Buffer | null;
  /** the top-level header fields, when needsContent() is 'header' (may come from a cache) */
  headers: readonly HeaderField[] | null;
  maxSeq: number;
  maxUid: number;
  /** UIDs of the saved search result (`$`) */
  saved?: ReadonlySet<number>;
}

export function matches(key: SearchKey, c: Candidate, cache: { root?: MimePart; body?: string } = {}): boolean {
  switch (key.k) {
    case 'all':
      return true;
    case 'none':
      return false;
    case 'flag':
      return hasFlag(c.flags, key.flag) === key.set;
    case 'size':
      return key.larger ? c.size > key.n : c.size < key.n;
    case 'age':
      return key.older ? c.internalDate.getTime() < key.cutoff : c.internalDate.getTime() >= key.cutoff;
    case 'set':
      return resolveSequenceSet(key.set, key.uid ? c.maxUid : c.maxSeq)(key.uid ? c.uid : c.seq);
    case 'modseq':
      return c.modseq >= key.n;
    case 'saved':
      return c.saved?.has(c.uid) ?? false;
    case 'not':
      return !matches(key.key, c, cache);
    case 'or':
      return matches(key.a, c, cache) || matches(key.b, c, cache);
    case 'and':
      return key.keys.every((k) => matches(k, c, cache));
    case 'date': {
      let t: number;
      if (key.sent) {
        const d = headersOf(c, cache).find((h) => h.name === 'date')?.value;
        // SENT* keys disregard time and timezone (RFC 3501 §6.4.4): "25 Mar 2007 00:00 +0200" is 25 March
        t = d ? (parseHeaderDate(d)?.day ?? NaN) : NaN;
        if (Number.isNaN(t)) return false;
      } else t = c.internalDate.getTime();
      const day = Math.floor(t / 86_400_000) * 86_400_000;
      return key.op === 'before' ? day < key.day : key.op === 'on' ? day === key.day : day >= key.day;
    }
    case 'header': {
      const needle = key.value.toLowerCase();
      return headersOf(c, cache).some((h) => h.name === key.field && (needle === '' || (key.address ? (h.addresses ?? foldAddresses(h.value)) : (h.folded ?? foldHeader(h.value))).includes(needle)));
    }
    case 'body': {
      const root = rootOf(c, cache);
      cache.body ??= bodyText(c.raw!, root).toLowerCase();
      const needle = key.value.toLowerCase();
      if (cache.body.includes(needle)) return true;
      return key.withHeader && root.headers.some((h) => decodeText(decodeWords(`${h.name}: ${h.value}`)).toLowerCase().includes(needle));
    }
  }
}

/** Flags compare without regard to case; most differ in length, and the stored spelling usually matches as it is. */
function hasFlag(flags: readonly string[], flag: string): boolean {
  for (const f of flags) if (f === flag || (f.length === flag.length && f.toLowerCase() === flag.toLowerCase())) return true;
  return false;
}

function headersOf(c: Candidate, cache: { root?: MimePart }): readonly HeaderField[] {
  return c.headers ?? rootOf(c, cache).headers;
}

function rootOf(c: Candidate, cache: { root?: MimePart }): MimePart {
  cache.root ??= parseMessage(c.raw ?? Buffer.alloc(0));
  return cache.root;
}

/** A header value as SEARCH compares it: encoded words decoded, lower case. */
export function foldHeader(value: string): string {
  return decodeText(decodeWords(value)).toLowerCase();
}

/**
 * An address header as FROM/TO/CC/BCC compare it: each address parsed, so comments and the
 * whitespace inside an addr-spec are gone (`Pete(A nice \) chap) <pete(his account)@silly.test>`
 * reads `pete <pete@silly.test>`); display names decoded, lower case.
 */
export function foldAddresses(value: string): string {
  const text = parseAddressList(value)
    .map((a) => (a.host === null ? (a.mailbox ?? '') : `${a.name ? `${a.name} ` : ''}<${a.mailbox}@${a.host}>`))
    .join(', ');
  return foldHeader(text);
}

/** Header values are kept as latin1 bytes; raw UTF-8 in headers is read back as UTF-8. */
export function decodeText(s: string): string {
  if (!/[\x80-\xff]/.test(s)) return s;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(s, 'latin1'));
  } catch {
    return s;
  }
}

/** Which kinds of keys a search uses (to skip stat()s and reads it does not need). */
export function keyKinds(key: SearchKey, out = new Set<string>()): Set<string> {
  out.add((key.k === 'date' && !key.sent) || key.k === 'age' ? 'internaldate' : key.k);
  if (key.k === 'not') keyKinds(key.key, out);
  else if (key.k === 'or') keyKinds(key.b, keyKinds(key.a, out));
  else if (key.k === 'and') for (const k of key.keys) keyKinds(k, out);
  return out;
}
