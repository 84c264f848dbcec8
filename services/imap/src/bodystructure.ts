import { encodeValue, encodeValues, type Value } from './imap-encoder.ts';
import { envelope, nstring } from './envelope.ts';
import { childrenOf, header, splitParams, type MimePart } from '@hearth/message';

/**
 * BODY and BODYSTRUCTURE (RFC 3501 §7.4.2) from a MIME tree, and the bytes of
 * BODY[section] (§6.4.5), pure.
 */

function paramList(params: [string, string][]): Value {
  const joined = joinContinuations(params);
  return joined.length ? joined.flatMap(([k, v]) => [nstring(k), nstring(v)]) : null;
}

/**
 * RFC 2231 §3 parameter continuations joined, as RFC 9051 §7.5.2 asks (Appendix E: the rule
 * was hidden in RFC 3501's reference) and Dovecot answers: `name*0`, `name*1`… become `name`;
 * when a piece is extended (`name*0*`) they become `name*`, still in RFC 2231's encoded form
 * (charset'language'%XX, a plain piece %-escaped to fit), for a client to decode. As in Dovecot,
 * the joined parameters follow the others.
 */
function joinContinuations(params: [string, string][]): [string, string][] {
  const plain: [string, string][] = [];
  const pieces = new Map<string, { n: number; value: string; extended: boolean }[]>();
  for (const [k, v] of params) {
    const m = /^(.+?)\*(\d{1,4})(\*?)$/.exec(k);
    if (!m) plain.push([k, v]);
    else {
      const list = pieces.get(m[1]!) ?? [];
      pieces.set(m[1]!, list);
      list.push({ n: Number(m[2]), value: v, extended: m[3] === '*' });
    }
  }
  for (const [name, list] of pieces) {
    list.sort((a, b) => a.n - b.n);
    const extended = list.some((p) => p.extended);
    plain.push([extended ? `${name}*` : name, list.map((p) => (extended && !p.extended ? rfc2231Escape(p.value) : p.value)).join('')]);
  }
  return plain;
}

