import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileScript, runScript, SieveRuntimeError, SieveSyntaxError, type SieveMessage } from '../src/index.ts';

/** Scripts that use every command and test; the fuzzer mutates them. */
const SEEDS = [
  'require ["fileinto", "mailbox", "imap4flags", "copy", "variables", "relational", "comparator-i;ascii-numeric"];\nif header :matches "subject" "*[*]*" { set :lower "tag" "${2}"; fileinto :create :copy "Tags.${tag}"; }\nelsif header :count "ge" :comparator "i;ascii-numeric" "received" "3" { addflag "\\\\Seen"; keep :flags ["\\\\Flagged"]; }\nelse { discard; stop; }',
  'require ["vacation", "date", "index", "relational", "envelope", "subaddress", "encoded-character"];\nif allof (currentdate :value "ge" "date" "2020-01-01", not address :index 1 :last :domain "from" "${hex:65 78}.test", envelope :detail "to" "x") {\n vacation :days 3 :subject "Away" :addresses ["a@b.test"] :handle "h" text:\nback soon\n.\n;\n}',
  'require ["reject", "body", "copy"];\nif anyof (body :text :contains "unsubscribe", size :over 1M, exists ["X-Spam", "X-Junk"]) { redirect :copy "spam@remote.test"; reject "no"; }\nif date :zone "+0100" :is "date" "weekday" "0" { redirect "weekend@remote.test"; }',
];

const MESSAGE: SieveMessage = {
  header: (n) => ({ subject: ['a [b] c'], received: ['x; Wed, 08 Jul 2009 23:10:00 +0000', 'y', 'z'], from: ['Someone <s@example.test>'], date: ['Wed, 08 Jul 2009 15:30:00 -0700'] })[n.toLowerCase()] ?? [],
  addresses: (n) => (n.toLowerCase() === 'from' ? [['s@example.test']] : []),
  size: 4096,
  envelope: { from: 's@example.test', to: 'me+x@example.test' },
  body: () => ['hello\r\nunsubscribe here\r\n'],
};

/** a small seeded PRNG (mulberry32), so a failure can be replayed */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TOKENS = ['{', '}', '(', ')', '[', ']', ',', ';', '"', ':', '#', '/*', '*/', 'text:\n', '\n.\n', 'if', 'allof', 'not', ':index', '0', '99999999999999999999', '${', '}', '\\', 'stop;', 'redirect "x@y.test";', '${unicode:D800}'];

test('2000 mutated scripts: compiling throws only SieveSyntaxError with a line, running only SieveRuntimeError, and every action list is bounded', () => {
  const rand = prng(15);
  let compiled = 0;
  for (let i = 0; i < 2000; i++) {
    let src = SEEDS[i % SEEDS.length]!;
    for (let m = 1 + Math.floor(rand() * 4); m > 0; m--) {
      const at = Math.floor(rand() * src.length);
      const r = rand();
      if (r < 0.4) src = src.slice(0, at) + src.slice(at + 1 + Math.floor(rand() * 8));
      else if (r < 0.8) src = src.slice(0, at) + TOKENS[Math.floor(rand() * TOKENS.length)] + src.slice(at);
      else src = src.slice(0, at) + src.slice(at, at + 20) + src.slice(at);
    }
    let cmds;
    try {
      cmds = compileScript(src);
    } catch (err) {
      assert.ok(err instanceof SieveSyntaxError, `case ${i}: ${String(err)}\n${src}`);
      assert.ok(err.line >= 1 && err.line <= src.split('\n').length + 1, `case ${i}: line ${err.line}`);
      continue;
    }
    compiled++;
    try {
      const actions = runScript(cmds, MESSAGE, { now: new Date('2026-01-04T10:00:00Z') });
      assert.ok(actions.length <= 33, `case ${i}: ${actions.length} actions`);
    } catch (err) {
      assert.ok(err instanceof SieveRuntimeError, `case ${i}: ${String(err)}\n${src}`);
    }
  }
  // the mutations are not all fatal: the interpreter ran on a good share of them
  assert.ok(compiled > 20, `only ${compiled} compiled`);
});
