import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { MANIFESTS, REPO_ROOT } from '../src/index.ts';

// A plain clone must be able to run its own tests: every fixture they read is a tracked file of the repository.
describe('test fixtures', () => {
  const tracked = new Set(execFileSync('git', ['ls-files', '-z'], { cwd: REPO_ROOT, encoding: 'utf8' }).split('\0').filter(Boolean));

  it('MANIFESTS is a folder of tracked files inside the repository', () => {
    const relative = path.relative(REPO_ROOT, MANIFESTS);
    assert.ok(!relative.startsWith('..') && !path.isAbsolute(relative), `${MANIFESTS} is outside ${REPO_ROOT}`);
    const files = fs.readdirSync(MANIFESTS);
    assert.ok(files.length > 0);
    for (const f of files) assert.ok(tracked.has(path.posix.join(relative, f)), `${relative}/${f} is not tracked`);
  });

  it('no test or test helper reads from outside the repository', () => {
    for (const f of tracked) {
      if (!/(^|\/)(test|testkit\/src)\/.*\.ts$/.test(f)) continue;
      const text = fs.readFileSync(path.join(REPO_ROOT, f), 'utf8');
      assert.doesNotMatch(text, /['"`]\.\.\/shared\/fixtures|\/work\/shared/, f);
    }
  });
});
