import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, runCommand } from '@hearth/testkit';

// The bench must not rot: with tiny sizes it starts both servers, checks they answer alike,
// runs one round of every figure against each and prints its table (no figures are judged here).
test('npm run bench:imap runs one tiny round against Hearth and Dovecot and prints its table', async () => {
  const r = await runCommand(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'services/imap/bench/imap.bench.ts')], {
    env: { IMAP_BENCH_MESSAGES: '120', IMAP_BENCH_CLIENTS: '2', IMAP_BENCH_ROUNDS: '1', IMAP_BENCH_SCALE: '0.02', IMAP_BENCH_WRITE: '0' },
    timeoutMs: 180_000,
  });
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  for (const figure of ['logins/s', 'SELECT INBOX, 1 client', 'FETCH 1:* (UID FLAGS RFC822.SIZE)', 'FETCH 1,000 full bodies', 'SEARCH UNSEEN', 'SORT (SUBJECT) UTF-8 ALL', 'THREAD REFERENCES UTF-8 ALL']) {
    assert.match(r.stdout, new RegExp(`\\| ${figure.replace(/[()*,/]/g, '\\$&')}[^\\n]*\\| \\*\\*[\\d.]+×\\*\\* \\(`), `no row for ${figure}`);
  }
  assert.match(r.stderr, /Hearth: 120 messages, \d+ SUBJECT hits, \d+ UNSEEN/);
});
