import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { runningProcesses } from '@hearth/config';
import { appContainerName } from '@hearth/runtime';
import { busyboxImage, derivedImage, docker, dockerEnv, freePort, removeAppLeftovers, requireDocker, startDaemon, waitFor, type Daemon } from '@hearth/testkit';
import { backupStack, type BackupStack } from './helpers.ts';

/**
 * Restores while `npm start` runs: the whole platform is refused with one line naming what runs;
 * one app is restored, its container stopped and started again so that it sees the restored
 * /app/data (a bind mount would keep showing the folder swapped out), the rest left running.
 */

let s: BackupStack;
let image: string;
let stack: Daemon | null = null;
const APP = `rs${Date.now().toString(36)}`;
const page = (): string => path.join(s.t.dataDir, 'apps', APP, 'data', 'page.txt');
const inContainer = (): string => docker(['exec', appContainerName(APP), 'cat', '/app/data/page.txt']);

before(async () => {
  requireDocker();
  image = derivedImage(busyboxImage(), { cmd: 'exec sleep 3600' });
  s = await backupStack({ ...dockerEnv(), HEARTH_LDAP_PORT: String(await freePort()), HEARTH_LDAPS_PORT: String(await freePort()) });
  const manifest = path.join(s.t.dataDir, '..', `${APP}-manifest.json`);
  fs.writeFileSync(manifest, JSON.stringify({ title: 'Shop', version: '1.0.0', manifestVersion: 2, httpPort: 8000, addons: { localstorage: {} } }));
  await s.ok(['app', 'install', manifest, '--id', APP, '--domain', `${APP}.example.test`, '--image', image]);
  fs.writeFileSync(page(), 'version 1\n');
  await s.ok(['backup', 'create']);
  fs.writeFileSync(page(), 'version 2\n');
  // npm start with one daemon beside it, enough to hold the data dir
  stack = await startDaemon('services/supervisor/src/main.ts', { ...s.env, HEARTH_SERVICES: 'ldap' }, (o) => o.includes('Manage users and apps'));
  await waitFor(async () => runningProcesses(s.t.dataDir).some((p) => p.name === 'ldap'), 60_000);
});

after(async () => {
  await stack?.stop();
  await s?.cleanup();
  removeAppLeftovers(APP);
  if (image) docker(['rmi', image]);
});

it('a platform restore while npm start runs is refused with one line naming what runs, and changes nothing', async () => {
  const r = await s.cli(['backup', 'restore', 'latest']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^hearth: the platform cannot be restored while Hearth runs on .+: stop (?=.*npm start \(process \d+\))(?=.*ldap \(process \d+\)).* first \(one app can be restored while it runs: --app <id>\)$/m);
  assert.equal(fs.readFileSync(page(), 'utf8'), 'version 2\n');
});

it("one app is restored while npm start runs: its container is stopped, then started on the restored /app/data", async () => {
  assert.equal(inContainer(), 'version 2\n');
  const startedBefore = docker(['inspect', '-f', '{{.State.StartedAt}}', appContainerName(APP)]).trim();
  const out = await s.ok(['backup', 'restore', 'latest', '--app', APP]);
  assert.match(out, new RegExp(`data folder of app ${APP}`));
  assert.equal(fs.readFileSync(page(), 'utf8'), 'version 1\n');
  assert.equal(docker(['inspect', '-f', '{{.State.Running}}', appContainerName(APP)]).trim(), 'true');
  assert.notEqual(docker(['inspect', '-f', '{{.State.StartedAt}}', appContainerName(APP)]).trim(), startedBefore, 'the container was started again');
  assert.equal(inContainer(), 'version 1\n', 'the container sees the restored folder');
  // the rest of the stack kept running
  assert.ok(runningProcesses(s.t.dataDir).some((p) => p.name === 'ldap'));
  assert.equal(stack!.output().includes('"level":50'), false, stack!.output());
});
