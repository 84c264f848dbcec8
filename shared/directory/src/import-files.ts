/**
 * Readers for `hearth user import` / `group import` files: CSV (RFC 4180, a header row) and
 * LDIF (RFC 2849 content records). Each record keeps the line it starts on, so a refused
 * row can be reported by line number.
 */

/** One row or entry: lowercase attribute names → values (LDIF attributes may repeat). */
export interface ImportRecord {
  line: number;
  fields: Map<string, string[]>;
  /** why the row could not be read (its other rows are still imported) */
  error?: string;
}

export class ImportFileError extends Error {}

export function parseImportFile(text: string, format: 'csv' | 'ldif'): ImportRecord[] {
  return format === 'csv' ? parseCsv(text) : parseLdif(text);
}

/** The format from the file name: .ldif is LDIF, anything else CSV. */
export function importFormat(file: string): 'csv' | 'ldif' {
  return /\.ldif$/i.test(file) ? 'ldif' : 'csv';
}

function parseCsv(text: string): ImportRecord[] {
  const rows: { line: number; cells: string[] }[] = [];
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const endRow = (): void => {
    cells.push(cell);
    if (!(cells.length === 1 && cells[0] === '')) rows.push({ line: rowLine, cells });
    cells = [];
    cell = '';
  };
  for (; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else {
        if (c === '\n') line++;
        cell += c;
      }
    } else if (c === '"' && cell === '') quoted = true;
    else if (c === ',') {
      cells.push(cell);
      cell = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRow();
      rowLine = ++line;
    } else cell += c;
  }
  if (quoted) throw new ImportFileError(`line ${rowLine}: a quoted field is not closed`);
  endRow();
  const header = rows.shift();
  if (!header) throw new ImportFileError('the file is empty (a header row is required)');
  const names = header.cells.map((h) => h.trim().toLowerCase());
  return rows.map(({ line, cells }) => {
    if (cells.length !== names.length) return { line, fields: new Map(), error: `${cells.length} fields where the header has ${names.length}` };
    return { line, fields: new Map(names.map((n, k) => [n, [cells[k]!]])) };
  });
}

function parseLdif(text: string): ImportRecord[] {
  const records: ImportRecord[] = [];
  let current: ImportRecord | null = null;
  // Unfold first (a line starting with one space continues the previous one), remembering where each logical line began.
  const logical: { line: number; text: string }[] = [];
  text.split(/\r?\n/).forEach((raw, k) => {
    if (raw.startsWith(' ') && logical.length && logical.at(-1)!.text !== '') logical.at(-1)!.text += raw.slice(1);
    else logical.push({ line: k + 1, text: raw });
  });
  for (const { line, text: l } of logical) {
    if (l === '') {
      current = null;
      continue;
    }
    if (l.startsWith('#')) continue;
    const m = /^([A-Za-z][A-Za-z0-9;-]*)(::?|:<)\s?(.*)$/.exec(l);
    if (!m) throw new ImportFileError(`line ${line}: not an LDIF attribute line`);
    const name = m[1]!.toLowerCase().split(';')[0]!;
    if (m[2] === ':<') throw new ImportFileError(`line ${line}: URL values are not supported`);
    const value = m[2] === '::' ? Buffer.from(m[3]!, 'base64').toString('utf8') : m[3]!;
    if (!current) {
      if (name === 'version') continue;
      if (name !== 'dn') throw new ImportFileError(`line ${line}: an entry must start with "dn:"`);
      current = { line, fields: new Map() };
      records.push(current);
    }
    const list = current.fields.get(name);
    if (list) list.push(value);
    else current.fields.set(name, [value]);
  }
  return records;
}
