/**
 * npm run bench:runtime — the app runtime next to the floor, `docker` by hand, on the same
 * engine and image in the same run:
 *   install → healthy: `hearth app install --image` until GET healthCheckPath answers, vs
 *                      `docker run -d` (same read-only root, volumes, bind, memory) until it answers;
 *   restart → healthy: `hearth app restart` vs `docker restart`;
 *   task start delay:  the scheduler's tick for a due minute until the task container has started,
 *                      vs `docker run -d` of the same `sh -c` command until it has started.
 * Rounds interleave Hearth and docker (testkit's interleave) so load on the machine hits both alike; the ratio
 * is the median and range of the per-round ratios. A failed round is named and the bench exits 1.
 * Knobs: RUNTIME_BENCH_ROUNDS (default 5), RUNTIME_BENCH_WRITE=0.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '@hearth/log';
import { AppRuntime, runtimeApp, runtimeSettings, Scheduler } from '@hearth/runtime';
import { appTestEnv, docker, dockerEnv, formatRatio, freePort, hearth, interleave, parseEnvLines, spread, treeCpuSeconds, waitFor, recordBenchmark, type RoundResult } from '@hearth/testkit';

const ROUNDS = Number(process.env.RUNTIME_BENCH_ROUNDS ?? 5);
/** BENCHMARKS.md is rewritten only from a run of ≥ 3 rounds without failures (RUNTIME_BENCH_WRITE=0 never). */
const WRITE = process.env.RUNTIME_BENCH_WRITE !== '0' && ROUNDS >= 3;

/** A timed step: wall milliseconds and client CPU-seconds. */
interface Step {
  ms: number;
  cpu: number;
}

interface Lifecycle {
  install: Step;
  restart: Step;
  cli: Step;
}
const log = (line: string): void => void process.stdout.write(line + '\n');

const answers = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/healthz', timeout: 1000 }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) < 400);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });

async function timed(start: () => Promise<unknown> | unknown, done: () => Promise<boolean> | boolean): Promise<number> {
  const t0 = performance.now();
  await start();
  await waitFor(done, 60_000, 10);
  return performance.now() - t0;
}

/** Cleanup after a run, whether or not the run got as far as creating what it removes. */
const removeQuietly = (args: string[]): void => void spawnSync('docker', args, { env: { ...process.env, ...dockerEnv() }, stdio: 'ignore' });

const startedAt = (container: string): number => Date.parse(JSON.parse(docker(['inspect', container]))[0].State.StartedAt);

