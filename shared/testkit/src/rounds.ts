import os from 'node:os';

/**
 * Interleaved A/B rounds for a bench that compares us with a reference server: each round runs
 * every side in turn (A B A B …), so other load on the machine falls on both alike, and a failed
 * run is recorded and reported instead of ending the bench. Used by the TURN and Sieve delivery benches.
 */

export interface RoundResult<R> {
  round: number;
  side: string;
  /** 1-minute load average before and after the run */
  load: [number, number];
  result?: R;
  error?: Error;
}

export interface Side<R> {
  name: string;
  run(round: number): Promise<R>;
}

/** Runs `rounds` rounds of every side in order; errors are logged loudly and kept, never thrown. */
export async function interleave<R>(sides: Side<R>[], rounds: number, log: (line: string) => void = console.log): Promise<RoundResult<R>[][]> {
  const out: RoundResult<R>[][] = [];
  for (let round = 1; round <= rounds; round++) {
    const row: RoundResult<R>[] = [];
    for (const side of sides) {
      const before = os.loadavg()[0]!;
      try {
        const result = await side.run(round);
        row.push({ round, side: side.name, load: [before, os.loadavg()[0]!], result });
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        log(`\n*** round ${round}, ${side.name}: FAILED: ${error.message}\n`);
        row.push({ round, side: side.name, load: [before, os.loadavg()[0]!], error });
      }
    }
    out.push(row);
  }
  return out;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** The median of `xs` (any order; NaN when empty). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Median and range of the finite values, or null when there are none. */
export function spread(values: number[]): Spread | null {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  return { median: median(v), min: v[0]!, max: v[v.length - 1]!, n: v.length };
}

/** "0.52× (0.48–0.60×, 3 rounds)" */
export function formatRatio(s: Spread | null, digits = 2): string {
  if (!s) return '–';
  return `${s.median.toFixed(digits)}× (${s.min.toFixed(digits)}–${s.max.toFixed(digits)}×, ${s.n} round${s.n === 1 ? '' : 's'})`;
}
