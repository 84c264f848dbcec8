import { decodeWords, parseAddressList, parseHeaderDate, type HeaderField } from '@hearth/message';
import { asAtom, asList, ParseError, type Token } from './imap-parser.ts';
import { decodeText } from './search.ts';

/**
 * SORT (RFC 5256 §3, RFC 5957 DISPLAYFROM/DISPLAYTO): the sort keys of a message read from its
 * top-level header fields, compared with i;unicode-casemap (RFC 5051), and the base subject
 * (RFC 5256 §2.1) that SORT SUBJECT and THREAD share. Pure.
 */

/**
 * The titlecase digraphs (ǅ ǈ ǋ ǲ and Greek with prosgegrammeni): what their other cases titlecase
 * to. Like Dovecot, a character with a titlecase form of its own is left undecomposed.
 */
const TITLE_FORMS = new Map<number, string>();
for (const [title, others] of [
  [0x1c5, [0x1c4, 0x1c6]],
  [0x1c8, [0x1c7, 0x1c9]],
  [0x1cb, [0x1ca, 0x1cc]],
  [0x1f2, [0x1f1, 0x1f3]],
  [0x1fbc, [0x1fb3]],
  [0x1fcc, [0x1fc3]],
  [0x1ffc, [0x1ff3]],
] as const)
  for (const cp of [title, ...others]) TITLE_FORMS.set(cp, String.fromCodePoint(title));
for (const base of [0x1f88, 0x1f98, 0x1fa8]) for (let i = 0; i < 8; i++) for (const cp of [base + i, base - 8 + i]) TITLE_FORMS.set(cp, String.fromCodePoint(base + i));

/** i;unicode-casemap (RFC 5051): each character titlecased, then decomposed (NFKD). */
export function casemap(s: string): string {
  if (/^[\x00-\x7f]*$/.test(s)) return s.toUpperCase();
  let out = '';
  for (const ch of s) {
    const title = TITLE_FORMS.get(ch.codePointAt(0)!);
    if (title) {
      out += title;
      continue;
    }
    const up = ch.toUpperCase();
    // a character whose uppercase is several (ß -> SS, ﬁ -> FI) titlecases to itself
    out += (up.length === ch.length ? up : ch).normalize('NFKD');
  }
  return out;
}

/**
 * A string whose JavaScript order (UTF-16 code units) is the UTF-8 octet order RFC 5051 compares
 * by: non-ASCII text as its UTF-8 bytes, one char each.
 */
function octetOrder(s: string): string {
  return /^[\x00-\x7f]*$/.test(s) ? s : Buffer.from(s, 'utf8').toString('latin1');
}

/** Past a subj-blob (`"[" *BLOBCHAR "]" *WSP`) starting at i, or -1 when there is none there. */
function blobEnd(s: string, i: number): number {
  if (s[i] !== '[') return -1;
  let j = i + 1;
  while (j < s.length && s[j] !== '[' && s[j] !== ']') j++;
  if (s[j] !== ']') return -1;
  j++;
  while (s[j] === ' ') j++;
  return j;
}

export interface BaseSubject {
  /** casemapped (RFC 5051) base subject */
  base: string;
  /** a subj-refwd, "(fwd)" trailer or "[fwd: …]" was removed (THREAD=REFERENCES step 5) */
  replyOrForward: boolean;
}

