import { asAtom, asList, parseNumber, ParseError, type Token } from './imap-parser.ts';
import { parseSection, SectionError, type Section } from './bodystructure.ts';

/** FETCH data items (RFC 3501 §6.4.5, RFC 3516 BINARY, RFC 7162 MODSEQ/CHANGEDSINCE), parsed from tokens. */

export type FetchItem =
  | { k: 'UID' | 'FLAGS' | 'INTERNALDATE' | 'RFC822.SIZE' | 'ENVELOPE' | 'BODY' | 'BODYSTRUCTURE' | 'MODSEQ' }
  | {
      k: 'SECTION';
      /** the response label before any <origin>, e.g. BODY[HEADER] or RFC822.TEXT */
      label: string;
      peek: boolean;
      section: Section;
      partial: [number, number] | null;
    }
  | {
      /** RFC 3516: a part's content with its transfer encoding undone; SIZE gives only its length */
      k: 'BINARY' | 'BINARY.SIZE';
      /** the response label before any <origin>, e.g. BINARY[1.2] */
      label: string;
      peek: boolean;
      /** part numbers; empty for the whole message */
      path: number[];
      partial: [number, number] | null;
    };

export interface FetchRequest {
  items: FetchItem[];
  changedSince: number | null;
  /** the VANISHED modifier (RFC 7162 §3.2.6) */
  vanished: boolean;
}

const MACROS: Record<string, string[]> = {
  ALL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'],
  FAST: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
  FULL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'],
};
const SIMPLE = new Set(['UID', 'FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY', 'BODYSTRUCTURE', 'MODSEQ']);
const SECTION_RE = /^(BODY|BODY\.PEEK)\[([^\]]*)\](?:<(\d+)\.(\d+)>)?$/i;
/** section-binary is part numbers only (RFC 3516 §8); BINARY.SIZE takes no partial */
const BINARY_RE = /^(BINARY|BINARY\.PEEK|BINARY\.SIZE)\[((?:[1-9]\d{0,5}\.)*[1-9]\d{0,5})?\](?:<(\d+)\.(\d+)>)?$/i;

function partial(origin: string | undefined, count: string | undefined): [number, number] | null {
  return origin !== undefined ? [parseNumber(origin, { allowZero: true }), parseNumber(count!)] : null;
}

function parseItem(raw: string): FetchItem {
  const upper = raw.toUpperCase();
  if (SIMPLE.has(upper)) return { k: upper as 'UID' };
  if (upper === 'RFC822') return { k: 'SECTION', label: 'RFC822', peek: false, section: { path: [], specifier: '', fields: [] }, partial: null };
  if (upper === 'RFC822.HEADER') return { k: 'SECTION', label: 'RFC822.HEADER', peek: true, section: { path: [], specifier: 'HEADER', fields: [] }, partial: null };
  if (upper === 'RFC822.TEXT') return { k: 'SECTION', label: 'RFC822.TEXT', peek: false, section: { path: [], specifier: 'TEXT', fields: [] }, partial: null };
  const b = BINARY_RE.exec(raw);
  if (b) {
    const name = b[1]!.toUpperCase();
    const path = b[2] ? b[2].split('.').map(Number) : [];
    if (name === 'BINARY.SIZE' && b[3] !== undefined) throw new ParseError('BINARY.SIZE takes no partial');
    const label = `${name === 'BINARY.SIZE' ? 'BINARY.SIZE' : 'BINARY'}[${b[2] ?? ''}]`;
    return { k: name === 'BINARY.SIZE' ? 'BINARY.SIZE' : 'BINARY', label, peek: name !== 'BINARY', path, partial: partial(b[3], b[4]) };
  }
  const m = SECTION_RE.exec(raw);
  if (!m) throw new ParseError(`unknown FETCH item: ${raw.slice(0, 60)}`);
  let section: Section;
  try {
    section = parseSection(m[2]!);
  } catch (err) {
    if (err instanceof SectionError) throw new ParseError(err.message);
    throw err;
  }
  return { k: 'SECTION', label: `BODY[${m[2]}]`, peek: m[1]!.toUpperCase() === 'BODY.PEEK', section, partial: partial(m[3], m[4]) };
}

export function parseFetch(args: Token[]): FetchRequest {
  const spec = args[0];
  if (!spec) throw new ParseError('missing FETCH items');
  let names: string[];
  if (spec.kind === 'atom' && MACROS[spec.value.toUpperCase()]) names = MACROS[spec.value.toUpperCase()]!;
  else if (spec.kind === 'atom') names = [spec.value];
  else names = asList(spec, 'FETCH items').map((t) => asAtom(t, 'FETCH item'));
  if (names.length === 0) throw new ParseError('empty FETCH item list');
  const items = names.map(parseItem);
  let changedSince: number | null = null;
  let vanished = false;
  if (args[1]) {
    const mods = asList(args[1], 'FETCH modifiers');
    for (let i = 0; i < mods.length; i++) {
      const name = asAtom(mods[i], 'modifier').toUpperCase();
      if (name === 'VANISHED') vanished = true;
      else if (name === 'CHANGEDSINCE') changedSince = parseNumber(asAtom(mods[++i], 'mod-sequence'), { allowZero: true, max: Number.MAX_SAFE_INTEGER });
      else throw new ParseError(`unknown FETCH modifier: ${name.slice(0, 40)}`);
    }
    if (args.length > 2) throw new ParseError('too many FETCH arguments');
  }
  return { items, changedSince, vanished };
}
