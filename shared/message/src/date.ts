/**
 * RFC 5322 §3.3 date-time (with the obsolete forms of §4.3) as a Date header writes it:
 * `[day ","] dd Mon yyyy hh:mm[:ss] zone`, comments ignored.
 */
export interface HeaderDate {
  /** midnight UTC of the calendar day as written, time and zone disregarded (IMAP SENT* keys), ms */
  day: number;
  /** the instant it names (IMAP SORT DATE, THREAD), ms since the epoch; NaN when no time of day is given */
  time: number;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** obs-zone (RFC 5322 §4.3) in minutes east of UTC; military letters are read as +0000, as that section says. */
const NAMED_ZONES: Record<string, number> = { ut: 0, gmt: 0, z: 0, edt: -240, est: -300, cdt: -300, cst: -360, mdt: -360, mst: -420, pdt: -420, pst: -480 };

export function parseHeaderDate(value: string): HeaderDate | null {
  const m = /^\s*(?:[A-Za-z]+\s*,)?\s*(\d{1,2})\s+([A-Za-z]{3})[a-z]*\.?\s+(\d{2,4})\b(?:\s+(\d{1,2})\s*:\s*(\d{2})(?:\s*:\s*(\d{2}))?(?:\s+([+-]\d{4}|[A-Za-z]+))?)?/.exec(value.replace(/\([^)]*\)/g, ' '));
  const month = m ? MONTHS.indexOf(m[2]!.toLowerCase()) : -1;
  if (!m || month < 0) return null;
  let year = Number(m[3]);
  // obs-year: two digits are 19xx from 50, 20xx below; three are 1900 plus.
  if (m[3]!.length === 2) year += year < 50 ? 2000 : 1900;
  else if (m[3]!.length === 3) year += 1900;
  const dayOfMonth = Number(m[1]);
  const day = Date.UTC(year, month, dayOfMonth);
  if (m[4] === undefined) return { day, time: NaN };
  const zone = m[7] ?? '+0000';
  const offset = /^[+-]/.test(zone) ? (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3, 5))) : (NAMED_ZONES[zone.toLowerCase()] ?? 0);
  const time = Date.UTC(year, month, dayOfMonth, Number(m[4]), Number(m[5]), Number(m[6] ?? 0)) - offset * 60_000;
  return { day, time };
}
