import type { Argument, Command, Test } from './parser.ts';

/** What a script sees of a message; the daemon builds it with its own header reader. */
export interface SieveMessage {
  /** unfolded, decoded values of a header field, in order */
  header(name: string): string[];
  /** the addresses in a header field (address lists, groups flattened) */
  addresses(name: string): string[];
  size: number;
  envelope: { from: string; to: string };
  /** the body as text (body extension, :text) */
  body(): string;
}

export type SieveAction =
  | { kind: 'keep'; flags: string[] }
  | { kind: 'fileinto'; folder: string; create: boolean; flags: string[] }
  | { kind: 'discard' }
  | { kind: 'reject'; reason: string };

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

class Stop {}

/**
 * Runs a compiled script against a message (RFC 5228 §2.10: actions are collected, then taken
 * by the caller). The implicit keep holds unless fileinto (without :copy), discard or reject
 * cancelled it. imap4flags (RFC 5232) keeps the internal flag variable; variables (RFC 5229)
 * expands `${name}` and the `${0}`–`${9}` of the last :matches.
 */
export function runScript(cmds: Command[], msg: SieveMessage): SieveAction[] {
  const r = new Run(msg);
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
  const valued = new Set(['comparator', 'value', 'count', 'flags', 'days', 'subject', 'from', 'handle', 'addresses', 'content']);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.kind === 'tag') tags.set(a.name, valued.has(a.name) ? (args[++i] ?? null) : null);
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

  constructor(private readonly msg: SieveMessage) {}

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
        this.implicitKeep = false;
        return this.act(c.line, { kind: 'reject', reason: this.strs(positional[0])[0]! });
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
        // redirect and vacation are not carried out yet: the message is kept, and the caller logs this
        throw new SieveRuntimeError(c.line, `${c.name} is not supported at delivery yet`);
    }
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
        return this.match(tags, this.strs(positional[0]).flatMap((h) => this.msg.header(h)), this.strs(positional[1]));
      case 'address':
        return this.match(tags, this.strs(positional[0]).flatMap((h) => this.msg.addresses(h)).map((a) => addressPart(a, tags)), this.strs(positional[1]));
      case 'envelope': {
        const values = this.strs(positional[0]).map((part) => {
          const p = part.toLowerCase();
          return p === 'from' ? this.msg.envelope.from : p === 'to' ? this.msg.envelope.to : null;
        });
        const present = values.filter((v): v is string => v !== null).map((a) => addressPart(a, tags));
        return this.match(tags, present, this.strs(positional[1]));
      }
      case 'body':
        return this.match(tags, [this.msg.body()], this.strs(positional[0]));
      case 'hasflag':
        return this.match(tags, [...this.flags], this.strs(positional[0]));
      case 'string':
        return this.match(tags, this.strs(positional[0]), this.strs(positional[1]));
    }
    throw new SieveRuntimeError(t.line, `test ${t.name} is not supported at delivery yet`);
  }

  /** RFC 5228 §2.7 match types with comparators (RFC 4790) and relational (RFC 5231). */
  private match(tags: Map<string, Argument | null>, values: (string | null)[], keys: string[]): boolean {
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
          const m = globToRegExp(k, comparator === 'i;ascii-casemap').exec(v);
          if (m) {
            this.matchVars = [m[0], ...m.slice(1)];
            return true;
          }
        } else if (comparator === 'i;ascii-numeric' ? compareNumeric(v, k) === 0 : fold(v) === fold(k)) return true;
      }
    }
    return false;
  }
}

function addressPart(address: string, tags: Map<string, Argument | null>): string | null {
  const at = address.lastIndexOf('@');
  const local = at < 0 ? address : address.slice(0, at);
  const domain = at < 0 ? '' : address.slice(at + 1);
  if (tags.has('localpart')) return local;
  if (tags.has('domain')) return domain;
  // RFC 5233 subaddress with "+" as the separator
  const plus = local.indexOf('+');
  if (tags.has('user')) return plus < 0 ? local : local.slice(0, plus);
  if (tags.has('detail')) return plus < 0 ? null : local.slice(plus + 1);
  return address;
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

/** :matches (RFC 5228 §2.7.1): `*` any run, `?` one character, `\` escapes; each wildcard a group. */
function globToRegExp(glob: string, caseless: boolean): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '\\' && i + 1 < glob.length) re += escapeRe(glob[++i]!);
    else if (c === '*') re += '([\\s\\S]*?)';
    else if (c === '?') re += '([\\s\\S])';
    else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`, caseless ? 'iu' : 'u');
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}
