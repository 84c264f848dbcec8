import { BerError, BerReader, TAG } from './ber.ts';
import { normalizeDn } from './dn.ts';
import { ATTRIBUTE_ALIASES, DN_ATTRIBUTES } from './schema.ts';

/**
 * LDAP search filters (RFC 4511 4.5.1): decoding from BER and evaluation against an
 * entry. Every attribute here uses case-insensitive string matching (caseIgnoreMatch,
 * or integer order for numeric values), so attribute names and values are normalized
 * once at decode time and compared to pre-normalized entry values.
 */

export type Filter =
  | { type: 'and' | 'or'; filters: Filter[] }
  | { type: 'not'; filter: Filter }
  | { type: 'eq' | 'ge' | 'le' | 'approx'; attr: string; value: string }
  | { type: 'present'; attr: string }
  | { type: 'substr'; attr: string; initial: string | null; any: string[]; final: string | null }
  | { type: 'ext'; attr: string | null; value: string; dnAttributes: boolean };

/** Deepest nesting of and/or/not accepted; real filters rarely pass 5. */
export const MAX_FILTER_DEPTH = 32;
/** Most filter nodes accepted in one search. */
export const MAX_FILTER_NODES = 1024;

export class FilterError extends BerError {}

/** Lowercase attribute type without options (`cn;lang-en` → `cn`), OIDs and alternative names mapped to the names entries use. */
export function normalizeAttr(name: string): string {
  const semi = name.indexOf(';');
  const base = (semi >= 0 ? name.slice(0, semi) : name).trim().toLowerCase();
  return ATTRIBUTE_ALIASES.get(base) ?? base;
}

/** caseIgnoreMatch: case folded, leading/trailing space dropped, inner runs of space collapsed. */
export function normalizeValue(value: string): string {
  const lower = value.toLowerCase();
  // Fast path: most values have no insignificant space.
  if (!/^\s|\s$|\s\s/.test(lower)) return lower;
  return lower.trim().replace(/\s+/g, ' ');
}

/** An assertion value normalized the way the attribute's values are. */
export function assertionValue(attr: string, raw: string): string {
  return (DN_ATTRIBUTES.has(attr) && normalizeDn(raw)) || normalizeValue(raw);
}

/** Decodes the filter at the reader's position (the CHOICE element itself). */
export function decodeFilter(reader: BerReader): Filter {
  const budget = { nodes: 0 };
  return decode(reader, 0, budget);
}

