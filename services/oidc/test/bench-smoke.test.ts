import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, runCommand } from '@hearth/testkit';

// The bench must not rot: with two clients and a few codes it measures the machine's ceilings,
// runs every phase against one daemon and prints its table (no figures are judged here).
test('npm run bench:oidc runs every phase briefly and prints its table', async () => {
  const r = await runCommand(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'services/oidc/bench/oidc.bench.ts')], {
    env: { OIDC_BENCH_CLIENTS: '2', OIDC_BENCH_SECONDS: '1', OIDC_BENCH_CODES: '20', OIDC_BENCH_WORKERS: '1', OIDC_BENCH_WRITE: '0' },
    timeoutMs: 180_000,
  });
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  for (const row of ['code exchange, RS256 ID token', 'code exchange, EdDSA ID token', 'refresh grant, rotating, RS256', 'userinfo', 'complete login: form \\+ password \\+ code \\+ token']) {
    assert.match(r.stdout, new RegExp(`\\| ${row} \\(1 worker\\) \\| [\\d,]+ \\| [\\d.,]+ / [\\d.,]+ \\| 0 \\|`), `no row for ${row}`);
  }
});
