import { redirectAddress } from './interpret.ts';
import { SieveSyntaxError, type Argument, type Command, type Test } from './parser.ts';

/** Extensions we implement (what `require` accepts and ManageSieve's SIEVE capability lists). */
export const EXTENSIONS = [
  'fileinto',
  'reject',
  'ereject',
  'envelope',
  'encoded-character',
  'imap4flags',
  'copy',
  'body',
  'variables',
  'vacation',
  'relational',
  'subaddress',
  'mailbox',
  'date',
  'index',
  'comparator-i;ascii-numeric',
] as const;

/** RFC 5260 §4.2 */
const DATE_PARTS = new Set(['year', 'month', 'day', 'date', 'julian', 'hour', 'minute', 'second', 'time', 'iso8601', 'std11', 'zone', 'weekday']);

const MATCH = ['is', 'contains', 'matches'];
const RELATIONAL = ['value', 'count'];
const ADDRESS_PART = ['all', 'localpart', 'domain'];
const SUBADDRESS = ['user', 'detail'];

interface Spec {
  /** the extension `require` must name */
  ext?: string;
  /** positional arguments: string lists (s) and numbers (n), in order */
  positional: ('s' | 'n')[];
  /** tags, each with whether it takes a value (s, n) and an extension it needs */
  tags?: Record<string, { value?: 's' | 'n'; ext?: string }>;
  /** number of tests: 'one' (if, not), 'list' (allof/anyof), none otherwise */
  tests?: 'one' | 'list';
  block?: boolean;
}

const tag = (names: string[], ext?: string, value?: 's' | 'n'): Record<string, { value?: 's' | 'n'; ext?: string }> => Object.fromEntries(names.map((n) => [n, { ext, value }]));

const MATCHING = { ...tag(MATCH), ...tag(RELATIONAL, 'relational', 's'), comparator: { value: 's' as const } };
/** RFC 5260 §6 */
const INDEX = { index: { value: 'n' as const, ext: 'index' }, last: { ext: 'index' } };
const ADDRESSING = { ...MATCHING, ...tag(ADDRESS_PART), ...tag(SUBADDRESS, 'subaddress'), ...INDEX };

const COMMANDS: Record<string, Spec> = {
  require: { positional: ['s'] },
  if: { positional: [], tests: 'one', block: true },
  elsif: { positional: [], tests: 'one', block: true },
  else: { positional: [], block: true },
  stop: { positional: [] },
  keep: { positional: [], tags: tag(['flags'], 'imap4flags', 's') },
  discard: { positional: [] },
  redirect: { positional: ['s'], tags: tag(['copy'], 'copy') },
  fileinto: { ext: 'fileinto', positional: ['s'], tags: { ...tag(['copy'], 'copy'), ...tag(['create'], 'mailbox'), ...tag(['flags'], 'imap4flags', 's') } },
  reject: { ext: 'reject', positional: ['s'] },
  ereject: { ext: 'ereject', positional: ['s'] },
  vacation: {
    ext: 'vacation',
    positional: ['s'],
    tags: { ...tag(['days'], undefined, 'n'), ...tag(['subject', 'from', 'handle'], undefined, 's'), ...tag(['addresses'], undefined, 's'), ...tag(['mime']) },
  },
  setflag: { ext: 'imap4flags', positional: ['s'] },
  addflag: { ext: 'imap4flags', positional: ['s'] },
  removeflag: { ext: 'imap4flags', positional: ['s'] },
  set: { ext: 'variables', positional: ['s', 's'], tags: tag(['lower', 'upper', 'lowerfirst', 'upperfirst', 'quotewildcard', 'length']) },
};

const TESTS: Record<string, Spec> = {
  true: { positional: [] },
  false: { positional: [] },
  not: { positional: [], tests: 'one' },
  allof: { positional: [], tests: 'list' },
  anyof: { positional: [], tests: 'list' },
  exists: { positional: ['s'] },
  size: { positional: ['n'], tags: tag(['over', 'under']) },
  header: { positional: ['s', 's'], tags: { ...MATCHING, ...INDEX } },
  address: { positional: ['s', 's'], tags: ADDRESSING },
  envelope: { ext: 'envelope', positional: ['s', 's'], tags: ADDRESSING },
  body: { ext: 'body', positional: ['s'], tags: { ...MATCHING, ...tag(['raw', 'text']), content: { value: 's' } } },
  hasflag: { ext: 'imap4flags', positional: ['s'], tags: MATCHING },
  string: { ext: 'variables', positional: ['s', 's'], tags: MATCHING },
  mailboxexists: { ext: 'mailbox', positional: ['s'] },
  date: { ext: 'date', positional: ['s', 's', 's'], tags: { ...MATCHING, ...INDEX, zone: { value: 's' }, originalzone: {} } },
  currentdate: { ext: 'date', positional: ['s', 's'], tags: { ...MATCHING, zone: { value: 's' } } },
};

