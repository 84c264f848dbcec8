/**
 * A MIME tree over the raw message bytes (RFC 2045/2046/5322), pure: every part keeps
 * byte offsets into the original buffer, so IMAP serves BODY[section] without re-encoding
 * and SMTP edits header fields in place.
 */

export interface HeaderField {
  /** lower case */
  name: string;
  /** unfolded, trimmed, latin1-decoded (bytes kept one-to-one) */
  value: string;
  /** the field's bytes including its line ending(s) */
  start: number;
  end: number;
  /** decoded, lower-cased value for SEARCH (filled by the header cache) */
  folded?: string;
  /** for address fields: the parsed addresses as SEARCH FROM/TO/CC/BCC compare them (filled by the header cache) */
  addresses?: string;
}

export interface MimePart {
  start: number;
  /** first byte after the blank line that ends the header (== end when there is none) */
  bodyStart: number;
  end: number;
  headers: HeaderField[];
  type: string;
  subtype: string;
  params: [string, string][];
  /** children of a multipart */
  parts: MimePart[];
  /** the embedded message of a message/rfc822 part */
  message: MimePart | null;
  /** of a multipart: the byte ranges before its first boundary line (without the line break ending it) and after its closing one */
  preamble?: [number, number];
  epilogue?: [number, number];
}

const MAX_DEPTH = 20;
const MAX_PARTS = 2000;

export function header(part: MimePart, name: string): string | null {
  const f = part.headers.find((h) => h.name === name);
  return f ? f.value : null;
}

/** Parses a whole message. Never throws: malformed input gives a best-effort tree. */
export function parseMessage(buf: Buffer): MimePart {
  const counter = { n: 0 };
  return parseEntity(buf, 0, buf.length, 'text/plain', 0, counter);
}

function parseEntity(buf: Buffer, start: number, end: number, defaultType: string, depth: number, counter: { n: number }): MimePart {
  counter.n++;
  const { headers, bodyStart } = parseHeaders(buf, start, end);
  const ct = headers.find((h) => h.name === 'content-type')?.value ?? '';
  const parsed = parseContentType(ct || defaultType);
  const part: MimePart = { start, bodyStart, end, headers, type: parsed.type, subtype: parsed.subtype, params: parsed.params, parts: [], message: null };
  if (!ct) {
    const [t, s] = defaultType.split('/');
    part.type = t!;
    part.subtype = s!;
    if (part.type === 'text') part.params = [['charset', 'us-ascii']];
  }
  if (depth >= MAX_DEPTH || counter.n > MAX_PARTS) return part;
  if (part.type === 'multipart') {
    const boundary = part.params.find(([k]) => k === 'boundary')?.[1];
    if (boundary) {
      const childDefault = part.subtype === 'digest' ? 'message/rfc822' : 'text/plain';
      const split = splitMultipart(buf, bodyStart, end, boundary);
      for (const [s, e] of split.parts) part.parts.push(parseEntity(buf, s, e, childDefault, depth + 1, counter));
      if (split.preamble) part.preamble = split.preamble;
      if (split.epilogue) part.epilogue = split.epilogue;
    }
    if (part.parts.length === 0) {
      // A multipart without parts is served as one empty text part, as Dovecot does.
      part.parts.push({ start: bodyStart, bodyStart, end: bodyStart, headers: [], type: 'text', subtype: 'plain', params: [['charset', 'us-ascii']], parts: [], message: null });
    }
  } else if (part.type === 'message' && (part.subtype === 'rfc822' || part.subtype === 'global')) {
    part.message = parseEntity(buf, bodyStart, end, 'text/plain', depth + 1, counter);
  }
  return part;
}

