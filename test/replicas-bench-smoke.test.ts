import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, runCommand } from '@hearth/testkit';

// The bench must not rot: with tiny sizes it starts both stacks and HAProxy, runs one round of 1 and
// 2 replicas, kills a stack under client loops and prints its tables (no figures are judged here).
test('npm run bench:replicas measures 1 and 2 replicas and a failover, and prints its tables', async () => {
  const r = await runCommand(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test/bench/replicas.bench.ts')], {
    env: { BENCH_ROUNDS: '1', BENCH_SECONDS: '1', BENCH_MESSAGES: '20', BENCH_CODES: '16', BENCH_FAILOVER_SECONDS: '8', BENCH_WRITE: '0' },
    timeoutMs: 900_000,
  });
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  for (const op of ['LDAP search', 'SMTP relay', 'OIDC code exchange']) {
    assert.match(r.stdout, new RegExp(`^\\| ${op} [^|]*: per second \\| \\d+ \\| \\d+ \\| [\\d.]+× \\(`, 'm'), `no rate row for ${op}`);
    assert.match(r.stdout, new RegExp(`^\\| ${op} [^|]* \\| [\\d.]+ \\| [\\d.]+ \\| \\d+ \\| [1-9]\\d* \\|$`, 'm'), `no failover row for ${op}`);
  }
  assert.match(r.stdout, /Coordination per relayed message: [\d.]+ queue statements .* with 1 replica, [\d.]+ with 2/);
});
