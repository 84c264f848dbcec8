/**
 * The dovecot-uidlist file (version 3), so Dovecot and Hearth agree on UIDs:
 *   3 V<uidvalidity> N<nextuid> M<highestmodseq> R<firstrecentuid>
 *   <uid> [M<modseq>] :<base name>
 * Dovecot keeps extension keys it does not know; M is Hearth's MODSEQ per message, R the
 * first UID no session has seen as \Recent yet (Dovecot keeps that in its index instead).
 */
export interface UidRecord {
  uid: number;
  base: string;
  modseq: number;
}

export interface UidList {
  uidValidity: number;
  nextUid: number;
  highestModseq: number;
  firstRecentUid: number;
  records: UidRecord[];
}

export function parseUidList(text: string): UidList | null {
  const lines = text.split('\n');
  const header = lines[0]?.split(' ') ?? [];
  if (header[0] !== '3') return null;
  let uidValidity = 0;
  let nextUid = 1;
  let highestModseq = 1;
  let firstRecentUid = 1;
  for (const field of header.slice(1)) {
    const v = Number(field.slice(1));
    if (!Number.isSafeInteger(v)) continue;
    if (field[0] === 'V') uidValidity = v;
    else if (field[0] === 'N') nextUid = v;
    else if (field[0] === 'M') highestModseq = v;
    else if (field[0] === 'R') firstRecentUid = v;
  }
  if (uidValidity <= 0) return null;
  const records: UidRecord[] = [];
  let last = 0;
  // Only complete lines count: a torn last line (crash mid-append) is dropped.
  for (let i = 1; i < lines.length - 1; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(' :');
    if (colon < 0) continue;
    const fields = line.slice(0, colon).split(' ');
    const uid = Number(fields[0]);
    if (!Number.isSafeInteger(uid) || uid <= last) continue;
    let modseq = 1;
    for (const f of fields.slice(1)) if (f[0] === 'M') modseq = Number(f.slice(1)) || 1;
    records.push({ uid, base: line.slice(colon + 2), modseq });
    last = uid;
  }
  if (last >= nextUid) nextUid = last + 1;
  for (const r of records) if (r.modseq > highestModseq) highestModseq = r.modseq;
  firstRecentUid = Math.min(Math.max(firstRecentUid, 1), nextUid);
  return { uidValidity, nextUid, highestModseq, firstRecentUid, records };
}

export function serializeUidList(list: UidList): string {
  const out = [`3 V${list.uidValidity} N${list.nextUid} M${list.highestModseq} R${list.firstRecentUid}`];
  for (const r of list.records) out.push(`${r.uid} M${r.modseq} :${r.base}`);
  return out.join('\n') + '\n';
}
