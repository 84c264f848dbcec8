import type { BodyTransform } from './body.ts';
import type { Argument, Command, Test } from './parser.ts';
import { TAG_VALUES } from './validate.ts';

/** What a script sees of a message; the daemon builds it with its own header reader. */
export interface SieveMessage {
  /** unfolded, decoded values of a header field, in order */
  header(name: string): string[];
  /** the addresses of each occurrence of a header field, in order (address lists, groups flattened) */
  addresses(name: string): string[][];
  size: number;
  /** from: the return path ('' for a bounce); to: the recipient as given at RCPT, with any +detail */
  envelope: { from: string; to: string };
  /** the strings the body test compares for a transform (RFC 5173 §5; messageBody() in body.ts gives them for a raw message) */
  body(transform: BodyTransform): string[];
}

export type SieveAction =
  | { kind: 'keep'; flags: string[] }
  | { kind: 'fileinto'; folder: string; create: boolean; flags: string[] }
  | { kind: 'discard' }
  | { kind: 'reject'; reason: string }
  /** RFC 5228 §4.2; :copy (RFC 3894) keeps the implicit keep */
  | { kind: 'redirect'; address: string; copy: boolean }
  /** RFC 5230: whether to answer, and how, is decided by vacation.ts when the action is taken */
  | { kind: 'vacation'; reason: string; subject: string | null; from: string | null; addresses: string[]; days: number; handle: string; mime: boolean };

/** What the caller knows besides the message. */
export interface RunOptions {
  /** "now" for currentdate (RFC 5260 §5) and for the default zone */
  now?: Date;
  /** the mailbox's folders (UTF-8 names) for mailboxexists (RFC 5490 §3.1); without it the test is a run-time error */
  folders?: readonly string[];
  /** RFC 5233 separator of :user and :detail (Postfix's recipient_delimiter); default "+" */
  delimiter?: string;
}

export class SieveRuntimeError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
  }
}

/** RFC 5228 §10: bounded work per message, so no script can stall delivery */
const MAX_ACTIONS = 32;
const MAX_STEPS = 10_000;
/** redirects per message, Pigeonhole's sieve_max_redirects default */
export const MAX_REDIRECTS = 4;
/** RFC 5230 §4.1: :days below 1 means 1; above this many days is cut to it (Pigeonhole's sieve_vacation_max_period) */
const VACATION_MAX_DAYS = 60;

class Stop {}

/**
 * Runs a compiled script against a message (RFC 5228 §2.10: actions are collected, then taken
 * by the caller). The implicit keep holds unless fileinto (without :copy), discard or reject
 * cancelled it. imap4flags (RFC 5232) keeps the internal flag variable; variables (RFC 5229)
 * expands `${name}` and the `${0}`–`${9}` of the last :matches.
 */
export function runScript(cmds: Command[], msg: SieveMessage, opts: RunOptions = {}): SieveAction[] {
  const r = new Run(msg, opts);
  try {
    r.block(cmds);
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
  }
  if (r.implicitKeep && !r.actions.some((a) => a.kind === 'keep')) r.actions.unshift({ kind: 'keep', flags: [...r.flags] });
  return r.actions;
}

interface Tags {
  tags: Map<string, Argument | null>;
  positional: Argument[];
}

function tagsOf(args: Argument[]): Tags {
  const tags = new Map<string, Argument | null>();
  const positional: Argument[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.kind === 'tag') tags.set(a.name, TAG_VALUES.has(a.name) ? (args[++i] ?? null) : null);
    else positional.push(a);
  }
  return { tags, positional };
}

class Run {
  actions: SieveAction[] = [];
  implicitKeep = true;
  flags = new Set<string>();
  private vars = new Map<string, string>();
  private matchVars: string[] = [];
  private steps = 0;

  private readonly now: Date;

  constructor(
    private readonly msg: SieveMessage,
    private readonly opts: RunOptions,
  ) {
    this.now = opts.now ?? new Date();
  }

  private strs(a: Argument | undefined | null): string[] {
    return a && a.kind === 'strings' ? a.values.map((v) => this.expand(v)) : [];
  }

  private expand(s: string): string {
    if (!s.includes('${')) return s;
    return s.replace(/\$\{([A-Za-z_][A-Za-z0-9_.]*|\d+)\}/g, (_, name: string) => (/^\d+$/.test(name) ? (this.matchVars[Number(name)] ?? '') : (this.vars.get(name.toLowerCase()) ?? '')));
  }

  private act(line: number, a: SieveAction): void {
    if (this.actions.length >= MAX_ACTIONS) throw new SieveRuntimeError(line, 'too many actions');
    this.actions.push(a);
  }

