import assert from 'node:assert/strict';
import { runCommand } from './index.ts';

/** A metrics endpoint as Prometheus sees it: fetched with curl, read by a strict parser of the text format (0.0.4). */

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface PromExposition {
  samples: PromSample[];
  /** metric family -> its TYPE */
  types: Map<string, string>;
}

/** Strict reader of the Prometheus text format: every line is a HELP, a TYPE or a well-formed sample, or the assertion fails. */
export function parsePrometheusText(text: string): PromExposition {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const samples: PromSample[] = [];
  const types = new Map<string, string>();
  const name = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue;
    const meta = new RegExp(`^# (HELP|TYPE) (${name}) (.*)$`).exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') {
        assert.match(meta[3]!, /^(counter|gauge|histogram|summary|untyped)$/, line);
        assert.equal(types.has(meta[2]!), false, `one TYPE per metric: ${line}`);
        types.set(meta[2]!, meta[3]!);
      }
      continue;
    }
    const m = new RegExp(`^(${name})(?:\\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*",?)*)\\})? (\\S+)(?: -?\\d+)?$`).exec(line);
    assert.ok(m, `not a valid sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    const v = m[3]!;
    // Prometheus reads the special values in any case (Go's ParseFloat); prom-client writes NaN as "Nan",
    // e.g. an event-loop lag mean before the first sample of a just-restarted daemon.
    const special = /^(?:([+-]?)inf|nan)$/i.exec(v);
    const value = special ? (special[0].toLowerCase() === 'nan' ? NaN : special[1] === '-' ? -Infinity : Infinity) : Number(v);
    assert.ok(!Number.isNaN(value) || special, `bad value in ${line}`);
    samples.push({ name: m[1]!, labels, value });
  }
  // every sample belongs to a declared family (histograms add _bucket, _sum, _count; counters _total)
  for (const s of samples) {
    const family = [s.name, s.name.replace(/_(bucket|sum|count)$/, '')].find((n) => types.has(n));
    assert.ok(family, `sample ${s.name} has no TYPE line`);
    if (types.get(family) === 'counter') assert.match(s.name, /_total$/, `counter ${s.name} is named *_total`);
  }
  return { samples, types };
}

/** curl's view of a /metrics URL, parsed strictly. */
export async function scrapeMetrics(url: string): Promise<PromExposition> {
  const r = await runCommand('curl', ['-sS', '--fail', '--max-time', '20', '-H', 'Accept: text/plain', url]);
  assert.equal(r.code, 0, `curl ${url}: ${r.stderr}`);
  return parsePrometheusText(r.stdout);
}

/** The sum of the samples of `name` whose labels include `labels`. */
export const metricValue = (e: PromExposition, name: string, labels: Record<string, string> = {}): number =>
  e.samples.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v)).reduce((a, x) => a + x.value, 0);