const COMPARATORS = new Set(['i;ascii-casemap', 'i;octet', 'i;ascii-numeric']);
const RELATIONS = new Set(['gt', 'ge', 'lt', 'le', 'eq', 'ne']);

/**
 * Checks a parsed script against what the commands mean (RFC 5228 §§3–5 and the extensions):
 * known commands and tests, `require` first and naming only supported extensions, every
 * extension used required, argument shapes, if/elsif/else order. Throws SieveSyntaxError.
 */
export function validateScript(cmds: Command[]): void {
  const required = new Set<string>();
  let preamble = true;
  const walk = (list: Command[], top: boolean): void => {
    let prev: string | null = null;
    for (const c of list) {
      if (c.name === 'require') {
        if (!top || !preamble) throw new SieveSyntaxError(c.line, 'require must come before any other command');
        checkArgs(c, COMMANDS.require!, required);
        for (const ext of stringsOf(c.args[0]!)) {
          if (!(EXTENSIONS as readonly string[]).includes(ext)) throw new SieveSyntaxError(c.line, `unsupported extension "${ext}"`);
          required.add(ext);
          if (ext === 'reject') required.add('ereject');
        }
        prev = c.name;
        continue;
      }
      preamble = false;
      const spec = COMMANDS[c.name];
      if (!spec) throw new SieveSyntaxError(c.line, `unknown command "${c.name}"`);
      if ((c.name === 'elsif' || c.name === 'else') && prev !== 'if' && prev !== 'elsif') throw new SieveSyntaxError(c.line, `${c.name} without a preceding if`);
      checkArgs(c, spec, required);
      if (c.name === 'redirect') {
        const to = constant(c.args.find((a) => a.kind === 'strings'));
        if (to !== null && !redirectAddress(to)) throw new SieveSyntaxError(c.line, `redirect: "${to}" is not a valid address`);
      }
      if (spec.block && c.block === null) throw new SieveSyntaxError(c.line, `${c.name} needs a block`);
      if (!spec.block && c.block !== null) throw new SieveSyntaxError(c.line, `${c.name} takes no block`);
      for (const t of c.tests) checkTest(t, required);
      if (c.block) walk(c.block, false);
      prev = c.name;
    }
  };
  walk(cmds, true);
  if (required.has('encoded-character')) decodeStrings(cmds);
}

/** RFC 5228 §2.4.2.4: `${hex: 41 42}` and `${unicode: 263A}` in every string, once "encoded-character" is required. */
function decodeStrings(nodes: (Command | Test)[]): void {
  for (const n of nodes) {
    for (const a of n.args) if (a.kind === 'strings') a.values = a.values.map((v) => decodeEncoded(v, a.line));
    decodeStrings(n.tests);
    if ('block' in n && n.block) decodeStrings(n.block);
  }
}

function decodeEncoded(s: string, line: number): string {
  if (!s.includes('${')) return s;
  return s.replace(/\$\{(hex|unicode):([ \t\r\n0-9A-Fa-f]*)\}/gi, (whole, kind: string, body: string) => {
    const items = body.trim().split(/\s+/).filter(Boolean);
    // not a valid encoding: left as it is (§2.4.2.4)
    if (!items.length) return whole;
    if (kind.toLowerCase() === 'hex') return items.every((h) => h.length <= 2) ? Buffer.from(items.map((h) => parseInt(h, 16))).toString('utf8') : whole;
    return items
      .map((h) => {
        const cp = h.length <= 8 ? parseInt(h, 16) : -1;
        if (!(cp >= 0 && cp <= 0x10ffff) || (cp >= 0xd800 && cp <= 0xdfff)) throw new SieveSyntaxError(line, `\${unicode:${h}} is not a Unicode scalar value`);
        return String.fromCodePoint(cp);
      })
      .join('');
  });
}

function checkTest(t: Test, required: Set<string>): void {
  const spec = TESTS[t.name];
  if (!spec) throw new SieveSyntaxError(t.line, `unknown test "${t.name}"`);
  checkArgs(t, spec, required);
  if (t.name === 'size' && !t.args.some((a) => a.kind === 'tag')) throw new SieveSyntaxError(t.line, 'size needs :over or :under');
  const tags = new Set(t.args.filter((a) => a.kind === 'tag').map((a) => (a as { name: string }).name));
  if (tags.has('last') && !tags.has('index')) throw new SieveSyntaxError(t.line, ':last needs :index');
  if (tags.has('zone') && tags.has('originalzone')) throw new SieveSyntaxError(t.line, ':zone and :originalzone exclude each other');
  if (t.name === 'date' || t.name === 'currentdate') {
    const part = constant(t.args.filter((a) => a.kind !== 'tag' && !isTagValue(t.args, a)).at(-2));
    if (part !== null && !DATE_PARTS.has(part.toLowerCase())) throw new SieveSyntaxError(t.line, `unknown date-part "${part}"`);
  }
  for (const sub of t.tests) checkTest(sub, required);
}

