import { parseHeaders, type HeaderField } from './mime.ts';

/**
 * The top-level header section of a raw message, read the one way every reader here reads it:
 * a name may be followed by blanks before the colon ("From : x", RFC 5322 obs-optional), which
 * mail readers and DKIM take as the field; lines without a colon name nothing and are skipped.
 */

/** Byte offset where the body starts (after the empty line), or raw.length when there is none. */
export function headerEnd(raw: Buffer): number {
  return parseHeaders(raw, 0, raw.length).bodyStart;
}

/** The header fields in order, with their byte ranges; names lower-cased, values unfolded (latin1). */
export function headerFields(raw: Buffer): HeaderField[] {
  return parseHeaders(raw, 0, raw.length).headers;
}

/** Unfolded values of a header field (case-insensitive name), in order. */
export function headerValues(raw: Buffer, name: string): string[] {
  const want = name.toLowerCase();
  return headerFields(raw)
    .filter((f) => f.name === want)
    .map((f) => f.value);
}

/** The message without the header fields for which `drop(name, value)` is true; every other byte is kept as it was. */
export function removeHeaderFields(raw: Buffer, drop: (name: string, value: string) => boolean): Buffer {
  const gone = headerFields(raw).filter((f) => drop(f.name, f.value));
  if (gone.length === 0) return raw;
  const keep: Buffer[] = [];
  let at = 0;
  for (const f of gone) {
    keep.push(raw.subarray(at, f.start));
    at = f.end;
  }
  keep.push(raw.subarray(at));
  return Buffer.concat(keep);
}
