/**
 * Maildir "info" (the `:2,` suffix of a file name) ↔ IMAP flags, as Dovecot maps them:
 * system flags are uppercase letters, keywords are lowercase letters a–z indexing the
 * folder's dovecot-keywords file. Unknown uppercase letters are kept as they are.
 */
const SYSTEM: Record<string, string> = { D: '\\Draft', F: '\\Flagged', R: '\\Answered', S: '\\Seen', T: '\\Deleted' };
const LETTER: Record<string, string> = Object.fromEntries(Object.entries(SYSTEM).map(([l, f]) => [f.toLowerCase(), l]));

export const SYSTEM_FLAGS = Object.values(SYSTEM);

/** Splits a Maildir file name into its base (the stable key) and its info letters. */
export function splitName(file: string): { base: string; info: string } {
  const i = file.indexOf(':2,');
  if (i < 0) return { base: file, info: '' };
  return { base: file.slice(0, i), info: file.slice(i + 3) };
}

/** The canonical spelling of a system flag (`\seen` → `\Seen`), or undefined for keywords. */
export function canonicalSystemFlag(flag: string): string | undefined {
  const l = LETTER[flag.toLowerCase()];
  return l ? SYSTEM[l] : undefined;
}

/** IMAP flags of an info string; keywords resolved through the folder's keyword table. */
export function infoToFlags(info: string, keywords: readonly string[]): string[] {
  const out: string[] = [];
  for (const ch of info) {
    const sys = SYSTEM[ch];
    if (sys) out.push(sys);
    else if (ch >= 'a' && ch <= 'z') {
      const k = keywords[ch.charCodeAt(0) - 97];
      if (k) out.push(k);
    }
  }
  return out;
}

/**
 * The info string for a flag set. `keywordIndex` returns the letter index of a keyword
 * (allocating one) or -1 when the table is full. Letters are sorted, as Maildir requires.
 */
export function flagsToInfo(flags: Iterable<string>, keywordIndex: (k: string) => number, keepFrom = ''): string {
  const letters = new Set<string>();
  for (const ch of keepFrom) if (ch >= 'A' && ch <= 'Z' && !SYSTEM[ch]) letters.add(ch);
  for (const f of flags) {
    const sys = LETTER[f.toLowerCase()];
    if (sys) letters.add(sys);
    else if (!f.startsWith('\\')) {
      const i = keywordIndex(f);
      if (i >= 0 && i < 26) letters.add(String.fromCharCode(97 + i));
    }
  }
  return [...letters].sort().join('');
}
