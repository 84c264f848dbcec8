import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, runCommand } from '@hearth/testkit';

// The bench must not rot: with 300 users and a few requests it starts the console, checks that the
// search and the deep page answer what they should, runs one round and prints its table; no figures
// are judged here and BENCHMARKS.md is left alone.
test('npm run bench:console runs one tiny round and prints its table', async () => {
  const r = await runCommand(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'services/console/bench/console.bench.ts')], {
    env: { CONSOLE_BENCH_USERS: '300', BENCH_REQUESTS: '5', BENCH_ROUNDS: '1', CONSOLE_BENCH_WRITE: '0' },
    timeoutMs: 180_000,
  });
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  for (const row of ['user search \\(`/admin/users\\?q=…`, 1 hit\\)', 'a page of 50 \\(`/admin/users\\?page=4`\\)', 'dashboard, time to first byte']) {
    assert.match(r.stdout, new RegExp(`\\| ${row} \\| [\\d.]+ ms \\([\\d.]+–[\\d.]+\\) \\| [\\d.]+ ms`), `no row for ${row}`);
  }
  assert.match(r.stdout, /300 users; 1 interleaved rounds of 5 sequential/);
});
