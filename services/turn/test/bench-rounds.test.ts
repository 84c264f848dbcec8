import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatRatio, interleave, spread } from '@hearth/testkit';

describe('bench rounds', () => {
  it('runs the sides in turn, round after round, and keeps going past a failed run', async () => {
    const order: string[] = [];
    const lines: string[] = [];
    const rounds = await interleave(
      [
        { name: 'A', run: async (round) => (order.push(`A${round}`), round * 10) },
        {
          name: 'B',
          run: async (round) => {
            order.push(`B${round}`);
            if (round === 2) throw new Error('probe allocation failed: error 508');
            return round;
          },
        },
      ],
      3,
      (line) => lines.push(line),
    );
    assert.deepEqual(order, ['A1', 'B1', 'A2', 'B2', 'A3', 'B3']);
    assert.deepEqual(
      rounds.map((row) => row.map((r) => r.result ?? r.error?.message)),
      [
        [10, 1],
        [20, 'probe allocation failed: error 508'],
        [30, 3],
      ],
    );
    assert.ok(lines.some((l) => l.includes('round 2, B: FAILED: probe allocation failed')));
  });

  it('gives the median and range of the finite ratios', () => {
    assert.deepEqual(spread([0.5, NaN, 0.3, 0.4, Infinity]), { median: 0.4, min: 0.3, max: 0.5, n: 3 });
    assert.deepEqual(spread([1, 2, 3, 4]), { median: 2.5, min: 1, max: 4, n: 4 });
    assert.equal(spread([NaN]), null);
    assert.equal(formatRatio(spread([0.52, 0.48, 0.6])), '0.52× (0.48–0.60×, 3 rounds)');
    assert.equal(formatRatio(null), '–');
  });
});
