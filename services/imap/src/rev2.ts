import { asAtom, asList, ParseError, type Token } from './imap-parser.ts';
import type { SearchKey } from './search.ts';

/**
 * IMAP4rev2 (RFC 9051) where its grammar differs from IMAP4rev1's. Hearth advertises both
 * versions; a client gets the rev2 rules only after `ENABLE IMAP4rev2` (RFC 9051 §6.3.1,
 * Appendix E), so each rule here takes whether the session enabled it.
 */

/** RFC 3501 §6.3.10's items, CONDSTORE's HIGHESTMODSEQ (RFC 7162) and SIZE (STATUS=SIZE, RFC 8438) */
const REV1_STATUS_ITEMS = new Set(['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'HIGHESTMODSEQ', 'SIZE']);
/** RFC 9051 §6.3.11: RECENT is gone with the \Recent flag; DELETED counts the \Deleted messages */
const REV2_STATUS_ITEMS = new Set(['MESSAGES', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'DELETED', 'SIZE', 'HIGHESTMODSEQ']);

/** A STATUS (or LIST-STATUS) item list, upper-cased; an item the session's version lacks is BAD. */
export function statusItems(t: Token | undefined, rev2: boolean): string[] {
  const items = asList(t, 'status items').map((x) => asAtom(x, 'status item').toUpperCase());
  if (items.length === 0) throw new ParseError('empty STATUS item list');
  const known = rev2 ? REV2_STATUS_ITEMS : REV1_STATUS_ITEMS;
  for (const item of items) if (!known.has(item)) throw new ParseError(`unknown STATUS item ${item.slice(0, 30)}`);
  return items;
}

/**
 * RFC 9051 §2.3.2 drops \Recent and §6.4.4's search keys have no RECENT, NEW or OLD: after
 * ENABLE IMAP4rev2 a search that uses them is BAD rather than silently matching nothing.
 */
export function refuseRecentKeys(key: SearchKey): void {
  const walk = (k: SearchKey): boolean =>
    k.k === 'flag' ? k.flag === '\\Recent' : k.k === 'not' ? walk(k.key) : k.k === 'or' ? walk(k.a) || walk(k.b) : k.k === 'and' ? k.keys.some(walk) : false;
  if (walk(key)) throw new ParseError('RECENT, NEW and OLD are not IMAP4rev2 search keys (RFC 9051 removed \\Recent)');
}