/** Header fields from start; the body begins after the first empty line. */
export function parseHeaders(buf: Buffer, start: number, end: number): { headers: HeaderField[]; bodyStart: number } {
  const headers: HeaderField[] = [];
  let pos = start;
  let current: { name: string; raw: string; start: number; end: number } | null = null;
  const flush = (): void => {
    if (!current) return;
    headers.push({ name: current.name, value: current.raw.replace(/\r?\n/g, '').replace(/^[ \t]+|[ \t]+$/g, ''), start: current.start, end: current.end });
    current = null;
  };
  while (pos < end) {
    let nl = buf.indexOf(10, pos);
    if (nl < 0 || nl >= end) nl = end - 1;
    const lineEnd = nl + 1;
    const line = buf.toString('latin1', pos, buf[nl] === 10 && nl > pos && buf[nl - 1] === 13 ? nl - 1 : buf[nl] === 10 ? nl : lineEnd);
    if (line === '') {
      flush();
      return { headers, bodyStart: lineEnd };
    }
    if ((line[0] === ' ' || line[0] === '\t') && current) {
      (current as { raw: string; end: number }).raw += line;
      (current as { end: number }).end = lineEnd;
    } else {
      flush();
      const colon = line.indexOf(':');
      if (colon > 0) current = { name: line.slice(0, colon).trim().toLowerCase(), raw: line.slice(colon + 1), start: pos, end: lineEnd };
    }
    pos = lineEnd;
  }
  flush();
  return { headers, bodyStart: end };
}

/** Byte ranges of the parts between `--boundary` lines (without the CRLF before a boundary), of the preamble and of the epilogue. */
function splitMultipart(buf: Buffer, start: number, end: number, boundary: string): { parts: [number, number][]; preamble?: [number, number]; epilogue?: [number, number] } {
  const delim = Buffer.from(`--${boundary}`, 'latin1');
  const parts: [number, number][] = [];
  let preamble: [number, number] | undefined;
  let partStart = -1;
  let pos = start;
  while (pos < end) {
    const i = buf.indexOf(delim, pos);
    if (i < 0 || i >= end) break;
    const atLineStart = i === start || buf[i - 1] === 10;
    if (!atLineStart) {
      pos = i + 1;
      continue;
    }
    const after = i + delim.length;
    const closing = buf[after] === 45 && buf[after + 1] === 45;
    let e = i;
    if (buf[e - 1] === 10 && e > start) e--;
    if (buf[e - 1] === 13 && e > start) e--;
    if (partStart >= 0) parts.push([partStart, Math.max(partStart, e)]);
    else preamble = [start, e];
    let nl = buf.indexOf(10, after);
    if (nl < 0 || nl >= end) nl = end - 1;
    if (closing) return { parts, preamble, epilogue: [Math.min(nl + 1, end), end] };
    partStart = nl + 1;
    pos = partStart;
  }
  if (partStart >= 0 && partStart < end) parts.push([partStart, end]);
  return { parts, preamble };
}

export interface ContentType {
  type: string;
  subtype: string;
  params: [string, string][];
}

/** `type/subtype; a=b; c="d"` with comments ignored; lower-case type and parameter names. */
export function parseContentType(value: string): ContentType {
  const [main, params] = splitParams(value);
  const m = /^([^/\s]+)\s*\/\s*([^\s;]+)/.exec(main);
  if (!m) return { type: 'text', subtype: 'plain', params: params.length ? params : [['charset', 'us-ascii']] };
  return { type: m[1]!.toLowerCase(), subtype: m[2]!.toLowerCase(), params };
}

/** The value before the first `;` and the parameters after it. */
export function splitParams(value: string): [string, [string, string][]] {
  const clean = stripComments(value);
  const params: [string, string][] = [];
  const semi = clean.indexOf(';');
  const main = (semi < 0 ? clean : clean.slice(0, semi)).trim();
  if (semi < 0) return [main, params];
  const re = /;\s*([^=\s;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(clean.slice(semi)))) {
    let v = m[2]!.trim();
    if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    params.push([m[1]!.toLowerCase(), v]);
  }
  return [main, params];
}

