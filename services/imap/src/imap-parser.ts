/**
 * IMAP4rev1 command syntax (RFC 3501 §9, RFC 7888 LITERAL+), pure: a framer that cuts
 * a byte stream into commands (lines plus literals), a tokenizer for one command, and
 * strict parsers for sequence sets and dates. No I/O, no server state.
 */

export interface FramerLimits {
  /** longest command line without its literals */
  maxLine: number;
  /** largest literal in ordinary commands */
  maxLiteral: number;
  /** largest literal in APPEND (the message) */
  maxAppendLiteral: number;
  /** all lines and literals of one ordinary command together */
  maxCommand: number;
}

export const DEFAULT_LIMITS: FramerLimits = {
  maxLine: 64 * 1024,
  maxLiteral: 64 * 1024,
  maxAppendLiteral: 50 * 1024 * 1024,
  maxCommand: 256 * 1024,
};

/** A command as it arrived: text segments (latin1) with the literals that follow `{n}` markers. */
export type CommandParts = (string | Buffer)[];

/** Literal bytes shared by all connections, so many large APPENDs at once cannot exhaust memory. */
export interface LiteralBudget {
  take(bytes: number): boolean;
  give(bytes: number): void;
}

export type FrameEvent =
  /** `reserved`: literal bytes taken from the budget, to give back once the command is done */
  | { type: 'command'; parts: CommandParts; reserved: number }
  /**
   * a synchronizing literal was accepted: the server must send a continuation, unless it answers the
   * command now with a tagged response (RFC 3501 §2.2.1) and calls `drop` (the client then sends no more of it)
   */
  | { type: 'continue'; parts: CommandParts; drop: () => void }
  /** the command was refused before it was complete; the connection goes on */
  | { type: 'reject'; tag: string | null; text: string; tooBig: boolean }
  /** the stream cannot be resynchronized: say BYE and close */
  | { type: 'fatal'; text: string };

const LITERAL_MARK = /\{(\d{1,10})(\+?)\}$/;

/**
 * Cuts a stream of bytes into IMAP commands. Lines are limited, literal sizes are
 * checked before any of their bytes are accepted, and an over-long line is skipped to
 * its end so the next command is read cleanly.
 */
export class CommandFramer {
  private buf: Buffer = Buffer.alloc(0);
  private parts: CommandParts = [];
  private literalLeft = 0;
  private literalChunks: Buffer[] = [];
  private commandBytes = 0;
  private skippingLine = false;
  private commandLimit = 0;
  private reserved = 0;

  constructor(
    private readonly limits: FramerLimits = DEFAULT_LIMITS,
    private readonly budget: LiteralBudget | null = null,
  ) {}

  /** Bytes buffered but not yet part of a complete command (must be empty at STARTTLS). */
  get pending(): number {
    return this.buf.length + this.parts.length + this.literalChunks.length;
  }

  /** Drops whatever is buffered (used when the transport changes under STARTTLS). */
  reset(): void {
    this.budget?.give(this.reserved);
    this.reserved = 0;
    this.buf = Buffer.alloc(0);
    this.parts = [];
    this.literalLeft = 0;
    this.literalChunks = [];
    this.commandBytes = 0;
    this.skippingLine = false;
  }

