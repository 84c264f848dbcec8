import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, runCommand } from '@hearth/testkit';

// The bench must not rot: with tiny sizes and a cheap hash it starts Hearth and slapd, runs one
// round of searches and of binds against each and prints its table (no figures are judged here).
test('npm run bench:ldap runs one tiny round against Hearth and slapd and prints its table', async () => {
  const r = await runCommand(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'services/ldap/bench/ldap.bench.ts')], {
    env: {
      LDAP_BENCH_USERS: '200',
      LDAP_BENCH_CONNECTIONS: '4',
      LDAP_BENCH_ROUNDS: '1',
      LDAP_BENCH_BIND_ROUNDS: '1',
      LDAP_BENCH_SECONDS: '0.5',
      LDAP_BENCH_BIND_SECONDS: '0.5',
      LDAP_BENCH_WARMUP_SECONDS: '0.2',
      LDAP_BENCH_ARGON2_MEMORY_KIB: '1024',
      LDAP_BENCH_ARGON2_TIME_COST: '1',
      LDAP_BENCH_WRITE: '0',
    },
    timeoutMs: 120_000,
  });
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  for (const figure of ['searches/s', 'binds/s \\(argon2, (\\d+) at once\\)']) {
    assert.match(r.stdout, new RegExp(`\\| ${figure} \\| [\\d,.]+ \\| [\\d,.]+ \\| \\*\\*[\\d.]+× \\(`), `no row for ${figure}`);
  }
  // binds at equal concurrency: slapd's thread count is Hearth's number of verifications at once
  const atOnce = /binds\/s \(argon2, (\d+) at once\)/.exec(r.stdout)?.[1];
  assert.match(r.stdout, new RegExp(`slapd runs with \`threads ${atOnce}\``));
});
