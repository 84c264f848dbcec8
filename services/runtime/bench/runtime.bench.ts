/**
 * npm run bench:runtime — the app runtime next to the floor, `docker` by hand, on the same
 * engine and image in the same run:
 *   install → healthy: `hearth app install --image` until GET healthCheckPath answers, vs
 *                      `docker run -d` (same read-only root, volumes, bind, memory) until it answers;
 *   restart → healthy: `hearth app restart` vs `docker restart`;
 *   task start delay:  the scheduler's tick for a due minute until the task container has started,
 *                      vs `docker run -d` of the same `sh -c` command until it has started.
 * Rounds alternate Hearth and docker so load on the machine hits both alike.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '@hearth/log';
import { AppRuntime, runtimeApp, runtimeSettings, Scheduler } from '@hearth/runtime';
import { appTestEnv, docker, freePort, hearth, parseEnvLines, percentile, waitFor, writeBenchmarkSection } from '@hearth/testkit';

const ROUNDS = Number(process.env.RUNTIME_BENCH_ROUNDS ?? 5);
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
  const results = { install: [[], []], restart: [[], []], task: [[], []], cli: [[], []] } as Record<'install' | 'restart' | 'task' | 'cli', [number[], number[]]>;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      results.install[0].push(await timed(() => hearth(['app', 'install', manifest, '--id', id, '--domain', `${id}.example.test`, '--image', t.image], { env: t.env }), () => answers(port)));
      results.restart[0].push(await timed(() => hearth(['app', 'restart', id], { env: t.env }), () => answers(port)));
      // What any hearth command costs before it does anything: Node, tsx, settings, the store (and the docker CLI's own start).
      results.cli[0].push(await timed(() => hearth(['app', 'show', id], { env: t.env }), () => true));
      results.cli[1].push(await timed(() => docker(['inspect', '--format', '{{.Id}}', `hearth-app-${id}`]), () => true));
      await hearth(['app', 'uninstall', id], { env: t.env });
      results.install[1].push(await timed(handRun, () => answers(port)));
      results.restart[1].push(await timed(() => docker(['restart', '-t', '10', hand]), () => answers(port)));
      docker(['rm', '-f', '-v', hand]);
      docker(['volume', 'rm', `${hand}-tmp`, `${hand}-run`]);
      log(`round ${round + 1}/${ROUNDS}: install ${results.install[0].at(-1)!.toFixed(0)} / ${results.install[1].at(-1)!.toFixed(0)} ms, restart ${results.restart[0].at(-1)!.toFixed(0)} / ${results.restart[1].at(-1)!.toFixed(0)} ms (Hearth / docker)`);
    }

    // Scheduler: one app with a task due every minute; each tick is a distinct minute, as the timer would give.
    fs.writeFileSync(manifest, JSON.stringify({ httpPort: port, addons: { localstorage: {}, scheduler: { tick: { schedule: '* * * * *', command: 'true' } } } }));
    const r = await hearth(['app', 'install', manifest, '--id', id, '--domain', `${id}.example.test`, '--image', t.image], { env: t.env });
    if (r.code !== 0) throw new Error(r.stderr);
    const runtime = new AppRuntime(t.config, runtimeSettings(t.env));
    const env = Object.entries(parseEnvLines((await hearth(['app', 'env', id], { env: t.env })).stdout));
    const app = runtimeApp({ id, domain: `${id}.example.test`, manifest: { dockerImage: t.image, httpPort: port, addons: { scheduler: {} } } }, env)!;
    const scheduler = new Scheduler(runtime, () => [{ app, tasks: [{ name: 'tick', schedule: '* * * * *', command: 'true' }] }], createLogger('bench', 'warn'), 1800);
    const base = Math.floor(Date.now() / 60_000) * 60_000 - 3600_000;
    for (let round = 0; round < ROUNDS; round++) {
      const due = new Date(base + round * 60_000);
      const t0 = Date.now();
      await scheduler.tick(due);
      scheduler.close();
      const name = `hearth-task-${id}-tick-${due.toISOString().slice(0, 16).replace(/[-:T]/g, '')}`;
      results.task[0].push(startedAt(name) - t0);
      const t1 = Date.now();
      docker(['run', '-d', '--name', `${hand}-task`, '--network', 'host', '--read-only', '--init', '-v', `${hand}-tmp:/tmp`, '-v', `${hand}-run:/run`, '--entrypoint', 'sh', t.image, '-c', 'true']);
      results.task[1].push(startedAt(`${hand}-task`) - t1);
      docker(['rm', '-f', '-v', `${hand}-task`]);
    }
    docker(['volume', 'rm', `${hand}-tmp`, `${hand}-run`]);
    await hearth(['app', 'uninstall', id], { env: t.env });
  } finally {
    await t.cleanup();
  }

  const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
  const cell = (xs: number[]): string => `${percentile(sorted(xs), 50).toFixed(0)} / ${Math.max(...xs).toFixed(0)}`;
  const ratio = (a: number[], b: number[]): string => `${(percentile(sorted(a), 50) / percentile(sorted(b), 50)).toFixed(2)}×`;
  const row = (what: string, k: 'install' | 'restart' | 'task' | 'cli'): string => `| ${what} | ${cell(results[k][0])} | ${cell(results[k][1])} | ${ratio(results[k][0], results[k][1])} |`;
  const dockerVersion = docker(['version', '--format', '{{.Server.Version}}']).trim();
  const body = [
    `Run ${new Date().toISOString().slice(0, 10)} on ${os.cpus().length} cores (\`nproc\` = ${os.availableParallelism()}), Node ${process.version}, ${os.cpus()[0]?.model.trim() ?? ''}; Docker ${dockerVersion} (vfs storage, host network).`,
    `${ROUNDS} rounds, Hearth and \`docker\` by hand alternating, same busybox-static image (httpd), same read-only root, /tmp and /run volumes, /app/data bind, memory limit and docker-init.`,
    `"install → healthy" runs the real \`hearth app install --image\` (a CLI process: Node start, store, addon provisioning, then the Engine API) until GET /healthz answers;`,
    `the floor is \`docker run -d\` until the same answer. "task start delay" is from the scheduler's tick for a due minute to the task container's StartedAt, next to \`docker run -d\` of the same \`sh -c\` command`,
    `(in the daemon the tick fires 50 ms after the minute starts). 1-minute load average at start / end: ${loadStart} / ${os.loadavg()[0]!.toFixed(1)} (other helpers share the machine).`,
    '',
    '| measure (ms, median / max) | Hearth | docker by hand | Hearth / docker |',
    '|---|---|---|---|',
    row('install → healthy', 'install'),
    row('restart → healthy', 'restart'),
    row('scheduler task start delay', 'task'),
    row('one CLI command (`hearth app show` / `docker inspect`)', 'cli'),
    '',
    'Most of Hearth\'s install and restart time is the CLI process itself (last row: Node and tsx compiling the CLI on every call);',
    'the Engine API calls behind it are the same ones `docker run` and `docker restart` make, and the scheduler (a running daemon, no CLI) stays near the floor.',
  ].join('\n');
  log('\n' + body);
  writeBenchmarkSection('App runtime', body);
  log('\nwrote the App runtime section of BENCHMARKS.md');
}

await main();