  push(data: Buffer): FrameEvent[] {
    const events: FrameEvent[] = [];
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
    while (this.buf.length) {
      if (this.literalLeft > 0) {
        const take = Math.min(this.literalLeft, this.buf.length);
        this.literalChunks.push(this.buf.subarray(0, take));
        this.buf = this.buf.subarray(take);
        this.literalLeft -= take;
        if (this.literalLeft === 0) {
          this.parts.push(Buffer.concat(this.literalChunks));
          this.literalChunks = [];
        }
        continue;
      }
      const nl = this.buf.indexOf(10);
      if (this.skippingLine) {
        if (nl < 0) {
          this.buf = Buffer.alloc(0);
          break;
        }
        this.buf = this.buf.subarray(nl + 1);
        this.skippingLine = false;
        continue;
      }
      if (nl < 0) {
        if (this.buf.length > this.limits.maxLine) {
          events.push(this.refuse('command line too long', false));
          this.buf = Buffer.alloc(0);
          this.skippingLine = true;
        }
        break;
      }
      if (nl > this.limits.maxLine) {
        events.push(this.refuse('command line too long', false));
        this.buf = this.buf.subarray(nl + 1);
        continue;
      }
      const line = this.buf.subarray(0, nl > 0 && this.buf[nl - 1] === 13 ? nl - 1 : nl).toString('latin1');
      this.buf = this.buf.subarray(nl + 1);
      if (this.parts.length === 0) {
        this.commandBytes = 0;
        this.commandLimit = /^\S+ (UID )?APPEND /i.test(line) ? this.limits.maxAppendLiteral + this.limits.maxCommand : this.limits.maxCommand;
      }
      this.commandBytes += line.length;
      this.parts.push(line);
      const m = LITERAL_MARK.exec(line);
      if (!m) {
        events.push({ type: 'command', parts: this.parts, reserved: this.reserved });
        this.parts = [];
        this.reserved = 0;
        continue;
      }
      const size = Number(m[1]);
      const nonSync = m[2] === '+';
      const first = this.parts[0] as string;
      const max = /^\S+ APPEND /i.test(first) ? this.limits.maxAppendLiteral : this.limits.maxLiteral;
      const tooLarge = size > max || this.commandBytes + size > this.commandLimit;
      if (tooLarge || (this.budget && !this.budget.take(size))) {
        if (nonSync) {
          // The client sends the bytes anyway; there is no way back into sync.
          events.push({ type: 'fatal', text: tooLarge ? 'literal too large' : 'server busy' });
          this.reset();
          return events;
        }
        events.push(this.refuse(tooLarge ? 'literal too large' : 'server busy, try again later', true));
        continue;
      }
      if (this.budget) this.reserved += size;
      this.commandBytes += size;
      this.literalLeft = size;
      if (size === 0) this.parts.push(Buffer.alloc(0));
      if (!nonSync) events.push({ type: 'continue', parts: [...this.parts], drop: this.dropper(this.parts) });
    }
    return events;
  }

  /** Forgets the command whose parts are `parts`, if it is still the one being read, and the literal it waits for. */
  private dropper(parts: CommandParts): () => void {
    return () => {
      if (this.parts !== parts) return;
      this.budget?.give(this.reserved);
      this.reserved = 0;
      this.parts = [];
      this.literalLeft = 0;
      this.literalChunks = [];
    };
  }