  block(cmds: Command[]): void {
    let taken = false;
    for (const c of cmds) {
      if (++this.steps > MAX_STEPS) throw new SieveRuntimeError(c.line, 'script ran too long');
      if (c.name === 'if') taken = false;
      if (c.name === 'if' || c.name === 'elsif') {
        if (!taken && this.test(c.tests[0]!)) {
          taken = true;
          this.block(c.block!);
        }
        continue;
      }
      if (c.name === 'else') {
        if (!taken) this.block(c.block!);
        continue;
      }
      this.command(c);
    }
  }

  private flagList(a: Argument | null | undefined): string[] {
    return this.strs(a).flatMap((s) => s.split(' ')).filter(Boolean);
  }

  private command(c: Command): void {
    const { tags, positional } = tagsOf(c.args);
    const flags = (): string[] => (tags.has('flags') ? this.flagList(tags.get('flags')) : [...this.flags]);
    switch (c.name) {
      case 'require':
        return;
      case 'stop':
        throw new Stop();
      case 'keep':
        this.implicitKeep = false;
        return this.act(c.line, { kind: 'keep', flags: flags() });
      case 'discard':
        this.implicitKeep = false;
        return;
      case 'fileinto': {
        if (!tags.has('copy')) this.implicitKeep = false;
        const folder = this.strs(positional[0])[0]!;
        if (folder.toUpperCase() === 'INBOX') return this.act(c.line, { kind: 'keep', flags: flags() });
        return this.act(c.line, { kind: 'fileinto', folder, create: tags.has('create'), flags: flags() });
      }
      case 'reject':
      case 'ereject':
        // RFC 5429 §2.3: one reject, and never together with vacation
        if (this.actions.some((a) => a.kind === 'reject' || a.kind === 'vacation')) throw new SieveRuntimeError(c.line, `${c.name} cannot follow reject or vacation`);
        this.implicitKeep = false;
        return this.act(c.line, { kind: 'reject', reason: this.strs(positional[0])[0]! });
      case 'redirect': {
        const address = redirectAddress(this.strs(positional[0])[0]!);
        if (!address) throw new SieveRuntimeError(c.line, 'redirect to an invalid address');
        if (!tags.has('copy')) this.implicitKeep = false;
        // §2.10.3: the same address twice is one redirect
        if (this.actions.some((a) => a.kind === 'redirect' && a.address === address)) return;
        if (this.actions.filter((a) => a.kind === 'redirect').length >= MAX_REDIRECTS) throw new SieveRuntimeError(c.line, `more than ${MAX_REDIRECTS} redirects`);
        return this.act(c.line, { kind: 'redirect', address, copy: tags.has('copy') });
      }
      case 'vacation': {
        if (this.actions.some((a) => a.kind === 'vacation' || a.kind === 'reject')) throw new SieveRuntimeError(c.line, 'vacation cannot follow vacation or reject');
        const reason = this.strs(positional[0])[0]!;
        const subject = tags.has('subject') ? this.strs(tags.get('subject'))[0]! : null;
        const from = tags.has('from') ? this.strs(tags.get('from'))[0]! : null;
        const mime = tags.has('mime');
        const days = tags.has('days') ? Math.min(Math.max((tags.get('days') as { value: number }).value, 1), VACATION_MAX_DAYS) : 7;
        // §4.2: without :handle, replies that differ in what they say are tracked apart
        const handle = tags.has('handle') ? this.strs(tags.get('handle'))[0]! : `auto:${JSON.stringify([reason, subject, from, mime])}`;
        return this.act(c.line, { kind: 'vacation', reason, subject, from, addresses: this.strs(tags.get('addresses')).map((a) => a.toLowerCase()), days, handle, mime });
      }
      case 'setflag':
        this.flags = new Set(this.flagList(positional[0]));
        return;
      case 'addflag':
        for (const f of this.flagList(positional[0])) this.flags.add(f);
        return;
      case 'removeflag':
        for (const f of this.flagList(positional[0])) this.flags.delete(f);
        return;
      case 'set': {
        let value = this.strs(positional[1])[0]!;
        if (tags.has('lower')) value = value.toLowerCase();
        if (tags.has('upper')) value = value.toUpperCase();
        if (tags.has('lowerfirst')) value = value.charAt(0).toLowerCase() + value.slice(1);
        if (tags.has('upperfirst')) value = value.charAt(0).toUpperCase() + value.slice(1);
        if (tags.has('quotewildcard')) value = value.replace(/[*?\\]/g, '\\$&');
        if (tags.has('length')) value = String([...value].length);
        this.vars.set(this.strs(positional[0])[0]!.toLowerCase(), value);
        return;
      }
      default:
        throw new SieveRuntimeError(c.line, `${c.name} is not supported at delivery`);
    }
  }

