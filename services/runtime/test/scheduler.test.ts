import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { appTestEnv, docker, hearth, startDaemon, waitFor, type AppTestEnv, type Daemon } from '@hearth/testkit';

const DAEMON = 'services/runtime/src/main.ts';

/** The scheduler addon on the real engine: two runtime daemons at once, a restart between runs, the grace rule at 5 s. */
describe('scheduler addon', () => {
  let t: AppTestEnv;
  let env: Record<string, string>;
  let image: string;
  const id = `sch${Date.now().toString(36)}`;
  const labelled = (...labels: string[]): string[] => docker(['ps', '-a', '-q', ...[`hearth.app=${id}`, ...labels].flatMap((l) => ['--filter', `label=${l}`])]).split('\n').filter(Boolean);
  const write = (name: string, manifest: object): string => {
    const file = path.join(t.dataDir, name);
    fs.writeFileSync(file, JSON.stringify(manifest));
    return file;
  };
  const ticks = (): string[] => {
    try {
      return fs.readFileSync(path.join(t.dataDir, 'apps', id, 'data', 'ticks'), 'utf8').trim().split('\n');
    } catch {
      return [];
    }
  };

  before(async () => {
    t = await appTestEnv(id, { cmd: 'echo from-app > /tmp/app-marker && exec sleep 100000', env: { HEARTH_SCHEDULER_GRACE_SECONDS: '5', HEARTH_LOG_LEVEL: 'info' } });
    ({ env, image } = t);
  });
  after(() => t.cleanup());

  it('refuses schedules outside the seed\'s ranges and unknown task fields by name, creating nothing', async () => {
    const cases: [object, RegExp][] = [
      [{ t: { schedule: '0 0 1 12 *', command: 'true' } }, /^hearth: invalid scheduler addon option\.t\.schedule: month 12 is out of range 0-11$/],
      [{ t: { schedule: '60 * * * *', command: 'true' } }, /^hearth: invalid scheduler addon option\.t\.schedule: minute 60 is out of range 0-59$/],
      [{ t: { schedule: '*/5 * * * * *', command: 'true' } }, /option\.t\.schedule: schedule "\*\/5 \* \* \* \* \*" has 6 fields: seconds are not supported/],
      [{ t: { schedule: '* * * * *', command: 'true', user: 'root' } }, /^hearth: invalid scheduler addon option\.t: unknown option user$/],
      [{ t: { schedule: '* * * * *' } }, /option\.t\.command/],
      [{ 'bad name!': { schedule: '* * * * *', command: 'true' } }, /task names are 1-64 letters/],
    ];
    for (const [tasks, message] of cases) {
      const file = write('bad.json', { addons: { scheduler: tasks, localstorage: {} } });
      const r = await hearth(['app', 'install', file, '--id', id, '--domain', `${id}.example.test`, '--image', image], { env });
      assert.equal(r.code, 1, JSON.stringify(tasks));
      assert.match(r.stderr.trim(), message);
    }
    const noImage = write('noimage.json', { addons: { scheduler: { t: { schedule: '* * * * *', command: 'true' } } } });
    const r = await hearth(['app', 'install', noImage, '--id', id, '--domain', `${id}.example.test`], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the scheduler addon runs tasks in the app's image: install the app with --image/);
    assert.deepEqual(labelled(), []);
    assert.equal(fs.existsSync(path.join(t.dataDir, 'apps', id)), false);
    assert.match((await hearth(['app', 'show', id], { env })).stderr, /no such app/);
  });

  it('runs due tasks once per minute in the app\'s env, /tmp and /app/data; runs outlive a restart; the grace rule kills a long run', { timeout: 240_000 }, async () => {
    const manifest = write('app.json', {
      addons: {
        localstorage: {},
        scheduler: {
          writer: { schedule: '*/1 * * * *', command: 'echo "$(cat /tmp/app-marker) $CLOUDRON_APP_DOMAIN" >> /app/data/ticks; echo writer-ran' },
          long: { schedule: '* * * * *', command: 'echo long-start; exec sleep 600' },
        },
      },
    });
    const r = await hearth(['app', 'install', manifest, '--id', id, '--domain', `${id}.example.test`, '--image', image], { env });
    assert.equal(r.code, 0, r.stderr);
    // Two schedulers at once (e.g. a restart overlapping the old process): each due minute still runs once.
    const ready = (out: string): boolean => out.includes('"msg":"ready"');
    let daemons: Daemon[] = await Promise.all([startDaemon(DAEMON, env, ready, 60000), startDaemon(DAEMON, env, ready, 60000)]);
    try {
      await waitFor(() => ticks().length >= 1, 80_000, 500);
      const firstLong = (await waitFor(() => labelled('hearth.task=long')[0], 20_000, 250))!;
      await new Promise((res) => setTimeout(res, 2000));
      assert.deepEqual(ticks(), [`from-app ${id}.example.test`]);
      assert.equal(labelled('hearth.task=writer').length, 1);
      assert.equal(labelled('hearth.task=long').length, 1);

      // Hearth stops; the long run goes on; a new scheduler takes over for the next minute.
      await Promise.all(daemons.map((d) => d.stop()));
      assert.equal(JSON.parse(docker(['inspect', firstLong]))[0].State.Running, true);
      daemons = [await startDaemon(DAEMON, env, ready, 60000)];
      await waitFor(() => ticks().length >= 2, 80_000, 500);
      await waitFor(() => labelled('hearth.task=long').length === 2, 20_000, 250);
      const killed = JSON.parse(docker(['inspect', firstLong]))[0].State;
      assert.equal(killed.Running, false);
      assert.equal(killed.ExitCode, 137, 'killed (SIGKILL) by the grace rule');
      await waitFor(() => daemons[0]!.output().includes('killed the previous run, still going after its grace period'), 5000);
      await new Promise((res) => setTimeout(res, 2000));
      assert.equal(ticks().length, 2, ticks().join('|'));

      const status = JSON.parse((await hearth(['app', 'status', id, '--json'], { env })).stdout);
      const byName = Object.fromEntries(status.tasks.map((x: { name: string }) => [x.name, x]));
      assert.equal(byName.writer.schedule, '*/1 * * * *');
      assert.equal(byName.writer.lastRun.exitCode, 0);
      assert.equal(byName.writer.lastRun.state, 'exited');
      assert.equal(byName.long.lastRun.state, 'running');
      assert.ok(new Date(byName.long.lastRun.due) > new Date(byName.writer.lastRun.due) || byName.long.lastRun.due === byName.writer.lastRun.due);
      const logs = await hearth(['app', 'logs', id, '--task', 'writer'], { env });
      assert.equal(logs.stdout, 'writer-ran\n');
      assert.equal((await hearth(['app', 'logs', id, '--task', 'long'], { env })).stdout, 'long-start\n');
      assert.match((await hearth(['app', 'logs', id, '--task', 'nope'], { env })).stderr, /has no task nope/);
      const table = (await hearth(['app', 'status', id], { env })).stdout;
      assert.match(table, /^writer\s+\*\/1 \* \* \* \*\s+\S+\s+exited\s+0$/m);
    } finally {
      await Promise.all(daemons.map((d) => d.stop()));
    }
    // Uninstall takes the running task with it.
    assert.equal((await hearth(['app', 'uninstall', id], { env })).code, 0);
    assert.deepEqual(labelled(), []);
  });
});
