import { header, type MimePart } from './mime.ts';

/**
 * Part contents as readers compare them (IMAP SEARCH BODY/TEXT, Sieve's `body` test): the
 * Content-Transfer-Encoding undone (RFC 2045 §6) and text converted from its charset.
 */

/** A leaf part's content with base64 or quoted-printable undone; other encodings (7bit, 8bit, binary) as they are. */
export function decodedContent(buf: Buffer, part: MimePart): Buffer {
  const bytes = buf.subarray(part.bodyStart, part.end);
  const cte = (header(part, 'content-transfer-encoding') ?? '').trim().toLowerCase();
  if (cte === 'base64') return Buffer.from(bytes.toString('latin1'), 'base64');
  if (cte === 'quoted-printable')
    return Buffer.from(
      bytes
        .toString('latin1')
        // trailing blanks of a line were added in transport (RFC 2045 §6.7 rule 3); blanks before a soft break's "=" are content
        .replace(/[ \t]+(?=\r?\n)/g, '')
        .replace(/=\r?\n/g, '')
        .replace(/=([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
      'latin1',
    );
  return bytes;
}

/**
 * A leaf part's content as text: transfer-decoded, then read in its charset. US-ASCII (the
 * default) and unknown charsets are read as UTF-8, its superset and what unlabelled 8-bit mail
 * usually is (the runtime's TextDecoder would take "us-ascii" as windows-1252).
 */
export function partText(buf: Buffer, part: MimePart): string {
  const bytes = decodedContent(buf, part);
  const charset = (part.type === 'text' ? part.params.find(([k]) => k === 'charset')?.[1] : undefined)?.toLowerCase() ?? 'utf-8';
  try {
    return new TextDecoder(charset === 'us-ascii' || charset === 'ascii' ? 'utf-8' : charset).decode(bytes);
  } catch {
    return bytes.toString('utf8');
  }
}

/** The text of every text/* leaf, those of attached messages included, joined by "\n" (what IMAP SEARCH BODY compares). */
export function bodyText(buf: Buffer, part: MimePart): string {
  if (part.parts.length) return part.parts.map((p) => bodyText(buf, p)).join('\n');
  if (part.message) return bodyText(buf, part.message);
  return part.type === 'text' ? partText(buf, part) : '';
}