/** Text as RFC 2231 §7's extended-other-values: UTF-8 bytes, all but attribute-chars as %XX. */
function rfc2231Escape(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += byte > 0x20 && byte < 0x7f && !/[*'%()<>@,;:\\"/[\]?=]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Text lines of a body; a last line without a line ending still counts. */
function countLines(buf: Buffer, start: number, end: number): number {
  let n = 0;
  for (let i = buf.indexOf(10, start); i >= 0 && i < end; i = buf.indexOf(10, i + 1)) n++;
  if (end > start && buf[end - 1] !== 10) n++;
  return n;
}

function disposition(part: MimePart): Value {
  const d = header(part, 'content-disposition');
  if (!d) return null;
  const [kind, params] = splitParams(d);
  return kind ? [nstring(kind), paramList(params)] : null;
}

function language(part: MimePart): Value {
  const l = header(part, 'content-language');
  if (!l) return null;
  const langs = l.split(',').map((x) => x.trim()).filter(Boolean);
  return langs.length ? langs.map((x) => nstring(x)) : null;
}

/**
 * BODYSTRUCTURE (extended) or BODY as encoded pieces. Written by hand rather than as a
 * Value because a multipart's children follow each other without spaces.
 */
export function encodeBodyStructure(buf: Buffer, part: MimePart, extended: boolean, out: (string | Buffer)[] = []): (string | Buffer)[] {
  out.push('(');
  if (part.parts.length) {
    for (const p of part.parts) encodeBodyStructure(buf, p, extended, out);
    out.push(' ');
    const rest: Value[] = [nstring(part.subtype)];
    if (extended) rest.push(paramList(part.params), disposition(part), language(part), nstring(header(part, 'content-location')));
    out.push(...encodeValues(rest), ')');
    return out;
  }
  const encoding = header(part, 'content-transfer-encoding')?.trim();
  const fields: Value[] = [
    nstring(part.type),
    nstring(part.subtype),
    paramList(part.params),
    nstring(header(part, 'content-id')),
    nstring(header(part, 'content-description')),
    nstring(encoding ? encoding.toUpperCase() : '7BIT'),
    part.end - part.bodyStart,
  ];
  out.push(...encodeValues(fields));
  if (part.message) {
    out.push(' ', ...encodeValue(envelope(part.message)), ' ');
    encodeBodyStructure(buf, part.message, extended, out);
    out.push(` ${countLines(buf, part.bodyStart, part.end)}`);
  } else if (part.type === 'text') out.push(` ${countLines(buf, part.bodyStart, part.end)}`);
  if (extended) out.push(' ', ...encodeValues([nstring(header(part, 'content-md5')), disposition(part), language(part), nstring(header(part, 'content-location'))]));
  out.push(')');
  return out;
}

// ---- sections ----

export interface Section {
  path: number[];
  /** '' (whole part), HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME */
  specifier: string;
  fields: string[];
}

export class SectionError extends Error {}

/** Parses the inside of BODY[...]; throws SectionError on bad syntax. */
export function parseSection(text: string): Section {
  const m = /^((?:[1-9]\d{0,5}\.)*[1-9]\d{0,5})?(?:\.?(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME))?(?: \(([^()]*)\))?$/i.exec(text);
  if (!m) throw new SectionError('invalid section');
  const path = m[1] ? m[1].split('.').map(Number) : [];
  const specifier = (m[2] ?? '').toUpperCase();
  if (m[1] && m[2] && !text.slice(m[1].length).startsWith('.')) throw new SectionError('invalid section');
  if (!m[1] && text.startsWith('.')) throw new SectionError('invalid section');
  const isFields = specifier.startsWith('HEADER.FIELDS');
  if (isFields !== (m[3] !== undefined)) throw new SectionError('HEADER.FIELDS needs a field list');
  if (specifier === 'MIME' && path.length === 0) throw new SectionError('MIME needs a part number');
  const fields = m[3] !== undefined ? m[3].split(' ').filter(Boolean).map((f) => f.replace(/^"|"$/g, '').toLowerCase()) : [];
  if (isFields && fields.length === 0) throw new SectionError('empty field list');
  return { path, specifier, fields };
}

/** The part a section's part numbers name (the message itself for none); null when there is no such part. */
export function partAt(root: MimePart, path: readonly number[]): MimePart | null {
  let part: MimePart | undefined = root;
  for (const [i, n] of path.entries()) {
    part = childrenOf(part, i === 0)[n - 1];
    if (!part) return null;
  }
  return part;
}

/** The bytes of BODY[section] (before any <partial>); empty when the part does not exist. */
export function sectionBytes(buf: Buffer, root: MimePart, section: Section): Buffer {
  const part = partAt(root, section.path);
  if (!part) return Buffer.alloc(0);
  const { specifier } = section;
  if (specifier === '') return section.path.length === 0 ? buf.subarray(root.start, root.end) : buf.subarray(part.bodyStart, part.end);
  if (specifier === 'MIME') return buf.subarray(part.start, part.bodyStart);
  // HEADER/TEXT of a part number address the message inside a message/rfc822 part.
  const msg = section.path.length ? part.message : root;
  if (!msg) return Buffer.alloc(0);
  if (specifier === 'TEXT') return buf.subarray(msg.bodyStart, msg.end);
  if (specifier === 'HEADER') return buf.subarray(msg.start, msg.bodyStart);
  const want = new Set(section.fields);
  const not = specifier === 'HEADER.FIELDS.NOT';
  const chunks = msg.headers.filter((h) => want.has(h.name) !== not).map((h) => buf.subarray(h.start, h.end));
  chunks.push(Buffer.from('\r\n'));
  return Buffer.concat(chunks);
}
