import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT, runCommand } from '@hearth/testkit';

/**
 * `npm run bench:turn` at its smallest (one round, one tiny step, nothing written), so the bench
 * cannot rot: it must start Hearth and coturn, relay through both and print its table. Figures
 * are not checked; they depend on the machine.
 */
describe('bench:turn smoke', { timeout: 180_000 }, () => {
  it('runs one round against Hearth and coturn and prints the table', async () => {
    const r = await runCommand(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'services/turn/bench/turn.bench.ts')], { env: { TURN_BENCH_SMOKE: '1' }, timeoutMs: 170_000 });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^Hearth +UDP +180 B .* sent 200 recv \d+/m);
    assert.match(r.out, /^coturn +UDP +180 B .* sent 200 recv \d+/m);
    assert.match(r.out, /^\| round \| Hearth highest lossless/m);
    assert.match(r.out, /^\| 1 \| /m);
    assert.doesNotMatch(r.out, /FAILED/);
  });
});
