/**
 * npm run bench:smtp — Hearth SMTP next to Postfix under the same load:
 * Postfix's smtp-source sends MESSAGES messages of 10 KB over 20 parallel sessions
 *   (a) to the MX port for a local mailbox, delivered into a Maildir (fsync on in both), and
 *   (b) to the submission port from a trusted network, relayed to Postfix's smtp-sink.
 * Each figure runs until the last message is delivered (a) or handed to the sink (b).
 * Rounds interleave the servers (Hearth, Postfix, Hearth, …): the median and range of the per-round
 * ratios, and each server's CPU-seconds per message. A failed round is named and the bench exits 1.
 * Knobs: BENCH_MESSAGES (default 10000), BENCH_ROUNDS (default 3), BENCH_WRITE=0.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatRatio, freePort, interleave, spread, tempDir, treeCpuSeconds, recordBenchmark, type RoundResult } from '@hearth/testkit';
import { startHearthSmtp } from './hearth-smtp.ts';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 10000);
const SESSIONS = 20;
const BODY = 10240;
const DOMAIN = 'bench.test';
const MAILBOX = `bench@${DOMAIN}`;

function need(tool: string): void {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} not found (Debian package postfix)`);
}

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
}

function countFiles(dir: string): number {
  let n = 0;
  if (!fs.existsSync(dir)) return 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? countFiles(path.join(dir, e.name)) : 1;
  return n;
}

async function until(what: string, fn: () => boolean, timeoutMs = 600_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs smtp-source and waits until `done()`; returns messages per second over the whole run. */
async function load(port: number, to: string, done: () => boolean): Promise<{ rate: number; seconds: number }> {
  const t0 = process.hrtime.bigint();
  const r = await new Promise<number | null>((resolve) => {
    const c = spawn('smtp-source', ['-s', String(SESSIONS), '-m', String(MESSAGES), '-l', String(BODY), '-d', '-f', 'sender@remote.test', '-t', to, `127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'inherit'] });
    c.on('close', resolve);
  });
  if (r !== 0) throw new Error(`smtp-source exited with ${r}`);
  if (process.env.BENCH_VERBOSE) console.log(`  accepted in ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s`);
  await until('delivery', done);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { rate: MESSAGES / seconds, seconds };
}

async function startSink(): Promise<{ port: number; proc: ChildProcess }> {
  const port = await freePort();
  const proc = spawn('smtp-sink', ['-u', 'nobody', `127.0.0.1:${port}`, '1024'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  if (proc.exitCode !== null) throw new Error('smtp-sink did not start');
  return { port, proc };
}

interface Target {
  name: string;
  /** port for (a) and (b) */
  mxPort: number;
  submissionPort: number;
  /** CPU-seconds of the whole server so far (its process tree, reaped children included) */
  cpu: () => number;
  delivered: () => number;
  queued: () => number;
  /** empties the Maildir between rounds */
  resetMaildir: () => void;
  stop: () => Promise<void>;
}

function emptyDir(dir: string): void {
  if (fs.existsSync(dir)) for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f), { force: true });
}

async function startHearth(sinkPort: number): Promise<Target> {
  const hearth = await startHearthSmtp(MAILBOX, {
    HEARTH_SMTP_TRUSTED_NETWORKS: '127.0.0.1/32',
    HEARTH_SMTP_RELAY: `smtp://127.0.0.1:${sinkPort}`,
    // fsyncs run on libuv's pool; 4 threads would serialise 20 sessions behind them
    UV_THREADPOOL_SIZE: '16',
  });
  const maildir = path.join(hearth.env.dataDir, 'mail', DOMAIN, 'bench', 'new');
  const spool = path.join(hearth.env.dataDir, 'queue', 'msg');
  return {
    name: 'hearth',
    mxPort: hearth.ports.mx,
    submissionPort: hearth.ports.submission,
    cpu: () => treeCpuSeconds(hearth.pid),
    delivered: () => countFiles(maildir),
    queued: () => countFiles(spool),
    resetMaildir: () => emptyDir(maildir),
    stop: () => hearth.stop(),
  };
}

async function startPostfix(sinkPort: number): Promise<Target> {
  const root = tempDir('hearth-bench-postfix-');
  fs.chmodSync(root, 0o755);
  const port = await freePort();
  const conf = path.join(root, 'conf');
  const queue = path.join(root, 'queue');
  const vmail = path.join(root, 'vmail');
  for (const d of [conf, queue, path.join(root, 'data'), vmail]) fs.mkdirSync(d, { recursive: true });
  const uid = Number(spawnSync('id', ['-u', 'postfix'], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', 'postfix'], { encoding: 'utf8' }).stdout.trim());
  fs.chownSync(vmail, uid, gid);
  fs.writeFileSync(path.join(root, 'vmailbox'), `${MAILBOX} bench/\n`);
  fs.writeFileSync(
    path.join(conf, 'main.cf'),
    `compatibility_level = 3.6
queue_directory = ${queue}
data_directory = ${root}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = bench.local
mydomain = bench.local
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
relayhost = [127.0.0.1]:${sinkPort}
virtual_mailbox_domains = ${DOMAIN}
virtual_mailbox_base = ${vmail}
virtual_mailbox_maps = texthash:${root}/vmailbox
virtual_uid_maps = static:${uid}
virtual_gid_maps = static:${gid}
local_recipient_maps =
alias_maps =
alias_database =
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
message_size_limit = 26214400
biff = no
append_dot_mydomain = no
`,
  );
  // Debian's master.cf with smtpd on our spare port and no chroot (the temp queue has no chroot jail)
  const master = fs
    .readFileSync('/etc/postfix/master.cf', 'utf8')
    .split('\n')
    .map((line) => {
      const f = line.split(/\s+/);
      if (!/^[a-z0-9.:]/.test(line) || f.length < 8) return line;
      if (f[0] === 'smtp' && f[1] === 'inet') f[0] = `127.0.0.1:${port}`;
      f[4] = 'n';
      return f.join(' ');
    })
    .join('\n');
  fs.writeFileSync(path.join(conf, 'master.cf'), master);
  sh('postfix', ['-c', conf, 'set-permissions']);
  sh('postfix', ['-c', conf, 'start']);
  await until('postfix smtpd', () => spawnSync('sh', ['-c', `ss -ltn | grep -q 127.0.0.1:${port}`]).status === 0, 20000);
  const maildir = path.join(vmail, 'bench', 'new');
  return {
    name: 'postfix',
    mxPort: port,
    submissionPort: port,
    cpu: () => treeCpuSeconds(Number(fs.readFileSync(path.join(queue, 'pid', 'master.pid'), 'utf8').trim())),
    delivered: () => countFiles(maildir),
    queued: () => ['incoming', 'active', 'deferred', 'maildrop', 'hold'].reduce((n, d) => n + countFiles(path.join(queue, d)), 0),
    resetMaildir: () => emptyDir(maildir),
    stop: async () => {
      spawnSync('postfix', ['-c', conf, 'stop']);
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

interface Figure {
  rate: number;
  seconds: number;
  /** server CPU-seconds per message */
  cpu: number;
}

interface Result {
  a: Figure;
  b: Figure;
}

/** One run of smtp-source against `t` until `done()`, with the server's CPU over it; errors name the figure. */
async function figure(label: string, t: Target, port: number, to: string, done: () => boolean): Promise<Figure> {
  const cpu0 = t.cpu();
  try {
    const r = await load(port, to, done);
    return { ...r, cpu: (t.cpu() - cpu0) / MESSAGES };
  } catch (err) {
    throw new Error(`${label}: ${(err as Error).message}`, { cause: err });
  }
}

/** One round of (a) and (b) against a target; each run waits for the previous one to drain. */
async function round(t: Target): Promise<Result> {
  t.resetMaildir();
  // the queue check first: counting a Maildir of 10,000 files is the costly one
  const a = await figure(FIGURES.a, t, t.mxPort, MAILBOX, () => t.queued() === 0 && t.delivered() >= MESSAGES);
  const b = await figure(FIGURES.b, t, t.submissionPort, 'someone@remote.test', () => t.queued() === 0);
  console.error(`${t.name.padEnd(8)} (a) ${a.rate.toFixed(0)} msgs/s (${a.seconds.toFixed(1)} s, ${(a.cpu * 1000).toFixed(2)} ms CPU/msg)   (b) ${b.rate.toFixed(0)} msgs/s (${b.seconds.toFixed(1)} s, ${(b.cpu * 1000).toFixed(2)} ms CPU/msg)`);
  return { a, b };
}

const FIGURES = { a: '(a) MX → Maildir', b: '(b) relay → smtp-sink' } as const;

function table(rounds: RoundResult<Result>[][]): string {
  const ok = rounds.filter((row) => row.every((r) => r.result));
  const med = (xs: number[]): number => spread(xs)?.median ?? NaN;
  const line = (k: 'a' | 'b'): string => {
    const side = (i: number): Figure[] => ok.map((row) => row[i]!.result![k]);
    const [h, p] = [side(0), side(1)];
    const ratio = spread(ok.map((row) => row[0]!.result![k].rate / row[1]!.result![k].rate));
    const cpuRatio = spread(ok.map((row) => row[1]!.result![k].cpu / row[0]!.result![k].cpu));
    const ms = (fs: Figure[]): string => (med(fs.map((f) => f.cpu)) * 1000).toFixed(2);
    return `| ${FIGURES[k]} | ${med(h.map((f) => f.rate)).toFixed(0)} | ${med(p.map((f) => f.rate)).toFixed(0)} | **${formatRatio(ratio)}** | ${ms(h)} / ${ms(p)} | ${formatRatio(cpuRatio)} |`;
  };
  return [
    `| figure (${ok.length} rounds) | Hearth msgs/s (median) | Postfix msgs/s (median) | Hearth / Postfix: median (range) | server CPU ms per message, Hearth / Postfix | Postfix CPU / Hearth CPU |`,
    '|---|---|---|---|---|---|',
    line('a'),
    line('b'),
  ].join('\n');
}

need('smtp-source');
need('smtp-sink');
need('postfix');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** BENCHMARKS.md is rewritten only from a full-size run without failures (BENCH_WRITE=0 never). */
const WRITE = process.env.BENCH_WRITE !== '0' && MESSAGES >= 10000 && ROUNDS >= 3;
const version = spawnSync('postconf', ['-h', 'mail_version'], { encoding: 'utf8' }).stdout.trim();
const loadStart = os.loadavg()[0]!;
const sink = await startSink();
const targets: Target[] = [];
try {
  targets.push(await startHearth(sink.port), await startPostfix(sink.port));
  const rounds = await interleave<Result>(
    targets.map((t) => ({ name: t.name, run: () => round(t) })),
    ROUNDS,
    (line) => console.error(line),
  );
  const loadEnd = os.loadavg()[0]!;
  const body = table(rounds);
  console.log(body);
  console.log(`load average ${loadStart.toFixed(1)} → ${loadEnd.toFixed(1)}`);
  recordBenchmark(
    'SMTP',
    `Run ${new Date().toISOString().slice(0, 10)} on ${os.availableParallelism()} cores (\`nproc\` = ${spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()}, ${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.version}, against Postfix ${version} on the same machine in the same run: \`npm run bench:smtp\`.
1-minute load average at start / end: ${loadStart.toFixed(1)} / ${loadEnd.toFixed(1)} (the machine is shared with other work: the rates move with it, the CPU per message much less).
Load: Postfix's \`smtp-source -s ${SESSIONS} -m ${MESSAGES} -l ${BODY} -d\` (${MESSAGES.toLocaleString('en')} messages of 10 KB over ${SESSIONS} parallel sessions). Each figure is messages over the time from the first connection until the last message is delivered, fsync on in both servers.
${ROUNDS} rounds interleaved (Hearth, Postfix, Hearth, …); the ratio is the median and range of the per-round ratios. CPU: each server's whole process tree (Hearth's daemon; Postfix's master and every process it started and reaped), over each run, per message; \`smtp-source\` and \`smtp-sink\` are not counted on either side.
(a) to the MX port for one local mailbox, delivered into a Maildir (Postfix: \`virtual\`); (b) to the submission port from \`HEARTH_SMTP_TRUSTED_NETWORKS=127.0.0.1/32\` (Postfix: \`mynetworks\`), relayed to one \`smtp-sink\`.

${body}

Target: ≥ 0.5× Postfix on both, durability on (spool file and directory fsync'd before the 250; Maildir file and directory fsync'd).`,
    rounds.flat().flatMap((r) => (r.error ? [`round ${r.round}, ${r.side}: ${r.error.message}`] : [])),
    WRITE,
  );
} finally {
  for (const t of targets) await t.stop().catch(() => {});
  sink.proc.kill();
}
