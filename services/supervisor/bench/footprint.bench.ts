/**
 * `npm run bench:footprint`: what the stack costs to keep running and to start, and what one
 * CLI call costs, for the compiled build (plain node) beside the TypeScript sources run through
 * tsx (how everything ran before `npm run build`):
 *  - idle RSS of the supervisor and every daemon after `npm start`, per process and in total, in
 *    the default mode (one process per daemon) and with HEARTH_SUPERVISOR_MODE=threads;
 *  - RSS again after a short load (LDAP searches as an app, IMAP logins of a user);
 *  - each daemon's start: from spawning it alone to its "ready" log line;
 *  - the wall time of five `hearth` commands, compiled and from sources interleaved;
 *  - the runtime image's file tree: compiled output plus production node_modules.
 * Knobs: FOOTPRINT_HOST (127.0.0.1), FOOTPRINT_ROUNDS (3), FOOTPRINT_IDLE_MS (5000).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_PORTS, portEnvName, type PortName } from '@hearth/config';
import { cpuSeconds, dockerEnv, freePort, memoryMiB, REPO_ROOT, testEnv, waitFor, writeBenchmarkSection, type TestEnv } from '@hearth/testkit';
import { availableServices, compiledEntry, serviceEntry } from '../src/services.ts';

const HOST = process.env.FOOTPRINT_HOST ?? '127.0.0.1';
const ROUNDS = Number(process.env.FOOTPRINT_ROUNDS ?? 3);
const IDLE_MS = Number(process.env.FOOTPRINT_IDLE_MS ?? 5000);
const SERVICES = availableServices().map((s) => s.name);

type Variant = 'compiled' | 'sources';
const entryArgs = (v: Variant, entry: { src: string; js: string }): string[] => (v === 'compiled' ? ['--enable-source-maps', entry.js] : ['--import', 'tsx', entry.src]);
const CLI = { src: path.join(REPO_ROOT, 'services/cli/src/main.ts'), js: path.join(REPO_ROOT, 'services/cli/dist/main.js') };
const SUPERVISOR = { src: serviceEntry('supervisor'), js: compiledEntry('supervisor') };

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mib = (x: number): string => x.toFixed(0);
const loadavg = (): string => os.loadavg()[0]!.toFixed(1);

async function stackEnv(t: TestEnv): Promise<Record<string, string>> {
  const env: Record<string, string> = { ...t.env, ...dockerEnv(), HEARTH_LISTEN: HOST, HEARTH_HOSTNAME: HOST, HEARTH_LOG_LEVEL: 'info', HEARTH_LOG_FORMAT: 'json' };
  for (const name of Object.keys(DEFAULT_PORTS) as PortName[]) env[portEnvName(name)] = String(await freePort());
  env.HEARTH_OIDC_ISSUER = `http://${HOST}:${env.HEARTH_OIDC_PORT}`;
  return env;
}

/** Every live process: its parent and command line. */
function processes(): { pid: number; ppid: number; cmd: string }[] {
  const out: { pid: number; ppid: number; cmd: string }[] = [];
  for (const p of fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      out.push({ pid: Number(p), ppid: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]), cmd: fs.readFileSync(`/proc/${p}/cmdline`, 'utf8') });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/**
 * RSS of the supervisor and of each child with its own descendants (tsx starts an esbuild
 * helper under every process it runs), named by the service in the child's command line.
 */
