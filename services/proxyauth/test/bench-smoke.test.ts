import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, runCommand } from '@hearth/testkit';

// The bench must not rot: with tiny durations it starts the upstream, the bare proxy and the gateway,
// runs one round against each and prints its table (no figures are judged here).
test('npm run bench:proxyauth runs one tiny round through the gateway, the bare proxy and directly and prints its table', async () => {
  const r = await runCommand(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'services/proxyauth/bench/proxyauth.bench.ts')], {
    env: { PROXYAUTH_BENCH_ROUNDS: '1', PROXYAUTH_BENCH_SECONDS: '3', PROXYAUTH_BENCH_LATENCY_SECONDS: '1', PROXYAUTH_BENCH_WRITE: '0' },
    timeoutMs: 180_000,
  });
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  for (const target of ['through the gateway', 'through a bare 10-line node proxy', 'upstream directly']) {
    assert.match(r.stdout, new RegExp(`\\| ${target}[^\\n]*\\| [\\d,]+ \\| [\\d.]+ / [\\d.]+ \\| [\\d.]+ / [\\d.]+ \\| [\\d.]+ / [\\d.]+ \\| [\\d.]+ \\|`), `no row for ${target}`);
  }
  assert.match(r.stdout, /Gateway \/ bare node proxy: \*\*[\d.]+×\*\* \([\d.]+–[\d.]+\); gateway \/ direct: \*\*[\d.]+×\*\*/);
  assert.match(r.stderr, /round 1: gateway \d+ req\/s, bare node proxy \d+ req\/s, direct \d+ req\/s/);
});
