import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, runCommand } from '@hearth/testkit';

// The bench must not rot: with two clients, a few codes and one round it measures the machine's ceilings,
// runs every phase against Hearth and the bare node-oidc-provider and prints its table (no figures are judged here).
test('npm run bench:oidc runs one brief round against Hearth and the reference and prints its table', async () => {
  const r = await runCommand(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'services/oidc/bench/oidc.bench.ts')], {
    env: { OIDC_BENCH_ROUNDS: '1', OIDC_BENCH_CLIENTS: '2', OIDC_BENCH_SECONDS: '1', OIDC_BENCH_CODES: '20', OIDC_BENCH_WRITE: '0' },
    timeoutMs: 240_000,
  });
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  for (const row of ['code exchange, RS256 ID token', 'code exchange, EdDSA ID token', 'refresh grant, rotating, RS256', 'userinfo']) {
    assert.match(r.stdout, new RegExp(`\\| ${row} \\| [\\d,]+ \\| [\\d,]+ \\| \\*\\*[\\d.]+× \\([\\d.]+–[\\d.]+×, 1 round\\)\\*\\* \\|`), `no row for ${row}`);
  }
  assert.match(r.stdout, /Complete logins on Hearth alone [^\n]*: [\d.,]+\/s/);
});
