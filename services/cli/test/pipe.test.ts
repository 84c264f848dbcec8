import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Directory } from '@hearth/directory';
import { HEARTH_SOURCE_ARGS, runCommand, testEnv, type TestEnv } from '@hearth/testkit';

const USERS = 1500;

// A pipe holds 64 KiB; beyond that the CLI's writes wait for the reader, and exiting early used to cut them off.
describe('hearth output through a pipe to a slow reader', () => {
  let t: TestEnv;
  before(async () => {
    t = await testEnv();
    const d = await Directory.open(t.config);
    const first = await d.addUser({ username: 'seed', email: 'seed@example.test', password: 'correct horse' });
    for (let i = 0; i < USERS; i++) await d.store.createUser({ ...first, id: `uid-pipe-${i}`, username: `user${i}`, email: `user${i}@example.test`, displayName: `User Number ${i}` });
    await d.close();
  });
  after(() => t.cleanup());

  const throughPipe = (args: string): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    runCommand('bash', ['-c', `"$NODE" $HEARTH ${args} | { sleep 1; cat; }; echo "hearth exited $\{PIPESTATUS[0]}" >&2`], {
      env: { ...t.env, NODE: process.execPath, HEARTH: HEARTH_SOURCE_ARGS.join(' ') },
    });

  it('user list --json arrives whole (hundreds of KiB)', async () => {
    const r = await throughPipe('user list --json');
    assert.match(r.stderr, /hearth exited 0/);
    assert.ok(r.stdout.length > 256 * 1024, `only ${r.stdout.length} bytes`);
    const users = JSON.parse(r.stdout) as { username: string }[];
    assert.equal(users.length, USERS + 1);
    assert.equal(users.filter((u) => /^user\d+$/.test(u.username)).length, USERS);
  });

  it('the table arrives whole too', async () => {
    const r = await throughPipe('user list');
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, USERS + 2, `header + ${USERS + 1} rows`);
    assert.ok(lines.at(-1)!.length > 0);
  });
});