function decode(reader: BerReader, depth: number, budget: { nodes: number }): Filter {
  if (depth > MAX_FILTER_DEPTH) throw new FilterError(`filter nested deeper than ${MAX_FILTER_DEPTH}`);
  if (++budget.nodes > MAX_FILTER_NODES) throw new FilterError(`filter has more than ${MAX_FILTER_NODES} parts`);
  const [tag, r] = reader.enterAny();
  switch (tag) {
    case 0xa0:
    case 0xa1: {
      const filters: Filter[] = [];
      while (!r.done) filters.push(decode(r, depth + 1, budget));
      return { type: tag === 0xa0 ? 'and' : 'or', filters };
    }
    case 0xa2: {
      const filter = decode(r, depth + 1, budget);
      if (!r.done) throw new FilterError('trailing data in not filter');
      return { type: 'not', filter };
    }
    case 0xa3:
    case 0xa5:
    case 0xa6:
    case 0xa8: {
      const attr = normalizeAttr(r.readString());
      const value = assertionValue(attr, r.readString());
      if (!r.done) throw new FilterError('trailing data in attribute value assertion');
      const type = tag === 0xa3 ? 'eq' : tag === 0xa5 ? 'ge' : tag === 0xa6 ? 'le' : 'approx';
      return { type, attr, value };
    }
    case 0xa4: {
      const attr = normalizeAttr(r.readString());
      const parts = r.enter(TAG.SEQUENCE);
      let initial: string | null = null;
      let final: string | null = null;
      const any: string[] = [];
      let count = 0;
      while (!parts.done) {
        const [ptag, pr] = parts.enterAny();
        const v = normalizeValue(pr.rest());
        if (ptag === 0x80 && count === 0) initial = v;
        else if (ptag === 0x81 && final === null) any.push(v);
        else if (ptag === 0x82 && final === null) final = v;
        else throw new FilterError('malformed substring filter');
        count++;
      }
      if (count === 0) throw new FilterError('empty substring filter');
      return { type: 'substr', attr, initial, any, final };
    }
    case 0x87: {
      const attr = normalizeAttr(r.rest());
      if (!attr) throw new FilterError('empty attribute in presence filter');
      return { type: 'present', attr };
    }
    case 0xa9: {
      let attr: string | null = null;
      let value: string | null = null;
      let dnAttributes = false;
      while (!r.done) {
        const [t, pr] = r.enterAny();
        if (t === 0x81) pr.rest(); // matching rule: every attribute here matches case-insensitively anyway
        else if (t === 0x82) attr = normalizeAttr(pr.rest());
        else if (t === 0x83) value = normalizeValue(pr.rest());
        else if (t === 0x84) dnAttributes = pr.rest() !== '\0';
        else throw new FilterError('malformed extensible match');
      }
      if (value === null) throw new FilterError('extensible match without a value');
      return { type: 'ext', attr, value, dnAttributes };
    }
    default:
      throw new FilterError(`unknown filter choice 0x${tag.toString(16)}`);
  }
}

/** What a filter needs from an entry: normalized values per lowercase attribute name. */
export interface Matchable {
  values(attr: string): readonly string[] | undefined;
  /** every normalized value of every attribute, for extensible match without a type */
  allValues(): Iterable<string>;
}

const NUMERIC = /^-?\d+$/;

function order(a: string, b: string): number {
  if (NUMERIC.test(a) && NUMERIC.test(b)) return Number(a) - Number(b);
  return a < b ? -1 : a > b ? 1 : 0;
}

function squash(v: string): string {
  return v.replace(/\s+/g, '');
}

function substringMatch(v: string, f: { initial: string | null; any: string[]; final: string | null }): boolean {
  let pos = 0;
  let end = v.length;
  if (f.initial !== null) {
    if (!v.startsWith(f.initial)) return false;
    pos = f.initial.length;
  }
  if (f.final !== null) {
    if (!v.endsWith(f.final) || v.length - f.final.length < pos) return false;
    end = v.length - f.final.length;
  }
  for (const part of f.any) {
    const i = v.indexOf(part, pos);
    if (i < 0 || i + part.length > end) return false;
    pos = i + part.length;
  }
  return true;
}

export function matches(f: Filter, e: Matchable): boolean {
  switch (f.type) {
    case 'and':
      for (const c of f.filters) if (!matches(c, e)) return false;
      return true;
    case 'or':
      for (const c of f.filters) if (matches(c, e)) return true;
      return false;
    case 'not':
      return !matches(f.filter, e);
    case 'present':
      return f.attr === 'objectclass' || e.values(f.attr) !== undefined;
    case 'eq':
      return e.values(f.attr)?.includes(f.value) ?? false;
    case 'approx': {
      const want = squash(f.value);
      return e.values(f.attr)?.some((v) => squash(v) === want) ?? false;
    }
    case 'ge':
      return e.values(f.attr)?.some((v) => order(v, f.value) >= 0) ?? false;
    case 'le':
      return e.values(f.attr)?.some((v) => order(v, f.value) <= 0) ?? false;
    case 'substr':
      return e.values(f.attr)?.some((v) => substringMatch(v, f)) ?? false;
    case 'ext':
      if (f.attr !== null) return e.values(f.attr)?.includes(f.value) ?? false;
      for (const v of e.allValues()) if (v === f.value) return true;
      return false;
  }
}
