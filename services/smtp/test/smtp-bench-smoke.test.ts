import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, runCommand } from '@hearth/testkit';

// The bench must not rot: with a few messages it starts Hearth and Postfix, runs one interleaved
// round of both figures against each and prints its table (no figures are judged here).
test('npm run bench:smtp sends a few messages to Hearth and Postfix and prints its table', async () => {
  const r = await runCommand(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'services/smtp/bench/smtp.bench.ts')], {
    env: { BENCH_MESSAGES: '40', BENCH_ROUNDS: '1', BENCH_WRITE: '0' },
    timeoutMs: 180_000,
  });
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  for (const row of ['(a) MX → Maildir', '(b) relay → smtp-sink']) {
    assert.match(r.stdout, new RegExp(`\\| ${row.replace(/[()]/g, '\\$&')} \\| \\d+ \\| \\d+ \\| \\*\\*[\\d.]+× \\([^|]*\\| [\\d.]+ / [\\d.]+ \\|`), `no row for ${row}`);
  }
});