async function main(): Promise<void> {
  const loadStart = os.loadavg()[0]!.toFixed(1);
  const port = await freePort();
  const id = `bench${Date.now().toString(36)}`;
  const t = await appTestEnv(id, {
    imageEnv: { HTTP_PORT: String(port) },
    cmd: 'mkdir -p /tmp/www && echo ok > /tmp/www/healthz && exec httpd -f -p 127.0.0.1:$HTTP_PORT -h /tmp/www',
  });
  const manifest = path.join(t.dataDir, 'app.json');
  fs.writeFileSync(manifest, JSON.stringify({ httpPort: port, healthCheckPath: '/healthz', memoryLimit: 128 * 1024 * 1024, addons: { ldap: {}, localstorage: {} } }));
  const hand = `hearth-bench-hand-${id}`;
  const handData = path.join(t.dataDir, 'hand-data');
  fs.mkdirSync(handData);
  const handRun = (): string =>
    docker(['run', '-d', '--name', hand, '--network', 'host', '--read-only', '--init', '--memory', '128m', '--memory-swap', '128m', '-v', `${hand}-tmp:/tmp`, '-v', `${hand}-run:/run`, '-v', `${handData}:/app/data`, '--label', `hearth.app=${id}`, t.image]);
  /** one timed step: milliseconds, and the CPU-seconds of this process's tree over it (the CLI processes it ran, reaped, included) */
  const step = async (start: () => Promise<unknown> | unknown, done: () => Promise<boolean> | boolean): Promise<Step> => {
    const cpu0 = treeCpuSeconds(process.pid);
    const ms = await timed(start, done);
    return { ms, cpu: treeCpuSeconds(process.pid) - cpu0 };
  };
  const cli = async (args: string[]): Promise<void> => {
    const r = await hearth(args, { env: t.env });
    if (r.code !== 0) throw new Error(`hearth ${args.slice(0, 2).join(' ')}: ${r.stderr.trim().slice(-300)}`);
  };
  let lifecycle: RoundResult<Lifecycle>[][] = [];
  let tasks: RoundResult<Step>[][] = [];
  try {
    lifecycle = await interleave<Lifecycle>(
      [
        {
          name: 'hearth',
          run: async () => {
            const install = await step(() => cli(['app', 'install', manifest, '--id', id, '--domain', `${id}.example.test`, '--image', t.image]), () => answers(port));
            try {
              const restart = await step(() => cli(['app', 'restart', id]), () => answers(port));
              // What any hearth command costs before it does anything: Node, tsx, settings, the store.
              const show = await step(() => cli(['app', 'show', id]), () => true);
              return { install, restart, cli: show };
            } finally {
              await hearth(['app', 'uninstall', id], { env: t.env });
            }
          },
        },
        {
          name: 'docker',
          run: async () => {
            try {
              const install = await step(handRun, () => answers(port));
              const restart = await step(() => docker(['restart', '-t', '10', hand]), () => answers(port));
              const inspect = await step(() => docker(['inspect', '--format', '{{.Id}}', hand]), () => true);
              return { install, restart, cli: inspect };
            } finally {
              removeQuietly(['rm', '-f', '-v', hand]);
              removeQuietly(['volume', 'rm', `${hand}-tmp`, `${hand}-run`]);
            }
          },
        },
      ],
      ROUNDS,
      log,
    );
    for (const row of lifecycle) if (row.every((r) => r.result)) log(`round ${row[0]!.round}/${ROUNDS}: install ${row.map((r) => r.result!.install.ms.toFixed(0)).join(' / ')} ms, restart ${row.map((r) => r.result!.restart.ms.toFixed(0)).join(' / ')} ms (Hearth / docker)`);

    // Scheduler: one app with a task due every minute; each tick is a distinct minute, as the timer would give.
    fs.writeFileSync(manifest, JSON.stringify({ httpPort: port, addons: { localstorage: {}, scheduler: { tick: { schedule: '* * * * *', command: 'true' } } } }));
    await cli(['app', 'install', manifest, '--id', id, '--domain', `${id}.example.test`, '--image', t.image]);
    const runtime = new AppRuntime(t.config, runtimeSettings(t.env));
    const env = Object.entries(parseEnvLines((await hearth(['app', 'env', id], { env: t.env })).stdout));
    const app = runtimeApp({ id, domain: `${id}.example.test`, manifest: { dockerImage: t.image, httpPort: port, addons: { scheduler: {} } } }, env)!;
    const scheduler = new Scheduler(runtime, () => [{ app, tasks: [{ name: 'tick', schedule: '* * * * *', command: 'true' }] }], createLogger('bench', 'warn'), 1800);
    const base = Math.floor(Date.now() / 60_000) * 60_000 - 3600_000;
    tasks = await interleave<Step>(
      [
        {
          name: 'hearth',
          run: async (round) => {
            const due = new Date(base + round * 60_000);
            const cpu0 = treeCpuSeconds(process.pid);
            const t0 = Date.now();
            await scheduler.tick(due);
            scheduler.close();
            const name = `hearth-task-${id}-tick-${due.toISOString().slice(0, 16).replace(/[-:T]/g, '')}`;
            return { ms: startedAt(name) - t0, cpu: treeCpuSeconds(process.pid) - cpu0 };
          },
        },
        {
          name: 'docker',
          run: async () => {
            const cpu0 = treeCpuSeconds(process.pid);
            const t1 = Date.now();
            try {
              docker(['run', '-d', '--name', `${hand}-task`, '--network', 'host', '--read-only', '--init', '-v', `${hand}-tmp:/tmp`, '-v', `${hand}-run:/run`, '--entrypoint', 'sh', t.image, '-c', 'true']);
              return { ms: startedAt(`${hand}-task`) - t1, cpu: treeCpuSeconds(process.pid) - cpu0 };
            } finally {
              removeQuietly(['rm', '-f', '-v', `${hand}-task`]);
            }
          },
        },
      ],
      ROUNDS,
      log,
    );
    removeQuietly(['volume', 'rm', `${hand}-tmp`, `${hand}-run`]);
    await hearth(['app', 'uninstall', id], { env: t.env });
  } finally {
    await t.cleanup();
  }

  const failed = [...lifecycle.flat().map((r) => ({ r, figure: 'install, restart, CLI command' })), ...tasks.flat().map((r) => ({ r, figure: 'scheduler task start delay' }))].filter(({ r }) => r.error);
  const steps = (k: keyof Lifecycle): RoundResult<Step>[][] => lifecycle.filter((row) => row.every((r) => r.result)).map((row) => row.map((r) => ({ ...r, result: r.result![k] })));
  const cell = (rows: RoundResult<Step>[][], i: number): string => {
    const ms = rows.map((row) => row[i]!.result!.ms);
    return `${(spread(ms)?.median ?? NaN).toFixed(0)} / ${Math.max(...ms).toFixed(0)}`;
  };
  const cpuMs = (rows: RoundResult<Step>[][], i: number): string => ((spread(rows.map((row) => row[i]!.result!.cpu))?.median ?? NaN) * 1000).toFixed(0);
  const row = (what: string, rows: RoundResult<Step>[][]): string =>
    `| ${what} | ${cell(rows, 0)} | ${cell(rows, 1)} | **${formatRatio(spread(rows.map((r) => r[0]!.result!.ms / r[1]!.result!.ms)))}** | ${cpuMs(rows, 0)} / ${cpuMs(rows, 1)} |`;
  const okTasks = tasks.filter((r) => r.every((x) => x.result));
  const dockerVersion = docker(['version', '--format', '{{.Server.Version}}']).trim();
  const body = [
    `Run ${new Date().toISOString().slice(0, 10)} on ${os.cpus().length} cores (\`nproc\` = ${os.availableParallelism()}), Node ${process.version}, ${os.cpus()[0]?.model.trim() ?? ''}; Docker ${dockerVersion} (vfs storage, host network).`,
    `${ROUNDS} rounds interleaved (Hearth, \`docker\` by hand, Hearth, …), same busybox-static image (httpd), same read-only root, /tmp and /run volumes, /app/data bind, memory limit and docker-init.`,
    `"install → healthy" runs the real \`hearth app install --image\` (a CLI process: Node start, store, addon provisioning, then the Engine API) until GET /healthz answers;`,
    `the floor is \`docker run -d\` until the same answer. "task start delay" is from the scheduler's tick for a due minute to the task container's StartedAt, next to \`docker run -d\` of the same \`sh -c\` command`,
    `(in the daemon the tick fires 50 ms after the minute starts). 1-minute load average at start / end: ${loadStart} / ${os.loadavg()[0]!.toFixed(1)} (other helpers share the machine).`,
    '',
    '| measure (ms, median / max) | Hearth | docker by hand | Hearth / docker: median (range) of per-round ratios | client CPU ms, Hearth / docker |',
    '|---|---|---|---|---|',
    row('install → healthy', steps('install')),
    row('restart → healthy', steps('restart')),
    row('scheduler task start delay', okTasks),
    row('one CLI command (`hearth app show` / `docker inspect`)', steps('cli')),
    '',
    'Most of Hearth\'s install and restart time is the CLI process itself (last row: Node and tsx compiling the CLI on every call);',
    'the Engine API calls behind it are the same ones `docker run` and `docker restart` make, and the scheduler (a running daemon, no CLI) stays near the floor.',
    'Client CPU: user + system time of the processes this bench ran for the step (the `hearth` CLI or the `docker` CLI, and the bench\'s own polling; the scheduler runs in the bench process), median of the rounds; dockerd\'s work, shared with other users of the engine, is not counted on either side.',
  ].join('\n');
  log('\n' + body);
  recordBenchmark(
    'App runtime',
    body,
    failed.map(({ r, figure }) => `${figure}, ${r.side}, round ${r.round}: ${r.error!.message}`),
    WRITE,
  );
}

try {
  await main();
} catch (err) {
  log(`runtime bench FAILED: ${(err as Error).message}`);
  process.exitCode = 1;
}