  private refuse(text: string, tooBig: boolean): FrameEvent {
    const first = this.parts[0];
    const tag = typeof first === 'string' ? (/^([^\s(){%*"\\]+) /.exec(first)?.[1] ?? null) : null;
    this.parts = [];
    this.budget?.give(this.reserved);
    this.reserved = 0;
    return { type: 'reject', tag, text, tooBig };
  }
}

export type Token =
  | { kind: 'atom'; value: string }
  | { kind: 'string'; value: Buffer; literal: boolean }
  | { kind: 'list'; items: Token[] };

export interface Command {
  tag: string;
  /** upper case; "UID FETCH" etc. for UID commands */
  name: string;
  args: Token[];
}

export class ParseError extends Error {
  constructor(
    message: string,
    readonly tag: string | null = null,
  ) {
    super(message);
  }
}

const TAG_RE = /^[\x21-\x7e]+$/;
const MAX_NESTING = 64;
const ATOM_STOP = new Set([' ', '(', ')', '"', '{', '\r', '\n']);
const SECTION_ATOM = /^(?:BODY|BODY\.PEEK|BINARY|BINARY\.PEEK|BINARY\.SIZE)$/i;

/** Tokenizes one framed command: tag, command name, arguments. */
export function parseCommand(parts: CommandParts): Command {
  return parseParts(parts, false);
}

/**
 * The start of a command still waiting for a synchronizing literal (its last line ends in `{n}`):
 * the arguments before that literal, with the lists still open at that point closed.
 */
export function parseCommandStart(parts: CommandParts): Command {
  const last = parts[parts.length - 1];
  if (typeof last !== 'string' || !LITERAL_MARK.test(last)) throw new ParseError('not waiting for a literal');
  return parseParts([...parts.slice(0, -1), last.replace(LITERAL_MARK, '').trimEnd()], true);
}

function parseParts(parts: CommandParts, partial: boolean): Command {
  const first = parts[0];
  if (typeof first !== 'string') throw new ParseError('empty command');
  const sp = first.indexOf(' ');
  const tag = sp < 0 ? first : first.slice(0, sp);
  if (!tag || !TAG_RE.test(tag) || /[(){%*"\\+]/.test(tag)) throw new ParseError('invalid tag');
  if (sp < 0) throw new ParseError('missing command', tag);
  const tokens = new Tokenizer(parts, sp + 1, tag, partial).all();
  const head = tokens.shift();
  if (!head || head.kind !== 'atom' || !/^[A-Za-z]+$/.test(head.value)) throw new ParseError('missing command', tag);
  let name = head.value.toUpperCase();
  if (name === 'UID') {
    const sub = tokens.shift();
    if (!sub || sub.kind !== 'atom' || !/^[A-Za-z]+$/.test(sub.value)) throw new ParseError('missing UID command', tag);
    name = `UID ${sub.value.toUpperCase()}`;
  }
  return { tag, name, args: tokens };
}

class Tokenizer {
  private part = 0;

  constructor(
    private readonly parts: CommandParts,
    private pos: number,
    private readonly tag: string,
    /** the input stops mid-command: lists open at its end are closed there */
    private readonly partial = false,
  ) {}

  private get text(): string {
    return this.parts[this.part] as string;
  }

  private fail(msg: string): never {
    throw new ParseError(msg, this.tag);
  }

  all(): Token[] {
    const out: Token[] = [];
    if (this.atEnd()) return out;
    for (;;) {
      out.push(this.token());
      if (this.atEnd()) return out;
      if (this.text[this.pos] !== ' ') this.fail('expected a space between arguments');
      this.pos++;
      if (this.atEnd()) return out; // tolerate one trailing space, as several clients send it
    }
  }

  private atEnd(): boolean {
    return this.pos >= this.text.length && this.part === this.parts.length - 1;
  }

  private token(): Token {
    const ch = this.text[this.pos];
    if (ch === undefined) this.fail('unexpected end of command');
    if (ch === '(') return this.list();
    if (ch === '"') return this.quoted();
    if (ch === '{') return this.literal();
    // literal8 (RFC 3516 §8): binary content, framed like a literal
    if (ch === '~' && this.text[this.pos + 1] === '{') {
      this.pos++;
      return this.literal();
    }
    return this.atom();
  }

  private depth = 0;

  private list(): Token {
    if (++this.depth > MAX_NESTING) this.fail('lists nested too deep');
    this.pos++;
    const items: Token[] = [];
    if (this.text[this.pos] === ')') {
      this.pos++;
      this.depth--;
      return { kind: 'list', items };
    }
    for (;;) {
      // a command cut before its literal: the list is as far as it got
      const cut = this.partial && this.atEnd();
      if (!cut) items.push(this.token());
      const c = this.text[this.pos];
      if (c === ')' || cut || (this.partial && this.atEnd())) {
        if (c === ')') this.pos++;
        this.depth--;
        return { kind: 'list', items };
      }
      if (c !== ' ') this.fail('unterminated list');
      this.pos++;
    }
  }

  private quoted(): Token {
    let out = '';
    for (let i = this.pos + 1; i < this.text.length; i++) {
      const c = this.text[i]!;
      if (c === '\\') {
        const n = this.text[i + 1];
        if (n !== '"' && n !== '\\') this.fail('bad escape in quoted string');
        out += n;
        i++;
      } else if (c === '"') {
        this.pos = i + 1;
        return { kind: 'string', value: Buffer.from(out, 'latin1'), literal: false };
      } else out += c;
    }
    this.fail('unterminated quoted string');
  }

  private literal(): Token {
    const m = LITERAL_MARK.exec(this.text.slice(this.pos));
    if (!m || this.pos + m[0].length !== this.text.length) this.fail('bad literal');
    const data = this.parts[this.part + 1];
    if (!Buffer.isBuffer(data) || data.length !== Number(m[1])) this.fail('missing literal data');
    this.part += 2;
    this.pos = 0;
    if (this.part >= this.parts.length) this.fail('command ends inside a literal');
    return { kind: 'string', value: data, literal: true };
  }

  private atom(): Token {
    const start = this.pos;
    let depth = 0;
    while (this.pos < this.text.length) {
      const c = this.text[this.pos]!;
      // `[` nests only in a FETCH section (BODY[, BODY.PEEK[, BINARY[…); elsewhere it is an ATOM-CHAR.
      if (c === '[' && (depth > 0 || SECTION_ATOM.test(this.text.slice(start, this.pos)))) depth++;
      else if (c === ']' && depth > 0) depth--;
      else if (depth === 0 && (ATOM_STOP.has(c) || c === ')')) break;
      else if (depth > 0 && c === '"') {
        // a quoted header field name inside BODY[HEADER.FIELDS (...)]
        const close = this.text.indexOf('"', this.pos + 1);
        if (close < 0) this.fail('unterminated quoted string');
        this.pos = close;
      } else if (depth > 0 && c === '{') this.fail('unexpected literal in section');
      const code = c.charCodeAt(0);
      if (code < 0x20 || code > 0x7e) this.fail('8-bit or control character in atom');
      this.pos++;
    }
    if (depth !== 0) this.fail('unterminated [');
    if (this.pos === start) this.fail('empty argument');
    return { kind: 'atom', value: this.text.slice(start, this.pos) };
  }
}

// ---- typed argument readers ----

/** astring: atom or string; returned as UTF-8/latin1-agnostic bytes→string (latin1 keeps 8-bit bytes visible). */
export function asString(t: Token | undefined, what = 'argument'): string {
  if (!t) throw new ParseError(`missing ${what}`);
  if (t.kind === 'atom') return t.value;
  if (t.kind === 'string') return t.value.toString('latin1');
  throw new ParseError(`${what} must be a string`);
}

/** A string argument as UTF-8 text (passwords, search strings); null when not valid UTF-8. */
export function asUtf8(t: Token | undefined, what = 'argument'): string {
  if (!t) throw new ParseError(`missing ${what}`);
  const bytes = t.kind === 'atom' ? Buffer.from(t.value, 'latin1') : t.kind === 'string' ? t.value : null;
  if (!bytes) throw new ParseError(`${what} must be a string`);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ParseError(`${what} is not valid UTF-8`);
  }
}

export function asAtom(t: Token | undefined, what = 'argument'): string {
  if (!t || t.kind !== 'atom') throw new ParseError(`${what} must be an atom`);
  return t.value;
}

export function asList(t: Token | undefined, what = 'argument'): Token[] {
  if (!t || t.kind !== 'list') throw new ParseError(`${what} must be a list`);
  return t.items;
}

export const MAX_UINT32 = 4294967295;

/** nz-number / number: digits only, no leading zeros, within 32 bits (64 for mod-sequences). */
export function parseNumber(s: string, opts: { allowZero?: boolean; max?: number } = {}): number {
  if (!/^\d{1,20}$/.test(s) || (s.length > 1 && s[0] === '0')) throw new ParseError(`invalid number: ${s.slice(0, 40)}`);
  const n = Number(s);
  if (n > (opts.max ?? MAX_UINT32) || !Number.isSafeInteger(n)) throw new ParseError(`number out of range: ${s.slice(0, 40)}`);
  if (n === 0 && !opts.allowZero) throw new ParseError('0 is not a valid message number');
  return n;
}

/** A sequence set; -1 stands for `*` until resolved against the mailbox. */
export type SequenceSet = [number, number][];

export function parseSequenceSet(s: string): SequenceSet {
  if (!s || s.length > 100_000) throw new ParseError('invalid sequence set');
  const out: SequenceSet = [];
  for (const item of s.split(',')) {
    const range = item.split(':');
    if (range.length > 2) throw new ParseError(`invalid sequence set: ${item.slice(0, 40)}`);
    const nums = range.map((x) => (x === '*' ? -1 : parseNumber(x)));
    out.push([nums[0]!, nums[1] ?? nums[0]!]);
  }
  return out;
}

/** A membership test for the set, with `*` standing for `star`. */
export function resolveSequenceSet(set: SequenceSet, star: number): (n: number) => boolean {
  const ranges = set.map(([a, b]) => {
    const x = a === -1 ? star : a;
    const y = b === -1 ? star : b;
    return [Math.min(x, y), Math.max(x, y)] as const;
  });
  return (n) => ranges.some(([lo, hi]) => n >= lo && n <= hi);
}

/** Largest number a set names explicitly (to detect out-of-range message sequence numbers). */
export function maxOfSet(set: SequenceSet, star: number): number {
  let m = 0;
  for (const [a, b] of set) m = Math.max(m, a === -1 ? star : a, b === -1 ? star : b);
  return m;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** date (SEARCH): d-Mon-yyyy → midnight UTC of that day (ms). */
export function parseDate(s: string): number {
  const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(s);
  const month = m ? MONTHS.indexOf(m[2]!.toLowerCase()) : -1;
  if (!m || month < 0 || Number(m[1]) < 1 || Number(m[1]) > 31) throw new ParseError(`invalid date: ${s.slice(0, 40)}`);
  return Date.UTC(Number(m[3]), month, Number(m[1]));
}

/** date-time (APPEND): "dd-Mon-yyyy hh:mm:ss +zzzz". */
export function parseDateTime(s: string): Date {
  const m = /^([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$/.exec(s);
  const month = m ? MONTHS.indexOf(m[2]!.toLowerCase()) : -1;
  if (!m || month < 0) throw new ParseError('invalid date-time');
  const utc = Date.UTC(Number(m[3]), month, Number(m[1]!.trim()), Number(m[4]), Number(m[5]), Number(m[6]));
  const offset = (Number(m[8]) * 60 + Number(m[9])) * (m[7] === '+' ? 1 : -1);
  const d = new Date(utc - offset * 60_000);
  if (Number.isNaN(d.getTime()) || Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6]) > 60) throw new ParseError('invalid date-time');
  return d;
}

/** Formats an INTERNALDATE: "02-Jan-2020 03:04:05 +0000". */
export function formatDateTime(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  const mon = MONTHS[d.getUTCMonth()]!;
  return `${p(d.getUTCDate())}-${mon[0]!.toUpperCase()}${mon.slice(1)}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

// ---- NOTIFY (RFC 5465 §8) ----

/** One event of an event group: its name as sent, and MessageNew's fetch-att list (still tokens). */
export interface NotifyEventSpec {
  name: string;
  fetch: Token[] | null;
}

/** `(filter-mailboxes events)`: the filter upper-cased, SUBTREE/MAILBOXES names as tokens, null events for NONE. */
export interface NotifyGroupSpec {
  filter: 'SELECTED' | 'SELECTED-DELAYED' | 'INBOXES' | 'PERSONAL' | 'SUBSCRIBED' | 'SUBTREE' | 'MAILBOXES';
  mailboxes: Token[];
  events: NotifyEventSpec[] | null;
}

export type NotifyCommand = { kind: 'none' } | { kind: 'set'; status: boolean; groups: NotifyGroupSpec[] };

const NOTIFY_FILTERS = new Set(['SELECTED', 'SELECTED-DELAYED', 'INBOXES', 'PERSONAL', 'SUBSCRIBED', 'SUBTREE', 'MAILBOXES']);

/**
 * `NOTIFY NONE` / `NOTIFY SET [STATUS] event-group…`, syntax only: which events exist and how
 * they combine is the session's business. An event name is any atom here (event-ext), so an
 * unknown one can be answered NO [BADEVENT] rather than BAD.
 */
export function parseNotify(args: Token[]): NotifyCommand {
  const verb = asAtom(args[0], 'NOTIFY argument').toUpperCase();
  if (verb === 'NONE') {
    if (args.length !== 1) throw new ParseError('NOTIFY NONE takes no arguments');
    return { kind: 'none' };
  }
  if (verb !== 'SET') throw new ParseError('NOTIFY needs SET or NONE');
  let i = 1;
  const first = args[i];
  const status = first?.kind === 'atom' && first.value.toUpperCase() === 'STATUS';
  if (status) i++;
  if (i >= args.length) throw new ParseError('NOTIFY SET needs an event group');
  const groups: NotifyGroupSpec[] = [];
  for (; i < args.length; i++) groups.push(parseNotifyGroup(asList(args[i], 'event group')));
  return { kind: 'set', status, groups };
}

function parseNotifyGroup(items: Token[]): NotifyGroupSpec {
  const filter = asAtom(items[0], 'mailbox filter').toUpperCase();
  if (!NOTIFY_FILTERS.has(filter)) throw new ParseError(`unknown mailbox filter ${filter.slice(0, 30)}`);
  let j = 1;
  let mailboxes: Token[] = [];
  if (filter === 'SUBTREE' || filter === 'MAILBOXES') {
    // one-or-more-mailbox: a mailbox, or a parenthesized list of them
    const m = items[j++];
    if (!m) throw new ParseError(`${filter} needs a mailbox`);
    mailboxes = m.kind === 'list' ? m.items : [m];
    if (mailboxes.length === 0) throw new ParseError(`${filter} needs a mailbox`);
    for (const t of mailboxes) asString(t, 'mailbox name');
  }
  const ev = items[j++];
  if (j !== items.length) throw new ParseError('unexpected item in event group');
  if (ev?.kind === 'atom' && ev.value.toUpperCase() === 'NONE') return { filter: filter as NotifyGroupSpec['filter'], mailboxes, events: null };
  const list = asList(ev, 'events');
  if (list.length === 0) throw new ParseError('empty event list');
  const events: NotifyEventSpec[] = [];
  for (let k = 0; k < list.length; k++) {
    const name = asAtom(list[k], 'event');
    // MessageNew may carry the fetch-att list its FETCH responses are to include
    const next = list[k + 1];
    if (name.toUpperCase() === 'MESSAGENEW' && next?.kind === 'list') {
      if (next.items.length === 0) throw new ParseError('empty fetch-att list');
      events.push({ name, fetch: next.items });
      k++;
    } else events.push({ name, fetch: null });
  }
  return { filter: filter as NotifyGroupSpec['filter'], mailboxes, events };
}
