import { parseMessage, partText, type MimePart } from '@hearth/message';

/** RFC 5173 §5 body transforms; without one, `:text`. */
export type BodyTransform = { kind: 'raw' } | { kind: 'text' } | { kind: 'content'; types: string[] };

/**
 * The strings a `body` test compares for one transform of a raw message (RFC 5173 §5), read
 * through the one MIME reader (@hearth/message); the tree is parsed once per message.
 * - `:raw`: the body after the header, undecoded, MIME boundaries and part headers included.
 * - `:content types`: every part whose type matches, recursively: a leaf's content (transfer
 *   encoding undone, text in UTF-8); a multipart's preamble and epilogue (its parts only when
 *   they match themselves); a message/rfc822's header section (its body only when it matches).
 * - `:text`: the text/* leaves as `:content "text"` has them, HTML with its markup taken out.
 */
export function messageBody(raw: Buffer): (transform: BodyTransform) => string[] {
  let root: MimePart | null = null;
  return (transform) => {
    root ??= parseMessage(raw);
    if (transform.kind === 'raw') return [raw.subarray(root.bodyStart).toString('utf8')];
    const types = transform.kind === 'text' ? ['text'] : transform.types;
    const out: string[] = [];
    collect(raw, root, types, transform.kind === 'text', out);
    return out;
  };
}

/** §5.2: "" matches every type; "type" any subtype of it; "type/subtype" that one; anything else (a leading or trailing slash, two slashes) none. */
export function contentTypeMatches(spec: string, part: MimePart): boolean {
  if (spec === '') return true;
  const pieces = spec.toLowerCase().split('/');
  if (pieces.length > 2 || pieces.some((p) => p === '')) return false;
  return pieces[0] === part.type && (pieces[1] === undefined || pieces[1] === part.subtype);
}

function collect(raw: Buffer, part: MimePart, types: string[], extractText: boolean, out: string[]): void {
  const hit = types.some((t) => contentTypeMatches(t, part));
  if (part.parts.length) {
    if (hit) for (const range of [part.preamble, part.epilogue]) if (range && range[1] > range[0]) out.push(raw.toString('utf8', range[0], range[1]));
    for (const p of part.parts) collect(raw, p, types, extractText, out);
  } else if (part.message) {
    const inner = part.message;
    if (hit) out.push(raw.toString('utf8', inner.start, inner.headers.at(-1)?.end ?? inner.start));
    collect(raw, inner, types, extractText, out);
  } else if (hit) {
    const text = partText(raw, part);
    out.push(extractText && part.subtype === 'html' ? htmlText(text) : text);
  }
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

/**
 * RFC 5173 §5.3 allows taking markup out for :text: comments, scripts and styles removed (an
 * unclosed one runs to the end), tags removed, character references decoded. Linear in the
 * length of the HTML, whatever it holds.
 */
function htmlText(html: string): string {
  return withoutHiddenRuns(html)
    .replace(/<\/?(?:p|div|br|li|tr|h[1-6]|blockquote|pre|table)\b[^<>]*>/gi, '\n')
    .replace(/<[^<>]*>/g, '')
    .replace(/&(#x[0-9a-f]{1,6}|#\d{1,7}|[a-z]{2,6});/gi, (whole, ref: string) => {
      if (ref[0] !== '#') return ENTITIES[ref.toLowerCase()] ?? whole;
      const code = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : Number(ref.slice(1));
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    });
}

/** The HTML without `<!-- … -->`, `<script>…</script>` and `<style>…</style>`. */
function withoutHiddenRuns(html: string): string {
  const opening = /<!--|<(script|style)\b/gi;
  let out = '';
  let at = 0;
  for (let m = opening.exec(html); m; m = opening.exec(html)) {
    out += html.slice(at, m.index);
    const closer = m[1] ? new RegExp(`</${m[1]}`, 'gi') : /-->/g;
    closer.lastIndex = opening.lastIndex;
    const close = closer.exec(html);
    if (!close) return out;
    at = m[1] ? html.indexOf('>', close.index) + 1 || html.length : close.index + 3;
    opening.lastIndex = at;
  }
  return out + html.slice(at);
}