/** The base subject of a Subject field value (RFC 5256 §2.1), casemapped. */
export function baseSubject(value: string): BaseSubject {
  // (1) encoded words decoded, whitespace runs one space; casemapped first as Dovecot does, so
  // the prefixes below are upper case and a decomposed no-break space packs too
  let s = casemap(decodeWords(decodeText(value))).replace(/[ \t\r\n]+/g, ' ');
  let start = 0;
  let replyOrForward = false;
  for (;;) {
    // (2) trailing subj-trailer: "(fwd)" / WSP
    let end = s.length;
    for (;;) {
      if (end > start && s[end - 1] === ' ') end--;
      else if (end - 5 >= start && s.startsWith('(FWD)', end - 5)) {
        end -= 5;
        replyOrForward = true;
      } else break;
    }
    s = s.slice(0, end);
    // (3) subj-leader = (*subj-blob subj-refwd) / WSP, (4) a subj-blob leaving a non-empty rest, (5) repeated
    let found: boolean;
    do {
      found = false;
      if (s[start] === ' ') {
        start++;
        found = true;
      }
      let p = start;
      while (p >= 0 && s[p] === '[') p = blobEnd(s, p);
      if (p >= 0) {
        let r = s.startsWith('RE', p) ? p + 2 : s.startsWith('FWD', p) ? p + 3 : s.startsWith('FW', p) ? p + 2 : -1;
        if (r >= 0 && s[r] === ' ') r++;
        if (r >= 0 && s[r] === '[') r = blobEnd(s, r);
        if (r >= 0 && s[r] === ':') {
          start = r + 1;
          replyOrForward = true;
          found = true;
        }
      }
      const blob = blobEnd(s, start);
      if (blob >= 0 && blob < s.length) {
        start = blob;
        found = true;
      }
    } while (found);
    // (6) subj-fwd-hdr "[fwd:" … subj-fwd-trl "]": removed, and again from (2)
    if (!(s.startsWith('[FWD:', start) && s.endsWith(']') && s.length - 1 >= start + 5)) break;
    s = s.slice(0, -1);
    start += 5;
    replyOrForward = true;
  }
  return { base: s.slice(start), replyOrForward };
}

/** Valid msg-ids (`<…@…>`, whitespace removed) of a Message-ID, References or In-Reply-To value, in order. */
export function messageIds(value: string): string[] {
  const out: string[] = [];
  for (const m of value.matchAll(/<([^>]*)>/g)) {
    const id = m[1]!.replace(/[ \t\r\n]+/g, '');
    if (id.includes('@')) out.push(id);
  }
  return out;
}

/** What SORT and THREAD read from a message's header, computed once per cached header. */
export interface SortFields {
  /** octet-ordered base subject (empty when there is no Subject field) */
  subject: string;
  /** the Subject field is there (THREAD=REFERENCES skips roots without one) */
  hasSubject: boolean;
  replyOrForward: boolean;
  from: string;
  to: string;
  cc: string;
  displayFrom: string;
  displayTo: string;
  /** the Date field's instant in seconds; NaN when missing or unreadable */
  sent: number;
  messageId: string | null;
  /** the References msg-ids, or when it has none, the first of In-Reply-To */
  references: string[];
}

const fieldsByHeader = new WeakMap<readonly HeaderField[], SortFields>();

function first(headers: readonly HeaderField[], name: string): string | null {
  for (const h of headers) if (h.name === name) return h.value;
  return null;
}

/** The first address of a field: its addr-mailbox (SORT FROM/TO/CC) and display form (RFC 5957). */
function firstAddress(value: string | null): { mailbox: string; display: string } {
  const a = value === null ? undefined : parseAddressList(value)[0];
  if (!a) return { mailbox: '', display: '' };
  const name = a.name ? decodeWords(decodeText(a.name)) : '';
  const display = name || (a.mailbox !== null && a.host !== null ? `${a.mailbox}@${a.host}` : (a.mailbox ?? ''));
  return { mailbox: octetOrder(casemap(a.mailbox ?? '')), display: octetOrder(casemap(decodeText(display))) };
}

export function sortFields(headers: readonly HeaderField[]): SortFields {
  const hit = fieldsByHeader.get(headers);
  if (hit) return hit;
  const subject = first(headers, 'subject');
  const base = subject === null ? { base: '', replyOrForward: false } : baseSubject(subject);
  const from = firstAddress(first(headers, 'from'));
  const to = firstAddress(first(headers, 'to'));
  const date = first(headers, 'date');
  const time = date === null ? NaN : (parseHeaderDate(date)?.time ?? NaN);
  const references = messageIds(first(headers, 'references') ?? '');
  const fields: SortFields = {
    subject: octetOrder(base.base),
    hasSubject: subject !== null,
    replyOrForward: base.replyOrForward,
    from: from.mailbox,
    to: to.mailbox,
    cc: firstAddress(first(headers, 'cc')).mailbox,
    displayFrom: from.display,
    displayTo: to.display,
    sent: Math.floor(time / 1000),
    messageId: messageIds(first(headers, 'message-id') ?? '')[0] ?? null,
    references: references.length ? references : messageIds(first(headers, 'in-reply-to') ?? '').slice(0, 1),
  };
  fieldsByHeader.set(headers, fields);
  return fields;
}

