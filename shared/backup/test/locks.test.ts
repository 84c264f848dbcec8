import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { tempDir } from '@hearth/testkit';
import { Restic } from '../src/restic.ts';

/**
 * Two restic commands at once on one repository (a prune from the console while a page lists the snapshots,
 * a verify while the daily backup runs, another replica's CLI): restic 0.14 refuses the second at once with
 * "repository is already locked". A listing takes no lock; a command that needs one waits for the other.
 */

let dir: string;
let restic: Restic;
const env = (): NodeJS.ProcessEnv => ({ ...process.env, RESTIC_REPOSITORY: path.join(dir, 'repo'), RESTIC_PASSWORD_FILE: path.join(dir, 'pw') });

/** A real `restic backup` that holds its (shared) lock while its stdin stays open. */
function slowBackup(): { done: Promise<number | null>; end: () => void } {
  const child = spawn('restic', ['backup', '--stdin', '--stdin-filename', 'slow.txt', '--tag', 'hearth'], { env: env(), stdio: ['pipe', 'ignore', 'ignore'] });
  child.stdin.write('held open\n');
  return { done: new Promise((r) => child.once('close', r)), end: () => child.stdin.end() };
}

/** restic's own view: the lock files in the repository */
const locks = (): string[] => fs.readdirSync(path.join(dir, 'repo', 'locks'));

before(() => {
  dir = tempDir('hearth-restic-locks-');
  fs.writeFileSync(path.join(dir, 'pw'), 'lock-test-password\n', { mode: 0o600 });
  assert.equal(spawnSync('restic', ['init'], { env: env() }).status, 0);
  restic = new Restic({ repository: path.join(dir, 'repo'), passwordFile: path.join(dir, 'pw'), schedule: null, keep: { daily: 1, weekly: 0, monthly: 0 }, resticBin: 'restic' }, path.join(dir, 'cache'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

it('a prune started while a backup holds its lock waits for it and then prunes; a listing meanwhile takes no lock', async () => {
  const first = slowBackup();
  first.end();
  assert.equal(await first.done, 0);
  const held = slowBackup();
  // the backup's lock is in the repository before the prune starts
  for (let i = 0; i < 200 && locks().length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(locks().length, 1);
  // restic itself refuses an exclusive command now
  const refused = spawnSync('restic', ['forget', '--prune', '--keep-last', '1'], { env: env(), encoding: 'utf8' });
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /repository is already locked by PID \d+/);

  const prune = restic.run(['forget', '--prune', '--keep-last', '1'], { action: 'prune' });
  const listed = await restic.snapshots();
  assert.equal(listed.length, 1, 'the listing answers while the backup runs');
  assert.equal(locks().length, 1, 'the listing left no lock of its own');
  held.end();
  assert.equal(await held.done, 0);
  await prune;
  const left = await restic.snapshots();
  assert.equal(left.length, 1, 'the prune ran after the backup: one snapshot kept of two');
  assert.deepEqual(locks(), []);
});