function stripComments(s: string): string {
  if (!s.includes('(')) return s;
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quoted) {
      out += c;
      if (c === '\\') out += s[++i] ?? '';
      else if (c === '"') quoted = false;
    } else if (c === '"' && depth === 0) {
      quoted = true;
      out += c;
    } else if (c === '(') depth++;
    else if (c === ')' && depth > 0) depth--;
    else if (depth === 0) out += c;
  }
  return out;
}

/**
 * The parts numbered under `part` (RFC 3501 §6.4.5): a multipart's parts; under a
 * message/rfc822 part, its embedded message's parts (or that message's body as "1");
 * otherwise the part itself as "1". At the top level, pass the message with `top`: a
 * message whose own type is message/rfc822 has one part, "1", the whole inner message.
 */
export function childrenOf(part: MimePart, top = false): MimePart[] {
  if (part.parts.length) return part.parts;
  if (part.message && !top) return part.message.parts.length ? part.message.parts : [part.message];
  return [part];
}

/** IMAP serves CRLF; Maildir files saved by Dovecot use bare LF. Returns buf itself when it is already CRLF. */
export function toCrlf(buf: Buffer): Buffer {
  let bare = 0;
  for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) if (i === 0 || buf[i - 1] !== 13) bare++;
  if (bare === 0) return buf;
  const out = Buffer.alloc(buf.length + bare);
  let o = 0;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!;
    if (c === 10 && (i === 0 || buf[i - 1] !== 13)) out[o++] = 13;
    out[o++] = c;
  }
  return out;
}

function hasBareLf(buf: Buffer, start = 0, end = buf.length): boolean {
  for (let i = buf.indexOf(10, start); i >= 0 && i < end; i = buf.indexOf(10, i + 1)) if (i === start || buf[i - 1] !== 13) return true;
  return false;
}

/**
 * The message with the binary content of its non-text parts kept safe from `toCrlf`: a store that
 * serves every bare LF as CRLF (as Dovecot's LF-only Maildir files need) would change such a part's
 * bytes, so each leaf part that is not text/* and holds a bare LF outside base64 or quoted-printable
 * is re-encoded in base64 with its Content-Transfer-Encoding field to match, as Dovecot stores binary
 * APPENDs. Text parts and header sections stay as they are: they are line-oriented, and CRLF is
 * how they are served (RFC 3516 §4.2). Returns `raw` itself when no part needs it.
 */
export function encodeBinaryParts(raw: Buffer): Buffer {
  if (!hasBareLf(raw)) return raw;
  const edits: { start: number; end: number; data: Buffer }[] = [];
  const visit = (part: MimePart): void => {
    if (part.parts.length) return part.parts.forEach(visit);
    if (part.message) return visit(part.message);
    const cte = part.headers.filter((h) => h.name === 'content-transfer-encoding');
    const encoding = (cte[0]?.value ?? '').trim().toLowerCase();
    if (part.type === 'text' || encoding === 'base64' || encoding === 'quoted-printable' || !hasBareLf(raw, part.bodyStart, part.end)) return;
    for (const f of cte) edits.push({ start: f.start, end: f.end, data: Buffer.alloc(0) });
    const headerEnd = part.headers.length ? part.headers[part.headers.length - 1]!.end : part.start;
    edits.push({ start: headerEnd, end: headerEnd, data: Buffer.from('Content-Transfer-Encoding: base64\r\n', 'latin1') });
    const base64 = raw.subarray(part.bodyStart, part.end).toString('base64').replace(/.{76}(?=.)/g, '$&\r\n');
    edits.push({ start: part.bodyStart, end: part.end, data: Buffer.from(base64, 'latin1') });
  };
  visit(parseMessage(raw));
  if (edits.length === 0) return raw;
  edits.sort((a, b) => a.start - b.start || a.end - b.end);
  const out: Buffer[] = [];
  let at = 0;
  for (const e of edits) {
    out.push(raw.subarray(at, e.start), e.data);
    at = e.end;
  }
  out.push(raw.subarray(at));
  return Buffer.concat(out);
}
