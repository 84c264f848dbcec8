import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, runCommand } from '@hearth/testkit';

// The bench must not rot: it installs, restarts and schedules one app with Hearth and runs the same
// container with docker by hand, one interleaved round each, and prints its table (no figures are judged here).
test('npm run bench:runtime runs one round with Hearth and with docker by hand and prints its table', async () => {
  const r = await runCommand(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'services/runtime/bench/runtime.bench.ts')], {
    env: { RUNTIME_BENCH_ROUNDS: '1', RUNTIME_BENCH_WRITE: '0' },
    timeoutMs: 240_000,
  });
  assert.equal(r.code, 0, r.stdout.slice(-2000) + r.stderr.slice(-2000));
  for (const row of ['install → healthy', 'restart → healthy', 'scheduler task start delay', 'one CLI command']) {
    assert.match(r.stdout, new RegExp(`\\| ${row}[^|]* \\| \\d+ / \\d+ \\| \\d+ / \\d+ \\| \\*\\*[\\d.]+× \\([^|]*\\| \\d+ / \\d+ \\|`), `no row for ${row}`);
  }
});
