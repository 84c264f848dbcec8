import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, it } from 'node:test';
import { createLogger } from '@hearth/log';
import { REPO_ROOT, waitFor } from '@hearth/testkit';
import { SupervisedChild } from '../src/child.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-young-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

it('a daemon thread runs with the young-generation limit it was given', async () => {
  // the thread reports the limits V8 applies to it, then waits to be stopped like a daemon
  const entry = path.join(dir, 'report.mjs');
  const report = path.join(dir, 'limits.json');
  fs.writeFileSync(
    entry,
    `import fs from 'node:fs'; import { resourceLimits, parentPort } from 'node:worker_threads';
     fs.writeFileSync(${JSON.stringify(report)}, JSON.stringify(resourceLimits));
     parentPort.on('message', () => process.exit(0));`,
  );
  const child = new SupervisedChild({ name: 'report', command: process.execPath, args: [], env: process.env, threadEntry: entry, youngGenerationMb: 6, logger: createLogger('test', 'silent') });
  child.start();
  try {
    await waitFor(() => fs.existsSync(report), 30_000, 50);
    assert.equal((JSON.parse(fs.readFileSync(report, 'utf8')) as { maxYoungGenerationSizeMb: number }).maxYoungGenerationSizeMb, 6);
  } finally {
    await child.stop();
  }
});

it('a setting that is not a size in range stops the start with one line naming it', () => {
  for (const value of ['abc', '2', '4.5', '1000']) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'services/supervisor/src/main.ts'], {
      cwd: REPO_ROOT,
      env: { ...process.env, HEARTH_DATA_DIR: path.join(dir, 'data'), HEARTH_DAEMON_YOUNG_GENERATION_MB: value },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr, `hearth: HEARTH_DAEMON_YOUNG_GENERATION_MB must be a whole number of MiB from 3 to 256, not "${value}"\n`);
  }
});