  /** RFC 5260 §6 :index n [:last]: the n-th occurrence of the field (counted from the end with :last); all of them without :index. */
  private indexed<T>(tags: Map<string, Argument | null>, fields: T[]): T[] {
    if (!tags.has('index')) return fields;
    const n = (tags.get('index') as { value: number }).value;
    const i = tags.has('last') ? fields.length - n : n - 1;
    return i >= 0 && i < fields.length ? [fields[i]!] : [];
  }

  private test(t: Test): boolean {
    const { tags, positional } = tagsOf(t.args);
    switch (t.name) {
      case 'true':
        return true;
      case 'false':
        return false;
      case 'not':
        return !this.test(t.tests[0]!);
      case 'allof':
        return t.tests.every((x) => this.test(x));
      case 'anyof':
        return t.tests.some((x) => this.test(x));
      case 'exists':
        return this.strs(positional[0]).every((h) => this.msg.header(h).length > 0);
      case 'size': {
        const limit = (positional[0] as { value: number }).value;
        return tags.has('over') ? this.msg.size > limit : this.msg.size < limit;
      }
      case 'header':
        return this.match(tags, this.strs(positional[0]).flatMap((h) => this.indexed(tags, this.msg.header(h))), this.strs(positional[1]));
      case 'address':
        return this.match(tags, this.strs(positional[0]).flatMap((h) => this.indexed(tags, this.msg.addresses(h)).flat()).map((a) => this.addressPart(a, tags)), this.strs(positional[1]));
      case 'envelope': {
        const values = this.strs(positional[0]).map((part) => {
          const p = part.toLowerCase();
          return p === 'from' ? this.msg.envelope.from : p === 'to' ? this.msg.envelope.to : null;
        });
        const present = values.filter((v): v is string => v !== null).map((a) => this.addressPart(a, tags));
        return this.match(tags, present, this.strs(positional[1]));
      }
      case 'body': {
        const transform: BodyTransform = tags.has('raw') ? { kind: 'raw' } : tags.has('content') ? { kind: 'content', types: this.strs(tags.get('content')) } : { kind: 'text' };
        // RFC 5173 §6: body's wildcards set no match variables
        return this.match(tags, this.msg.body(transform), this.strs(positional[0]), false);
      }
      case 'hasflag':
        return this.match(tags, [...this.flags], this.strs(positional[0]));
      case 'string':
        return this.match(tags, this.strs(positional[0]), this.strs(positional[1]));
      case 'date': {
        const name = this.strs(positional[0])[0]!;
        const part = this.strs(positional[1])[0]!.toLowerCase();
        const zone = tags.has('zone') ? parseZone(this.strs(tags.get('zone'))[0]!) : null;
        // without :index the first occurrence (the newest Received), as Pigeonhole reads it
        const fields = this.msg.header(name);
        const values = (tags.has('index') ? this.indexed(tags, fields) : fields.slice(0, 1))
          .map((v) => parseDateHeader(name.toLowerCase() === 'received' ? v.slice(v.lastIndexOf(';') + 1) : v))
          .filter((d): d is ParsedDate => d !== null)
          .map((d) => datePart(d.ms, tags.has('originalzone') ? d.zone : (zone ?? localZone(d.ms)), part));
        return this.match(tags, values, this.strs(positional[2]));
      }
      case 'currentdate': {
        const ms = this.now.getTime();
        const zone = tags.has('zone') ? parseZone(this.strs(tags.get('zone'))[0]!) : null;
        return this.match(tags, [datePart(ms, zone ?? localZone(ms), this.strs(positional[0])[0]!.toLowerCase())], this.strs(positional[1]));
      }
      case 'mailboxexists': {
        const folders = this.opts.folders;
        if (!folders) break;
        return this.strs(positional[0]).every((f) => f.toUpperCase() === 'INBOX' || folders.includes(f));
      }
    }
    throw new SieveRuntimeError(t.line, `test ${t.name} is not available here`);
  }

  private addressPart(address: string, tags: Map<string, Argument | null>): string | null {
    const at = address.lastIndexOf('@');
    const local = at < 0 ? address : address.slice(0, at);
    const domain = at < 0 ? '' : address.slice(at + 1);
    if (tags.has('localpart')) return local;
    if (tags.has('domain')) return domain;
    // RFC 5233 subaddress, split where the MTA splits it
    const sep = local.indexOf(this.opts.delimiter ?? '+');
    if (tags.has('user')) return sep < 0 ? local : local.slice(0, sep);
    if (tags.has('detail')) return sep < 0 ? null : local.slice(sep + 1);
    return address;
  }

