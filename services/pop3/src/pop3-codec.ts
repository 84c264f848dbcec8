/** POP3 wire format (RFC 1939, RFC 2449 CAPA, RFC 5034 AUTH), pure. */

export const MAX_LINE = 1024;

export interface Pop3Command {
  name: string;
  args: string[];
  /** the raw argument text (AUTH responses, passwords with spaces) */
  rest: string;
}

/** Parses one command line (without CRLF); null when it is not a command at all. */
export function parseLine(line: string): Pop3Command | null {
  if (!line || line.length > MAX_LINE || /[\x00-\x08\x0a-\x1f\x7f]/.test(line)) return null;
  const m = /^([A-Za-z]{1,8})(?: (.*))?$/.exec(line);
  if (!m) return null;
  const rest = m[2] ?? '';
  return { name: m[1]!.toUpperCase(), args: rest ? rest.split(' ').filter(Boolean) : [], rest };
}

/** A message number argument: 1..count, digits only. */
export function parseMsgNumber(s: string | undefined, count: number): number | null {
  if (!s || !/^[1-9]\d{0,9}$/.test(s)) return null;
  const n = Number(s);
  return n <= count ? n : null;
}

export const ok = (text = ''): Buffer => Buffer.from(`+OK${text ? ' ' + text : ''}\r\n`, 'latin1');
export const err = (text: string, code?: string): Buffer => Buffer.from(`-ERR ${code ? `[${code}] ` : ''}${text}\r\n`, 'latin1');

/** A multi-line response body: CRLF line endings, dot-stuffed, terminated by ".". */
export function multiline(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  while (start < body.length) {
    let nl = body.indexOf(10, start);
    const last = nl < 0;
    if (last) nl = body.length;
    let end = nl;
    if (end > start && body[end - 1] === 13) end--;
    if (body[start] === 46) parts.push(Buffer.from('.'));
    parts.push(body.subarray(start, end), Buffer.from('\r\n'));
    start = nl + 1;
  }
  parts.push(Buffer.from('.\r\n'));
  return Buffer.concat(parts);
}

/** TOP: the header, the blank line, and the first `lines` lines of the body. */
export function topOf(raw: Buffer, lines: number): Buffer {
  let headerEnd = -1;
  for (let i = raw.indexOf(10); i >= 0; i = raw.indexOf(10, i + 1)) {
    const next = raw[i + 1] === 13 ? raw[i + 2] : raw[i + 1];
    if (next === 10) {
      headerEnd = raw[i + 1] === 13 ? i + 3 : i + 2;
      break;
    }
  }
  if (headerEnd < 0) return raw;
  let end = headerEnd;
  for (let n = 0; n < lines && end < raw.length; n++) {
    const nl = raw.indexOf(10, end);
    end = nl < 0 ? raw.length : nl + 1;
  }
  return raw.subarray(0, end);
}

/** Dovecot's default UIDL format (%08Xu%08Xv), so a switch between the two keeps clients' state. */
export function uidl(uid: number, uidValidity: number): string {
  const hex = (n: number): string => n.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(uid)}${hex(uidValidity)}`;
}

/** Splits input into command lines; null stands for a line longer than MAX_LINE (the rest of it is skipped). */
export class LineFramer {
  #buf: Buffer = Buffer.alloc(0);
  #skipping = false;

  push(data: Buffer): (string | null)[] {
    const lines: (string | null)[] = [];
    let buf = this.#buf.length ? Buffer.concat([this.#buf, data]) : data;
    for (;;) {
      const nl = buf.indexOf(10);
      if (nl < 0) {
        if (buf.length > MAX_LINE) {
          if (!this.#skipping) lines.push(null);
          this.#skipping = true;
          buf = Buffer.alloc(0);
        }
        break;
      }
      const end = nl > 0 && buf[nl - 1] === 13 ? nl - 1 : nl;
      if (this.#skipping) this.#skipping = false;
      else lines.push(end > MAX_LINE ? null : buf.toString('utf8', 0, end));
      buf = buf.subarray(nl + 1);
    }
    this.#buf = buf;
    return lines;
  }

  reset(): void {
    this.#buf = Buffer.alloc(0);
    this.#skipping = false;
  }
}
