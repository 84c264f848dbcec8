/**
 * RFC 5228 §8 grammar: lexer and parser into commands, tests and arguments, each with
 * its line number. Syntax only; what the commands mean is checked in validate.ts.
 */

export class SieveSyntaxError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
  }
}

export type Argument = { kind: 'strings'; values: string[]; line: number } | { kind: 'number'; value: number; line: number } | { kind: 'tag'; name: string; line: number };

export interface Test {
  name: string;
  args: Argument[];
  tests: Test[];
  /** the tests came in parentheses (a test-list), not as one bare test */
  testList: boolean;
  line: number;
}

export interface Command {
  name: string;
  args: Argument[];
  tests: Test[];
  /** the tests came in parentheses (a test-list), not as one bare test */
  testList: boolean;
  /** null: ended with ";" */
  block: Command[] | null;
  line: number;
}

type Token =
  | { t: 'id'; v: string; line: number }
  | { t: 'tag'; v: string; line: number }
  | { t: 'num'; v: number; line: number }
  | { t: 'str'; v: string; line: number }
  | { t: 'punct'; v: string; line: number }
  | { t: 'eof'; line: number };

/** deepest nesting of blocks and test lists, so a hostile script cannot exhaust the stack */
const MAX_DEPTH = 64;
const QUANTIFIER: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

function* tokens(src: string): Generator<Token> {
  let i = 0;
  let line = 1;
  const fail = (msg: string): never => {
    throw new SieveSyntaxError(line, msg);
  };
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\n') {
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (c === '#') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) fail('unterminated comment');
      for (let j = i; j < end; j++) if (src[j] === '\n') line++;
      i = end + 2;
    } else if (c === '"') {
      const start = line;
      let v = '';
      i++;
      for (;;) {
        if (i >= src.length) throw new SieveSyntaxError(start, 'unterminated string');
        const d = src[i]!;
        if (d === '"') break;
        if (d === '\\' && i + 1 < src.length) {
          i++;
          v += src[i];
        } else v += d;
        if (src[i] === '\n') line++;
        i++;
      }
      i++;
      yield { t: 'str', v, line: start };
    } else if (/[0-9]/.test(c)) {
      const m = /^([0-9]+)([KMGkmg])?/.exec(src.slice(i, i + 24))!;
      i += m[0].length;
      const v = Number(m[1]) * (m[2] ? QUANTIFIER[m[2].toUpperCase()]! : 1);
      if (!Number.isSafeInteger(v)) fail('number too large');
      yield { t: 'num', v, line };
    } else if (c === ':') {
      const m = /^:([A-Za-z_][A-Za-z0-9_]*)/.exec(src.slice(i, i + 256));
      if (!m) fail('expected a tag after ":"');
      i += m![0].length;
      yield { t: 'tag', v: m![1]!.toLowerCase(), line };
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i, i + 256))!;
      i += m[0].length;
      if (m[0].toLowerCase() === 'text' && src[i] === ':') {
        // multi-line string: rest of this line is whitespace or a comment, then lines up to "."
        const start = line;
        const eol = src.indexOf('\n', i);
        if (eol < 0 || !/^[ \t]*(#.*)?\r?$/.test(src.slice(i + 1, eol))) fail('text: must be followed by a line break');
        i = eol + 1;
        line++;
        const lines: string[] = [];
        for (;;) {
          if (i >= src.length) throw new SieveSyntaxError(start, 'unterminated text: (no line with a lone ".")');
          let nl = src.indexOf('\n', i);
          if (nl < 0) nl = src.length;
          const text = src.slice(i, nl).replace(/\r$/, '');
          i = nl + 1;
          line++;
          if (text === '.') break;
          lines.push(text.startsWith('..') ? text.slice(1) : text);
        }
        yield { t: 'str', v: lines.map((l) => `${l}\r\n`).join(''), line: start };
      } else {
        yield { t: 'id', v: m[0].toLowerCase(), line };
      }
    } else if ('[](){},;'.includes(c)) {
      i++;
      yield { t: 'punct', v: c, line };
    } else {
      fail(`unexpected character ${JSON.stringify(c)}`);
    }
  }
  yield { t: 'eof', line };
}

class Parser {
  private readonly toks: Token[];
  private pos = 0;