  /** RFC 5228 §2.7 match types with comparators (RFC 4790) and relational (RFC 5231). */
  private match(tags: Map<string, Argument | null>, values: (string | null)[], keys: string[], setsMatchVars = true): boolean {
    const comparator = this.strs(tags.get('comparator'))[0] ?? 'i;ascii-casemap';
    const fold = (s: string): string => (comparator === 'i;ascii-casemap' ? s.replace(/[A-Z]+/g, (m) => m.toLowerCase()) : s);
    const vals = values.filter((v): v is string => v !== null);
    if (tags.has('count')) {
      const rel = this.strs(tags.get('count'))[0]!.toLowerCase();
      return keys.some((k) => relate(rel, compareNumeric(String(vals.length), k)));
    }
    if (tags.has('value')) {
      const rel = this.strs(tags.get('value'))[0]!.toLowerCase();
      const cmp = comparator === 'i;ascii-numeric' ? compareNumeric : (a: string, b: string) => (fold(a) < fold(b) ? -1 : fold(a) > fold(b) ? 1 : 0);
      return vals.some((v) => keys.some((k) => relate(rel, cmp(v, k))));
    }
    for (const v of vals) {
      for (const k of keys) {
        if (tags.has('contains')) {
          if (fold(v).includes(fold(k))) return true;
        } else if (tags.has('matches')) {
          const m = globMatch(k, v, comparator === 'i;ascii-casemap');
          if (m) {
            if (setsMatchVars) this.matchVars = m;
            return true;
          }
        } else if (comparator === 'i;ascii-numeric' ? compareNumeric(v, k) === 0 : fold(v) === fold(k)) return true;
      }
    }
    return false;
  }
}

/** i;ascii-numeric (RFC 4790 §9.1): leading digits as a number; no digits is positive infinity. */
function compareNumeric(a: string, b: string): number {
  const n = (s: string): bigint | null => {
    const m = /^\d+/.exec(s);
    return m ? BigInt(m[0]) : null;
  };
  const x = n(a);
  const y = n(b);
  if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1;
  return x < y ? -1 : x > y ? 1 : 0;
}

function relate(rel: string, cmp: number): boolean {
  return { gt: cmp > 0, ge: cmp >= 0, lt: cmp < 0, le: cmp <= 0, eq: cmp === 0, ne: cmp !== 0 }[rel] ?? false;
}

type GlobItem = { kind: 'char'; c: string } | { kind: 'one' };

/**
 * :matches (RFC 5228 §2.7.1): `*` any run, `?` one character, `\\` escapes. Returns the value
 * and what each wildcard matched, in pattern order (RFC 5229 §3.2's `${0}`, `${1}`…), or null.
 * Each `*` takes the shortest run that lets the rest match: the pieces between stars are placed
 * at their earliest position from left to right, the last piece against the end. Earliest
 * placement never loses a match, so there is no backtracking: at most one scan of the value per
 * piece, and `*a*a*a*a*b` against a long header costs what a few substring searches cost.
 */
export function globMatch(pattern: string, value: string, caseless: boolean): string[] | null {
  const pieces: GlobItem[][] = [[]];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') pieces.push([]);
    else if (c === '?') pieces.at(-1)!.push({ kind: 'one' });
    else {
      const lit = c === '\\' && i + 1 < pattern.length ? pattern[++i]! : c;
      // a surrogate pair is one character, as `?` sees it
      const pair = /[\ud800-\udbff]/.test(lit) && /[\udc00-\udfff]/.test(pattern[i + 1] ?? '') ? lit + pattern[++i]! : lit;
      pieces.at(-1)!.push({ kind: 'char', c: caseless ? asciiLower(pair) : pair });
    }
  }
  const chars = Array.from(value);
  const folded = caseless ? chars.map(asciiLower) : chars;
  const fits = (piece: GlobItem[], at: number): boolean => piece.every((it, j) => it.kind === 'one' || it.c === folded[at + j]);
  const ones = (piece: GlobItem[], at: number): string[] => piece.flatMap((it, j) => (it.kind === 'one' ? [chars[at + j]!] : []));
  const first = pieces[0]!;
  const last = pieces.at(-1)!;
  if (pieces.length === 1) return chars.length === first.length && fits(first, 0) ? [value, ...ones(first, 0)] : null;
  if (first.length + last.length > chars.length || !fits(first, 0)) return null;
  const groups = ones(first, 0);
  const lastAt = chars.length - last.length;
  let at = first.length;
  for (const piece of pieces.slice(1, -1)) {
    let p = at;
    while (p + piece.length <= lastAt && !fits(piece, p)) p++;
    if (p + piece.length > lastAt) return null;
    groups.push(chars.slice(at, p).join(''), ...ones(piece, p));
    at = p + piece.length;
  }
  if (!fits(last, lastAt)) return null;
  groups.push(chars.slice(at, lastAt).join(''), ...ones(last, lastAt));
  return [value, ...groups];
}