function rssTable(supervisor: number): { rows: { name: string; rss: number }[]; total: number; count: number } {
  const all = processes();
  const tree = (pid: number): number[] => [pid, ...all.filter((p) => p.ppid === pid).flatMap((p) => tree(p.pid))];
  const rss = (pids: number[]): number => pids.reduce((a, pid) => a + (memoryMiB(pid).rss || 0), 0);
  const direct = all.filter((p) => p.ppid === supervisor);
  const daemons = direct.filter((p) => /services\/[a-z0-9]+\//.test(p.cmd));
  const helpers = direct.filter((p) => !daemons.includes(p));
  const rows = [
    { name: 'supervisor', rss: rss([supervisor, ...helpers.flatMap((h) => tree(h.pid))]) },
    ...daemons.map((d) => ({ name: /services\/([a-z0-9]+)\//.exec(d.cmd)![1]!, rss: rss(tree(d.pid)) })),
  ];
  return { rows, total: rows.reduce((a, r) => a + r.rss, 0), count: tree(supervisor).length };
}

function cli(variant: Variant, args: string[], env: Record<string, string>, input?: string): string {
  const r = spawnSync(process.execPath, [...entryArgs(variant, CLI), ...args], { env: { ...process.env, ...env }, encoding: 'utf8', input, timeout: 120_000 });
  if (r.status !== 0) throw new Error(`hearth ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Some LDAP searches as an app and IMAP logins as a user, with the real clients. */
function load(env: Record<string, string>, variant: Variant): void {
  const app = Object.fromEntries(cli(variant, ['app', 'env', 'wiki'], env).trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  for (let i = 0; i < 30; i++) {
    const r = spawnSync('ldapsearch', ['-x', '-H', app.CLOUDRON_LDAP_URL!, '-D', app.CLOUDRON_LDAP_BIND_DN!, '-w', app.CLOUDRON_LDAP_BIND_PASSWORD!, '-b', app.CLOUDRON_LDAP_USERS_BASE_DN!, '(objectclass=user)'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ldapsearch: ${r.stderr}`);
  }
  const py = `import imaplib\nfor i in range(30):\n    c = imaplib.IMAP4('${HOST}', ${env.HEARTH_IMAP_PORT})\n    c.login('bench', 'bench password 1')\n    c.select('INBOX')\n    c.logout()\n`;
  const r = spawnSync('/usr/bin/python3', ['-c', py], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`imaplib: ${r.stderr}`);
}

interface StackFigures {
  idle: { rows: { name: string; rss: number }[]; total: number; count: number };
  loaded: number;
  processes: number;
}

async function measureStack(variant: Variant, mode: 'processes' | 'threads'): Promise<StackFigures> {
  const t = await testEnv();
  const env = { ...(await stackEnv(t)), HEARTH_SUPERVISOR_MODE: mode };
  const proc: ChildProcess = spawn(process.execPath, entryArgs(variant, SUPERVISOR), { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  try {
    await waitFor(() => out.includes('Manage users and apps'), 120_000, 200);
    const started = SERVICES.filter((s) => new RegExp(`^ {2}${s} `, 'm').test(out));
    await waitFor(() => started.every((s) => out.includes(`"name":"${s}"`) && new RegExp(`"name":"${s}".*"msg":"ready"`).test(out)), 180_000, 250);
    cli('compiled', ['user', 'add', 'bench', '--email', 'bench@example.test', '--password-stdin'], env, 'bench password 1\n');
    cli('compiled', ['mailbox', 'add', 'bench@example.test', '--owner', 'bench'], env);
    cli('compiled', ['app', 'install', path.join(REPO_ROOT, 'examples/manifests/wiki.json'), '--id', 'wiki', '--domain', 'wiki.example.test'], env);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const idle = rssTable(proc.pid!);
    load(env, 'compiled');
    const loaded = rssTable(proc.pid!).total;
    return { idle, loaded, processes: idle.count };
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    await t.cleanup();
  }
}

/** Milliseconds from spawning one daemon alone to its "ready" line. */
async function startTime(variant: Variant, name: string, env: Record<string, string>): Promise<{ wall: number; cpu: number }> {
  const t0 = performance.now();
  const proc = spawn(process.execPath, entryArgs(variant, { src: serviceEntry(name), js: compiledEntry(name) }), { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  try {
    await waitFor(() => out.includes('"msg":"ready"') || proc.exitCode !== null, 120_000, 5);
    if (!out.includes('"msg":"ready"')) throw new Error(`${name} did not start:\n${out}`);
    return { wall: performance.now() - t0, cpu: cpuSeconds(proc.pid!) * 1000 };
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
  }
}

/** Wall and CPU milliseconds of a bare `node -e 0`: what the machine's load makes of any Node start. */
function nodeBaseline(): string {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S', process.execPath, '-e', '0'], { encoding: 'utf8' });
  const [e, u, sys] = r.stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
  return `${(e! * 1000).toFixed(0)} ms wall, ${((u! + sys!) * 1000).toFixed(0)} ms CPU`;
}

/** The bytes of the runtime stage's tree: every dist/ plus the production dependencies' folders. */
function runtimeTree(): { dist: number; modules: number } {
  const du = (p: string): number => Number(spawnSync('du', ['-sb', p], { encoding: 'utf8' }).stdout.split('\t')[0]);
  const dist = fs.readdirSync(path.join(REPO_ROOT, 'services')).map((d) => path.join(REPO_ROOT, 'services', d, 'dist')).filter((d) => fs.existsSync(d)).reduce((a, d) => a + du(d), 0);
  const ls = spawnSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: REPO_ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  const dirs = [...new Set(ls.stdout.split('\n').filter((p) => p.includes(`${path.sep}node_modules${path.sep}`)))].sort();
  // a nested package is inside its parent's folder: count the outermost folders only
  const outer = dirs.filter((d, i) => !dirs.slice(0, i).some((p) => d.startsWith(p + path.sep)));
  const total = spawnSync('du', ['-scb', ...outer], { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout.trim().split('\n').at(-1)!;
  return { dist, modules: Number(total.split('\t')[0]) };
}

async function main(): Promise<void> {
  const build = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(build.stderr);
  const loadStart = loadavg();
  const lines: string[] = [];
  const say = (l: string): void => {
    lines.push(l);
    process.stdout.write(`${l}\n`);
  };

  // Idle and loaded RSS.
  const stacks: [string, Variant, 'processes' | 'threads'][] = [
    ['sources through tsx (before)', 'sources', 'processes'],
    ['compiled, one process per daemon (default)', 'compiled', 'processes'],
    ['compiled, HEARTH_SUPERVISOR_MODE=threads', 'compiled', 'threads'],
  ];
  const figures: StackFigures[] = [];
  for (const [label, variant, mode] of stacks) {
    process.stderr.write(`stack: ${label}\n`);
    figures.push(await measureStack(variant, mode));
  }
  say('Idle RSS (MiB) after `npm start`, every daemon ready, a user and an app added, then 5 s idle; "after load" is the total after 30 LDAP searches as the app and 30 IMAP logins:');
  say('');
  say(`| process | ${stacks.map((s) => s[0]).join(' | ')} |`);
  say(`|---|${stacks.map(() => '---:').join('|')}|`);
  for (const name of ['supervisor', ...SERVICES]) {
    const cells = figures.map((f) => f.idle.rows.find((r) => r.name === name));
    if (cells.every((c) => !c)) continue;
    say(`| ${name} | ${cells.map((c, i) => (c ? mib(c.rss) : figures[i]!.processes === 1 ? 'in the supervisor' : '–')).join(' | ')} |`);
  }
  say(`| **total idle** | ${figures.map((f) => `**${mib(f.idle.total)}**`).join(' | ')} |`);
  say(`| total after load | ${figures.map((f) => mib(f.loaded)).join(' | ')} |`);
  say(`| OS processes (with tsx's esbuild helpers) | ${figures.map((f) => f.processes).join(' | ')} |`);

  // Start times.
  const t = await testEnv();
  const env = await stackEnv(t);
  const starts: Record<string, Record<Variant, { wall: number; cpu: number }[]>> = {};
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of SERVICES.filter((s) => s !== 'runtime' && s !== 'dockerproxy')) {
      starts[name] ??= { compiled: [], sources: [] };
      for (const v of ['sources', 'compiled'] as const) starts[name][v].push(await startTime(v, name, env));
    }
  }
  say('');
  say(`Start time (ms, spawn to the "ready" log line, each daemon alone, median of ${ROUNDS} interleaved rounds), and the CPU time the process used until then:`);
  say('');
  say('| daemon | compiled | sources through tsx | CPU ms compiled | CPU ms sources |');
  say('|---|---:|---:|---:|---:|');
  const m = (xs: { wall: number; cpu: number }[], k: 'wall' | 'cpu'): string => median(xs.map((x) => x[k])).toFixed(0);
  for (const [name, v] of Object.entries(starts)) say(`| ${name} | ${m(v.compiled, 'wall')} | ${m(v.sources, 'wall')} | ${m(v.compiled, 'cpu')} | ${m(v.sources, 'cpu')} |`);

  // CLI wall time.
  cli('compiled', ['user', 'add', 'alice', '--email', 'alice@example.test', '--password-stdin'], env, 'alice password 1\n');
  cli('compiled', ['group', 'add', 'staff'], env);
  const commands = [['--help'], ['user', 'list'], ['user', 'show', 'alice'], ['group', 'list'], ['app', 'list']];
  const wall: Record<string, Record<Variant, number[]>> = {};
  const cpu: Record<string, Record<Variant, number[]>> = {};
  for (let round = 0; round < ROUNDS; round++) {
    for (const args of commands) {
      const key = args.join(' ');
      wall[key] ??= { compiled: [], sources: [] };
      for (const v of ['compiled', 'sources'] as const) {
        // GNU time: wall and CPU seconds (user + system) of the command and its children
        const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S', process.execPath, ...entryArgs(v, CLI), ...args], { env: { ...process.env, ...env }, encoding: 'utf8' });
        const [e, u, sys] = r.stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
        wall[key][v].push(e! * 1000);
        cpu[key] ??= { compiled: [], sources: [] };
        cpu[key][v].push((u! + sys!) * 1000);
      }
    }
  }
  await t.cleanup();
  say('');
  say(`\`hearth\` wall time (ms, median of ${ROUNDS} interleaved rounds; ratio: median and range of per-round sources/compiled):`);
  say('');
  say('| command | compiled | sources through tsx | sources / compiled | CPU ms compiled | CPU ms sources |');
  say('|---|---:|---:|---|---:|---:|');
  for (const [key, v] of Object.entries(wall)) {
    const ratios = v.compiled.map((c, i) => v.sources[i]! / c).sort((a, b) => a - b);
    say(`| \`hearth ${key}\` | ${median(v.compiled).toFixed(0)} | ${median(v.sources).toFixed(0)} | ${median(ratios).toFixed(1)}× (${ratios[0]!.toFixed(1)}–${ratios.at(-1)!.toFixed(1)}) | ${median(cpu[key]!.compiled).toFixed(0)} | ${median(cpu[key]!.sources).toFixed(0)} |`);
  }
  say('');
  say(`For scale, \`node -e 0\` at the end of this run: ${nodeBaseline()}.`);

  const tree = runtimeTree();
  say('');
  say(`Runtime image tree (what the Dockerfile's runtime stage copies, without the base image): compiled output ${(tree.dist / 2 ** 20).toFixed(1)} MiB + production node_modules ${(tree.modules / 2 ** 20).toFixed(0)} MiB = **${((tree.dist + tree.modules) / 2 ** 20).toFixed(0)} MiB** (node_modules as installed here for linux-x64; the built image's own layers are measured by hand, see below).`);

  const header = `Run ${new Date().toISOString().slice(0, 10)} on ${os.availableParallelism()} cores, Node ${process.version}; 1-minute load average at start / end: ${loadStart} / ${loadavg()} (other work on the box inflates every figure, sources and compiled alike). SQLite store, Docker engine ${dockerEnv().HEARTH_DOCKER_HOST}.`;
  writeBenchmarkSection('Footprint', `${header}\n\n${lines.join('\n')}`);
}

await main();