export type SortKey = 'ARRIVAL' | 'CC' | 'DATE' | 'FROM' | 'SIZE' | 'SUBJECT' | 'TO' | 'DISPLAYFROM' | 'DISPLAYTO';
const SORT_KEYS = new Set<string>(['ARRIVAL', 'CC', 'DATE', 'FROM', 'SIZE', 'SUBJECT', 'TO', 'DISPLAYFROM', 'DISPLAYTO']);

export interface SortCriterion {
  key: SortKey;
  reverse: boolean;
}

/** `(REVERSE SUBJECT DATE …)`; BAD for an empty list, an unknown key or a REVERSE without one. */
export function parseSortCriteria(t: Token | undefined): SortCriterion[] {
  const out: SortCriterion[] = [];
  let reverse = false;
  for (const item of asList(t, 'sort criteria')) {
    const word = asAtom(item, 'sort key').toUpperCase();
    if (word === 'REVERSE' && !reverse) reverse = true;
    else if (SORT_KEYS.has(word)) {
      out.push({ key: word as SortKey, reverse });
      reverse = false;
    } else throw new ParseError(`unknown sort key ${word.slice(0, 30)}`);
  }
  if (reverse || out.length === 0) throw new ParseError('sort key expected');
  return out;
}

/** Whether the keys need the header (everything but ARRIVAL and SIZE). */
export const needsHeader = (criteria: readonly SortCriterion[]): boolean => criteria.some((c) => c.key !== 'ARRIVAL' && c.key !== 'SIZE');

export interface SortItem {
  seq: number;
  uid: number;
  /** INTERNALDATE in seconds */
  arrival: number;
  size: number;
  fields: SortFields | null;
}

/** The sent date SORT DATE and THREAD use: the Date field, else INTERNALDATE (RFC 5256 §2.2). */
// a missing, unreadable or zero Date (Dovecot's "none") falls back to INTERNALDATE
export const sentDate = (m: SortItem): number => m.fields?.sent || m.arrival;

const NO_FIELDS = sortFields([]);

const STRING_FIELDS = { CC: 'cc', FROM: 'from', SUBJECT: 'subject', TO: 'to', DISPLAYFROM: 'displayFrom', DISPLAYTO: 'displayTo' } as const;

/** A message's value for one key: numbers and octet-ordered strings, compared with < and >. */
function keyOf(key: SortKey, m: SortItem): number | string {
  switch (key) {
    case 'ARRIVAL':
      return m.arrival;
    case 'SIZE':
      return m.size;
    case 'DATE':
      return sentDate(m);
    default:
      return (m.fields ?? NO_FIELDS)[STRING_FIELDS[key]];
  }
}

/** Sorted by each criterion in turn, then by sequence number (RFC 5256 §3); keys are read once per message. */
export function sortItems(items: SortItem[], criteria: readonly SortCriterion[]): SortItem[] {
  const decorated = items.map((m) => ({ m, keys: criteria.map((c) => keyOf(c.key, m)) }));
  const reverse = criteria.map((c) => (c.reverse ? -1 : 1));
  decorated.sort((a, b) => {
    for (let i = 0; i < reverse.length; i++) {
      const x = a.keys[i]!;
      const y = b.keys[i]!;
      if (x !== y) return (x < y ? -1 : 1) * reverse[i]!;
    }
    return a.m.seq - b.m.seq;
  });
  return decorated.map((d) => d.m);
}