function checkArgs(node: Command | Test, spec: Spec, required: Set<string>): void {
  const what = `${node.name}`;
  if (spec.ext && !required.has(spec.ext)) throw new SieveSyntaxError(node.line, `${what} needs require "${spec.ext}"`);
  const positional: Argument[] = [];
  const args = node.args;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.kind !== 'tag') {
      positional.push(a);
      continue;
    }
    if (positional.length) throw new SieveSyntaxError(a.line, `tag :${a.name} after the positional arguments of ${what}`);
    const t = spec.tags?.[a.name];
    if (!t) throw new SieveSyntaxError(a.line, `${what} has no tag :${a.name}`);
    if (t.ext && !required.has(t.ext)) throw new SieveSyntaxError(a.line, `:${a.name} needs require "${t.ext}"`);
    if (t.value) {
      const v = args[++i];
      if (!v || (t.value === 's' ? v.kind !== 'strings' : v.kind !== 'number')) throw new SieveSyntaxError(a.line, `:${a.name} needs a ${t.value === 's' ? 'string' : 'number'}`);
      if (a.name === 'comparator') {
        const cmp = stringsOf(v)[0]!;
        if (!COMPARATORS.has(cmp)) throw new SieveSyntaxError(v.line, `unknown comparator "${cmp}"`);
        if (cmp === 'i;ascii-numeric' && !required.has('comparator-i;ascii-numeric')) throw new SieveSyntaxError(v.line, 'comparator i;ascii-numeric needs require "comparator-i;ascii-numeric"');
      }
      if (a.name === 'zone' && constant(v) !== null && !/^[+-]([01]\d|2[0-3])[0-5]\d$/.test(constant(v)!)) throw new SieveSyntaxError(v.line, `invalid time zone "${constant(v)}" (+hhmm or -hhmm)`);
      if (a.name === 'index' && v.kind === 'number' && v.value < 1) throw new SieveSyntaxError(v.line, ':index counts from 1');
      if ((a.name === 'value' || a.name === 'count') && !RELATIONS.has(stringsOf(v)[0]!.toLowerCase())) throw new SieveSyntaxError(v.line, `unknown relation "${stringsOf(v)[0]}"`);
    }
  }
  if (positional.length !== spec.positional.length) throw new SieveSyntaxError(node.line, `${what} takes ${spec.positional.length} argument${spec.positional.length === 1 ? '' : 's'}, not ${positional.length}`);
  spec.positional.forEach((kind, i) => {
    const a = positional[i]!;
    if (kind === 'n' && a.kind !== 'number') throw new SieveSyntaxError(a.line, `${what} needs a number`);
    if (kind === 's' && a.kind !== 'strings') throw new SieveSyntaxError(a.line, `${what} needs a string or string list`);
  });
  const n = node.tests.length;
  // RFC 5228 §§3.1, 5.2, 5.3, 5.8: if/not take one test, allof/anyof a parenthesized test-list (as Pigeonhole checks)
  if (spec.tests === 'one' && (n !== 1 || node.testList)) throw new SieveSyntaxError(node.line, `${what} needs one test, not ${node.testList ? 'a test list in parentheses' : 'none'}`);
  if (spec.tests === 'list' && !node.testList) throw new SieveSyntaxError(node.line, `${what} needs a test list in parentheses${n ? ', not a single test' : ''}`);
  // "keep\ndiscard;" parses as keep with a test named discard: the real mistake is the missing ";"
  if (!spec.tests && n) throw new SieveSyntaxError(node.tests[0]!.line, `expected ";" after ${what}`);
}

/** A one-string argument without variables, known when the script is compiled; null otherwise. */
function constant(a: Argument | undefined): string | null {
  return a && a.kind === 'strings' && a.values.length === 1 && !a.values[0]!.includes('${') ? a.values[0]! : null;
}

function isTagValue(args: Argument[], a: Argument): boolean {
  const i = args.indexOf(a);
  const prev = args[i - 1];
  return prev?.kind === 'tag' && TAG_VALUES.has(prev.name);
}

/** tags followed by a value */
export const TAG_VALUES = new Set(['comparator', 'value', 'count', 'flags', 'days', 'subject', 'from', 'handle', 'addresses', 'content', 'zone', 'index']);

export function stringsOf(a: Argument): string[] {
  return a.kind === 'strings' ? a.values : [];
}
