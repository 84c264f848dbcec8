import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, runCommand } from '@hearth/testkit';

// The bench must not rot: with a tiny N it starts Hearth and Dovecot's LDA, checks both file every
// message alike, runs one interleaved round and prints its table (no figures are judged here).
test('npm run bench:sieve delivers a few messages to Hearth and dovecot-lda alike and prints its table', async () => {
  const r = await runCommand(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'services/smtp/bench/sieve.bench.ts')], {
    env: { SIEVE_BENCH_N: '34', SIEVE_BENCH_ROUNDS: '1', SIEVE_BENCH_WRITE: '0' },
    timeoutMs: 180_000,
  });
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  assert.match(r.stderr, /both filed 34 messages alike: .*Alerts F: 2/);
  for (const row of ['20-rule script', 'no script']) assert.match(r.stdout, new RegExp(`\\| ${row} \\|[^\\n]*\\| \\*\\*[\\d.]+× \\(`), `no row for ${row}`);
});
