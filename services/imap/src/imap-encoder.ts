/**
 * IMAP response syntax, pure: values become atoms, quoted strings, literals, NIL and
 * parenthesized lists; whole responses become bytes ready for the socket.
 */

/** Sent as is (flags, keywords, numbers as text, response codes). */
export class Atom {
  constructor(readonly value: string) {}
}

/** Already-encoded bytes spliced into a response (e.g. a prebuilt BODYSTRUCTURE). */
export class Raw {
  constructor(readonly value: string | Buffer) {}
}

export type Value = null | number | string | Buffer | Atom | Raw | Value[];

export const atom = (s: string): Atom => new Atom(s);
export const raw = (s: string | Buffer): Raw => new Raw(s);

const QUOTABLE = /^[\x20-\x7e]*$/;

/** A string as a quoted string when it is short 7-bit text, otherwise as a literal. */
function encodeString(s: string, out: (string | Buffer)[]): void {
  if (s.length < 1024 && QUOTABLE.test(s)) {
    out.push(`"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`);
    return;
  }
  const bytes = Buffer.from(s, 'utf8');
  out.push(`{${bytes.length}}\r\n`, bytes);
}

export function encodeValue(v: Value, out: (string | Buffer)[] = []): (string | Buffer)[] {
  if (v === null) out.push('NIL');
  else if (typeof v === 'number') out.push(String(v));
  else if (typeof v === 'string') encodeString(v, out);
  else if (Buffer.isBuffer(v)) out.push(`{${v.length}}\r\n`, v);
  else if (v instanceof Atom) out.push(v.value);
  else if (v instanceof Raw) out.push(v.value);
  else {
    out.push('(');
    v.forEach((item, i) => {
      if (i) out.push(' ');
      encodeValue(item, out);
    });
    out.push(')');
  }
  return out;
}

/** Space-separated values, e.g. the items of an untagged response. */
export function encodeValues(values: Value[]): (string | Buffer)[] {
  const out: (string | Buffer)[] = [];
  values.forEach((v, i) => {
    if (i) out.push(' ');
    encodeValue(v, out);
  });
  return out;
}

export function toBuffer(pieces: (string | Buffer)[]): Buffer {
  return Buffer.concat(pieces.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));
}

/** `* <values>\r\n` */
export function untagged(...values: Value[]): Buffer {
  return toBuffer(['* ', ...encodeValues(values), '\r\n']);
}

/** `<tag> OK|NO|BAD [code] text\r\n`; text must be one line of 7-bit text. */
export function tagged(tag: string, status: 'OK' | 'NO' | 'BAD', text: string, code?: string): Buffer {
  return Buffer.from(`${tag} ${status} ${code ? `[${code}] ` : ''}${oneLine(text)}\r\n`, 'latin1');
}

/** `* OK|NO|BAD|BYE|PREAUTH [code] text\r\n` */
export function status(kind: 'OK' | 'NO' | 'BAD' | 'BYE', text: string, code?: string): Buffer {
  return Buffer.from(`* ${kind} ${code ? `[${code}] ` : ''}${oneLine(text)}\r\n`, 'latin1');
}

export function continuation(text = 'Ready'): Buffer {
  return Buffer.from(`+ ${oneLine(text)}\r\n`, 'latin1');
}

function oneLine(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 500);
}

/** A number set as compact ranges: [1,2,3,5] → "1:3,5" (UIDPLUS responses). */
export function compactSet(nums: readonly number[]): string {
  const sorted = [...nums].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const start = sorted[i]!;
    while (i + 1 < sorted.length && sorted[i + 1] === sorted[i]! + 1) i++;
    out.push(start === sorted[i] ? String(start) : `${start}:${sorted[i]}`);
  }
  return out.join(',');
}

/** Like compactSet but keeps the given order (COPYUID pairs must line up). */
export function orderedSet(nums: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < nums.length; i++) {
    const start = nums[i]!;
    while (i + 1 < nums.length && nums[i + 1] === nums[i]! + 1) i++;
    out.push(start === nums[i] ? String(start) : `${start}:${nums[i]}`);
  }
  return out.join(',');
}
