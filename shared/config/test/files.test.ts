import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { writeFileOnce } from '../src/index.ts';

const run = promisify(execFile);
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-config-files-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

describe('writeFileOnce', () => {
  it('creates the file 0600 in a 0700 folder, then keeps the first contents', () => {
    const file = path.join(root, 'one', 'secret.key');
    assert.equal(writeFileOnce(file, 'first\n'), 'first\n');
    assert.equal(writeFileOnce(file, 'second\n'), 'first\n');
    assert.equal(fs.readFileSync(file, 'utf8'), 'first\n');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['secret.key']);
  });

  it('processes racing to create the same file all get the same contents', async () => {
    const file = path.join(root, 'race', 'secret.key');
    const code = `import { writeFileOnce } from ${JSON.stringify(path.resolve(import.meta.dirname, '../src/files.ts'))};
      process.stdout.write(writeFileOnce(${JSON.stringify(file)}, 'key-' + process.pid));`;
    const outs = await Promise.all(Array.from({ length: 6 }, () => run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { timeout: 30_000 })));
    const got = new Set(outs.map((o) => o.stdout));
    assert.equal(got.size, 1);
    assert.match([...got][0]!, /^key-\d+$/);
    assert.equal(fs.readFileSync(file, 'utf8'), [...got][0]);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['secret.key']);
  });
});