  constructor(src: string) {
    this.toks = [...tokens(src)];
  }

  private peek(): Token {
    return this.toks[this.pos]!;
  }

  private next(): Token {
    return this.toks[this.pos++]!;
  }

  private isPunct(v: string): boolean {
    const t = this.peek();
    return t.t === 'punct' && t.v === v;
  }

  private expect(v: string, what: string): void {
    const t = this.next();
    if (t.t !== 'punct' || t.v !== v) throw new SieveSyntaxError(t.line, `expected ${what}, found ${describe(t)}`);
  }

  script(): Command[] {
    const cmds = this.commands(0);
    const t = this.peek();
    if (t.t !== 'eof') throw new SieveSyntaxError(t.line, `unexpected ${describe(t)}`);
    return cmds;
  }

  private commands(depth: number): Command[] {
    const out: Command[] = [];
    while (this.peek().t === 'id') out.push(this.command(depth));
    return out;
  }

  private command(depth: number): Command {
    const id = this.next() as Extract<Token, { t: 'id' }>;
    const args = this.arguments();
    const testList = this.isPunct('(');
    const tests = this.testsAfterArgs(depth);
    if (this.isPunct(';')) {
      this.next();
      return { name: id.v, args, tests, testList, block: null, line: id.line };
    }
    if (this.isPunct('{')) {
      if (depth >= MAX_DEPTH) throw new SieveSyntaxError(id.line, 'blocks nested too deeply');
      this.next();
      const block = this.commands(depth + 1);
      this.expect('}', '"}" closing the block');
      return { name: id.v, args, tests, testList, block, line: id.line };
    }
    const t = this.peek();
    throw new SieveSyntaxError(t.line, `expected ";" or "{" after ${id.v}, found ${describe(t)}`);
  }

  private arguments(): Argument[] {
    const args: Argument[] = [];
    for (;;) {
      const t = this.peek();
      if (t.t === 'tag') args.push({ kind: 'tag', name: t.v, line: t.line });
      else if (t.t === 'num') args.push({ kind: 'number', value: t.v, line: t.line });
      else if (t.t === 'str') args.push({ kind: 'strings', values: [t.v], line: t.line });
      else if (t.t === 'punct' && t.v === '[') {
        this.next();
        const values: string[] = [];
        for (;;) {
          const s = this.next();
          if (s.t !== 'str') throw new SieveSyntaxError(s.line, `expected a string in the list, found ${describe(s)}`);
          values.push(s.v);
          if (this.isPunct(',')) {
            this.next();
            continue;
          }
          this.expect(']', '"]" closing the string list');
          break;
        }
        args.push({ kind: 'strings', values, line: t.line });
        continue;
      } else break;
      this.next();
    }
    return args;
  }

  private testsAfterArgs(depth: number): Test[] {
    if (this.peek().t === 'id') return [this.test(depth)];
    if (this.isPunct('(')) return this.testList(depth);
    return [];
  }

  private testList(depth: number): Test[] {
    if (depth >= MAX_DEPTH) throw new SieveSyntaxError(this.peek().line, 'tests nested too deeply');
    this.expect('(', '"("');
    const out = [this.test(depth + 1)];
    while (this.isPunct(',')) {
      this.next();
      out.push(this.test(depth + 1));
    }
    this.expect(')', '")" closing the test list');
    return out;
  }

  private test(depth: number): Test {
    const id = this.next();
    if (id.t !== 'id') throw new SieveSyntaxError(id.line, `expected a test, found ${describe(id)}`);
    const args = this.arguments();
    const testList = this.isPunct('(');
    const tests = this.testsAfterArgs(depth + 1);
    return { name: id.v, args, tests, testList, line: id.line };
  }
}

function describe(t: Token): string {
  switch (t.t) {
    case 'eof':
      return 'end of script';
    case 'str':
      return 'a string';
    case 'num':
      return `number ${t.v}`;
    case 'tag':
      return `tag :${t.v}`;
    case 'id':
      return `"${t.v}"`;
    case 'punct':
      return `"${t.v}"`;
  }
}

/** Parses a script; throws SieveSyntaxError with the line of the first error. */
export function parseScript(src: string): Command[] {
  return new Parser(src).script();
}