/** i;ascii-casemap folds A–Z only (RFC 4790 §9.2). */
function asciiLower(s: string): string {
  return s.length === 1 && s >= 'A' && s <= 'Z' ? s.toLowerCase() : s;
}

/** The address of a redirect (RFC 5228 §4.2: a syntactically valid address), as an addr-spec; null when it is none. */
export function redirectAddress(value: string): string | null {
  const addr = (/^[^<]*<([^>]*)>\s*$/.exec(value)?.[1] ?? value).trim();
  return /^[^\s@<>()",;:\\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(addr) && addr.length <= 254 ? addr : null;
}

interface ParsedDate {
  ms: number;
  /** the zone written in the field, in minutes east of UTC */
  zone: number;
}

const OBS_ZONES: Record<string, number> = { UT: 0, GMT: 0, Z: 0, EST: -300, EDT: -240, CST: -360, CDT: -300, MST: -420, MDT: -360, PST: -480, PDT: -420 };
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** An RFC 5322 date-time (obsolete zones and two-digit years too, §4.3) with its own zone; null when it is none. */
export function parseDateHeader(value: string): ParsedDate | null {
  const v = value.replace(/\([^()]*\)/g, ' ').trim();
  const m = /^(?:[A-Za-z]{3},?\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{2,4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([+-]\d{4}|[A-Za-z]{1,3})?$/.exec(v);
  if (!m) return null;
  const month = MONTHS.indexOf(m[2]!.toLowerCase());
  let year = Number(m[3]);
  if (m[3]!.length === 2) year += year < 50 ? 2000 : 1900;
  else if (m[3]!.length === 3) year += 1900;
  const [day, hour, minute, second] = [Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0)];
  if (month < 0 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return null;
  const z = m[7] ?? '-0000';
  const zone = /^[+-]\d{4}$/.test(z) ? parseZone(z) : (OBS_ZONES[z.toUpperCase()] ?? 0);
  return { ms: Date.UTC(year, month, day, hour, minute, second) - zone * 60_000, zone };
}

/** "+hhmm" / "-hhmm" as minutes east of UTC (RFC 5260 §4.1). */
export function parseZone(z: string): number {
  const sign = z[0] === '-' ? -1 : 1;
  return sign * (Number(z.slice(1, 3)) * 60 + Number(z.slice(3, 5)));
}

/** The server's own zone at that instant (RFC 5260: without :zone, dates are in local time). */
function localZone(ms: number): number {
  return -new Date(ms).getTimezoneOffset();
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

function zoneString(zone: number, colon: boolean): string {
  const a = Math.abs(zone);
  return `${zone < 0 ? '-' : '+'}${pad(Math.floor(a / 60))}${colon ? ':' : ''}${pad(a % 60)}`;
}

/** RFC 5260 §4.2 date-parts of an instant seen in a zone (minutes east of UTC). */
export function datePart(ms: number, zone: number, part: string): string | null {
  const d = new Date(ms + zone * 60_000);
  const [y, mo, day, h, mi, s] = [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()];
  const date = `${pad(y, 4)}-${pad(mo)}-${pad(day)}`;
  const time = `${pad(h)}:${pad(mi)}:${pad(s)}`;
  switch (part) {
    case 'year':
      return pad(y, 4);
    case 'month':
      return pad(mo);
    case 'day':
      return pad(day);
    case 'date':
      return date;
    case 'julian':
      // Modified Julian Day: days since 1858-11-17
      return String(Math.floor((ms + zone * 60_000) / 86_400_000) + 40587);
    case 'hour':
      return pad(h);
    case 'minute':
      return pad(mi);
    case 'second':
      return pad(s);
    case 'time':
      return time;
    case 'iso8601':
      return `${date}T${time}${zoneString(zone, true)}`;
    case 'std11':
      return `${['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getUTCDay()]}, ${pad(day)} ${MONTHS[mo - 1]!.replace(/^./, (c) => c.toUpperCase())} ${pad(y, 4)} ${time} ${zoneString(zone, false)}`;
    case 'zone':
      return zoneString(zone, false);
    case 'weekday':
      return String(d.getUTCDay());
  }
  return null;
}
