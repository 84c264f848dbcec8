/**
 * Distinguished names (RFC 4514) as far as this tree needs them: parsing with escapes,
 * and a normalized form (lowercase types and values, no spaces around separators) that
 * the server compares.
 */

export interface Rdn {
  /** lowercase attribute type */
  type: string;
  /** unescaped value, case preserved */
  value: string;
}

const HEX = /^[0-9a-fA-F]{2}$/;

/** Parses a DN; null when it is malformed. Multi-valued RDNs (`a=1+b=2`) are not used here and rejected. */
export function parseDn(dn: string): Rdn[] | null {
  const rdns: Rdn[] = [];
  if (dn.trim() === '') return rdns;
  let i = 0;
  const n = dn.length;
  while (i < n) {
    while (i < n && dn[i] === ' ') i++;
    const eq = dn.indexOf('=', i);
    if (eq < 0) return null;
    const type = dn.slice(i, eq).trim().toLowerCase();
    if (!/^([a-z][a-z0-9-]*|\d+(\.\d+)*)$/.test(type)) return null;
    i = eq + 1;
    while (i < n && dn[i] === ' ') i++;
    const bytes: number[] = [];
    let trailingSpaces = 0;
    let done = false;
    while (i < n && !done) {
      const c = dn[i]!;
      if (c === '\\') {
        const pair = dn.slice(i + 1, i + 3);
        if (HEX.test(pair)) {
          bytes.push(parseInt(pair, 16));
          i += 3;
        } else if (i + 1 < n) {
          bytes.push(...Buffer.from(dn[i + 1]!));
          i += 2;
        } else return null;
        trailingSpaces = 0;
      } else if (c === ',' || c === ';') {
        done = true;
        i++;
      } else if (c === '+' || c === '"' || c === '<' || c === '>') {
        return null;
      } else {
        const cp = dn.codePointAt(i)!;
        const ch = String.fromCodePoint(cp);
        bytes.push(...Buffer.from(ch));
        trailingSpaces = c === ' ' ? trailingSpaces + 1 : 0;
        i += ch.length;
      }
    }
    if (done && i >= n) return null; // trailing separator
    const value = Buffer.from(bytes.slice(0, bytes.length - trailingSpaces)).toString('utf8');
    rdns.push({ type, value });
  }
  return rdns;
}

/** Escapes a value for use in a DN string. */
export function escapeDnValue(value: string): string {
  return value.replace(/[,+"\\<>;=]/g, (c) => `\\${c}`).replace(/^[ #]|[ ]$/g, (c) => `\\${c}`);
}

/** Normalized DN string for comparisons, or null when malformed. */
export function normalizeDn(dn: string): string | null {
  const rdns = parseDn(dn);
  if (!rdns) return null;
  return rdns.map((r) => `${r.type}=${escapeDnValue(r.value.toLowerCase())}`).join(',');
}
