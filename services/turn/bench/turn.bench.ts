/**
 * TURN relay benchmark: coturn's turnutils_uclient drives sessions of 180-byte messages
 * through a TURN server to turnutils_peer (which echoes them back), for Hearth and for coturn's
 * turnserver (same secret; as many relay threads as cores) side by side in the same run.
 *
 * Rounds interleave the servers (Hearth, coturn, Hearth, coturn, …). In each round each server
 * climbs a ladder of offered rates (uclient paces each session at one message every -z ms, so
 * the nominal rate is sessions × 1000 / z msgs/s; what uclient really sent per second is printed
 * beside it) until it loses a message, then runs 1,000-byte and TCP loads at a fixed rate. Per run:
 * round-trip p50/p99 from a probe session of our own (one message every 5 ms alongside the load)
 * and the server's CPU-seconds per 100k relayed messages (utime+stime of the server process and its
 * children from /proc, which other load on the machine does not inflate). Per round: the ratio of
 * the highest lossless rates, and CPU/msg and p99 at the highest step both servers passed. The
 * summary is the median and range of those ratios over the rounds.
 *
 * A run that errors is reported loudly; the bench then goes on with the other rounds, exits 1
 * and leaves BENCHMARKS.md alone.
 *
 * uclient starts each session at a random time 1–6 s into its run, so a run's rate builds up to
 * the nominal one only while all sessions overlap; the average it really sent is printed too.
 *
 * Knobs: TURN_BENCH_ROUNDS (default 3), TURN_BENCH_SECONDS (seconds each session sends, default 5),
 * TURN_BENCH_HOST (address both servers and the peer use, default 127.0.0.1),
 * TURN_BENCH_PROFILE=<dir> (Hearth runs with --cpu-prof into dir), TURN_BENCH_SMOKE=1 (one round,
 * one tiny step, nothing written: the test that keeps the bench from rotting), TURN_BENCH_WRITE=0
 * (never write BENCHMARKS.md), TURN_BENCH_WORKERS (Hearth's HEARTH_TURN_WORKERS, default one per core). BENCHMARKS.md is rewritten only from ≥ 3 rounds without a failure.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '@hearth/config';
import { Directory, generateSecret } from '@hearth/directory';
import { cpuSeconds, formatRatio, freePort, interleave, percentile, recordBenchmark, runCommand, spread, startDaemon, tempDir, waitFor, type RoundResult } from '@hearth/testkit';
import { Attr, channelNumberValue, Class, Method, requestedTransportValue, uint32Value, xorAddressValue } from '../src/stun-codec.ts';
import { errorOf, login, restCredentials, signed, TestClient } from '../test/client.ts';
import { turnApp } from '../test/fixture.ts';

const SMOKE = process.env.TURN_BENCH_SMOKE === '1';
const ROUNDS = SMOKE ? 1 : Number(process.env.TURN_BENCH_ROUNDS ?? 3);
const SECONDS = SMOKE ? 1 : Number(process.env.TURN_BENCH_SECONDS ?? 5);
const HOST = process.env.TURN_BENCH_HOST ?? '127.0.0.1';
const PROFILE_DIR = process.env.TURN_BENCH_PROFILE;
const REALM = 'example.test';
const THREADS = os.availableParallelism();
/** Hearth's relay processes (HEARTH_TURN_WORKERS): one per core unless TURN_BENCH_WORKERS says otherwise */
const WORKERS = Number(process.env.TURN_BENCH_WORKERS ?? THREADS);

interface Server {
  name: string;
  port: number;
  pid: number;
  /** CPU-seconds the server has used so far (its child processes included) */
  cpu(): number;
  stop(): Promise<void>;
}

interface RunSpec {
  sessions: number;
  z: number;
  length: number;
  tcp: boolean;
}

interface RunResult extends RunSpec {
  /** nominal: sessions × 1000 / z */
  offered: number;
  /** messages per second uclient sent on average from its first to its last (from its once-a-second progress lines) */
  achieved: number;
  wall: number;
  sent: number;
  received: number;
  lost: number;
  p50: number | null;
  p99: number | null;
  cpuPer100k: number;
  ok: boolean;
}

interface Ladder {
  runs: RunResult[];
  best: RunResult | null;
  big: RunResult | null;
  tcp: RunResult | null;
}

const log = (...a: unknown[]): void => console.log(...a);
const fmt = (x: number | null | undefined, digits = 2): string => (x === null || x === undefined || Number.isNaN(x) ? '–' : x.toFixed(digits));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function startHearth(secret: string): Promise<Server> {
  const dataDir = tempDir('hearth-turn-bench-');
  const port = await freePort();
  const env: Record<string, string> = {
    HEARTH_DATA_DIR: dataDir,
    HEARTH_DOMAIN: REALM,
    HEARTH_LISTEN: HOST,
    HEARTH_TURN_PORT: String(port),
    HEARTH_TURN_TLS_PORT: String(await freePort()),
    // metrics on, as deployed, on a port of its own: two benches (or a bench and a daemon) may run at once
    HEARTH_TURN_METRICS_PORT: String(await freePort()),
    HEARTH_TURN_ALLOW_LOOPBACK_PEERS: '1',
    // uclient runs every session as one user; the default per-user quota (10) would stop it.
    HEARTH_TURN_USER_QUOTA: '10000',
    // said here so the ready line count below follows it
    HEARTH_TURN_WORKERS: String(WORKERS),
    HEARTH_LOG_LEVEL: 'warn',
    HEARTH_LOG_FORMAT: 'json',
  };
  if (PROFILE_DIR) env.NODE_OPTIONS = `--cpu-prof --cpu-prof-dir=${path.resolve(PROFILE_DIR)}`;
  const directory = await Directory.open(loadConfig({ ...process.env, ...env }));
  await directory.putApp(turnApp('meet', secret), []);
  await directory.close();
  // with workers, each logs "ready" and the primary last
  const readyLines = WORKERS > 1 ? WORKERS + 1 : 1;
  const daemon = await startDaemon('services/turn/src/main.ts', { ...env, HEARTH_LOG_LEVEL: 'info' }, (o) => o.split('"msg":"ready"').length - 1 >= readyLines);
  const pid = daemon.child.pid!;
  return {
    name: 'Hearth',
    port,
    pid,
    cpu: () => cpuSeconds(pid, true),
    stop: async () => {
      await daemon.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function startCoturn(secret: string): Promise<Server> {
  const port = await freePort();
  const dir = tempDir('hearth-coturn-bench-');
  const minPort = 50000 + Math.floor(Math.random() * 5000);
  const child: ChildProcess = spawn(
    'turnserver',
    [
      '-n',
      `--listening-ip=${HOST}`,
      `--listening-port=${port}`,
      `--relay-ip=${HOST}`,
      // coturn's high-performance setting: one relay thread per core (its default picks by OS heuristics)
      `--relay-threads=${THREADS}`,
      '--use-auth-secret',
      `--static-auth-secret=${secret}`,
      `--realm=${REALM}`,
      '--allow-loopback-peers',
      '--no-cli',
      '--no-tls',
      '--no-dtls',
      `--min-port=${minPort}`,
      `--max-port=${minPort + 4000}`,
      `--pidfile=${dir}/turnserver.pid`,
      `--log-file=${dir}/turnserver.log`,
      '--no-stdout-log',
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise((r) => child.once('exit', r));
  // Ready once it answers a Binding request.
  await waitFor(
    async () => {
      const c = await TestClient.open('udp', port, HOST);
      const r = await c.request(Method.Binding, [], {}, 200);
      c.close();
      return r?.cls === Class.Success;
    },
    15_000,
    200,
  );
  const pid = child.pid!;
  return {
    name: 'coturn',
    port,
    pid,
    cpu: () => cpuSeconds(pid, true),
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Waits until the server has gone quiet (under 3 % of a core for two 250 ms looks in a row): a
 * server still draining the last run's queued datagrams would delay the next run's setup and
 * charge its CPU to the wrong run.
 */
async function waitIdle(server: Server): Promise<void> {
  const deadline = Date.now() + 20_000;
  let quiet = 0;
  let last = server.cpu();
  while (quiet < 2 && Date.now() < deadline) {
    await sleep(250);
    const now = server.cpu();
    quiet = now - last < 0.0075 ? quiet + 1 : 0;
    last = now;
  }
}

interface Probe {
  stop(): Promise<{ p50: number | null; p99: number | null; messages: number }>;
}

/**
 * Opens the probe's session: login, Allocate, ChannelBind to the peer. uclient's sessions may leave
 * their allocations to run out, and the OS may hand the probe a local port one of them had: the
 * server then rightly answers 437 (Allocation Mismatch) for that 5-tuple. So a 437 is retried from a
 * new socket, at most 5 times (this was the flaky "probe allocation failed").
 */
async function openProbe(server: Server, secret: string, peerPort: number): Promise<{ c: TestClient; s: Awaited<ReturnType<typeof login>> }> {
  for (let attempt = 1; ; attempt++) {
    const c = await TestClient.open('udp', server.port, HOST);
    // A loaded server may drop a datagram: retransmit as a STUN client must, instead of failing the run.
    c.retransmit = true;
    try {
      const { username, password } = restCredentials(secret, 'probe');
      const s = await login(c, username, password);
      const alloc = await signed(c, s, Method.Allocate, [[Attr.RequestedTransport, requestedTransportValue(17)]]);
      if (alloc?.cls === Class.Error && errorOf(alloc) === 437 && attempt < 5) {
        c.close();
        continue;
      }
      if (alloc?.cls !== Class.Success) throw new Error(`${server.name}: probe allocation failed: ${alloc ? `error ${errorOf(alloc)}` : 'no answer in 39.5 s'}`);
      const bind = await signed(c, s, Method.ChannelBind, (tid) => [
        [Attr.ChannelNumber, channelNumberValue(0x4321)],
        [Attr.XorPeerAddress, xorAddressValue({ family: 4, address: HOST, port: peerPort }, tid)],
      ]);
      if (bind?.cls !== Class.Success) throw new Error(`${server.name}: probe channel bind failed: ${bind ? `error ${errorOf(bind)}` : 'no answer in 39.5 s'}`);
      return { c, s };
    } catch (err) {
      c.close();
      throw err;
    }
  }
}

/** One session of our own through the server, timing each echoed message. */
async function startProbe(server: Server, secret: string, peerPort: number): Promise<Probe> {
  const { c, s } = await openProbe(server, secret, peerPort);
  const sentAt = new Map<number, bigint>();
  const rtts: number[] = [];
  c.onChannelData = (_ch, data) => {
    const seq = data.readUInt32BE(0);
    const t0 = sentAt.get(seq);
    if (t0 === undefined) return;
    sentAt.delete(seq);
    rtts.push(Number(process.hrtime.bigint() - t0) / 1e6);
  };
  const frame = Buffer.alloc(4 + 180);
  frame.writeUInt16BE(0x4321, 0);
  frame.writeUInt16BE(180, 2);
  let seq = 0;
  const timer = setInterval(() => {
    frame.writeUInt32BE(seq, 4);
    sentAt.set(seq++, process.hrtime.bigint());
    c.sendRaw(frame);
  }, 5);
  return {
    stop: async () => {
      clearInterval(timer);
      // release the allocation, so no later probe or uclient session meets its 5-tuple
      c.onChannelData = () => {};
      await signed(c, s, Method.Refresh, [[Attr.Lifetime, uint32Value(0)]]).catch(() => null);
      c.close();
      rtts.sort((a, b) => a - b);
      const pct = (p: number): number | null => (rtts.length ? percentile(rtts, p) : null);
      return { p50: pct(50), p99: pct(99), messages: seq + rtts.length };
    },
  };
}

/** Messages per second uclient sent while sending, from its "<second>: : start_mclient: … tot_send_msgs=N" progress lines. */
function achievedRate(out: string, sent: number): number {
  // The last line (all sessions done) has no msz.
  const points = [...out.matchAll(/^(\d+): : start_mclient: (?:msz=\d+, )?tot_send_msgs=(\d+)/gm)].map((m) => ({ t: Number(m[1]), n: Number(m[2]) }));
  const first = points.find((p) => p.n > 0);
  const done = points.find((p) => p.n >= sent);
  if (!first || !done || done.t <= first.t) return NaN;
  // The first progress line with messages was printed up to a second after sending began.
  return sent / (done.t - first.t + 0.5);
}

async function runLoad(server: Server, secret: string, peerPort: number, spec: RunSpec): Promise<RunResult> {
  await waitIdle(server);
  const n = Math.max(10, Math.round((SECONDS * 1000) / spec.z));
  const cpu0 = server.cpu();
  const probe = await startProbe(server, secret, peerPort);
  const args = ['-W', secret, '-u', 'bench', '-p', String(server.port), '-e', HOST, '-r', String(peerPort), '-n', String(n), '-m', String(spec.sessions), '-l', String(spec.length), '-z', String(spec.z)];
  if (spec.tcp) args.unshift('-t');
  const t0 = Date.now();
  let uclient: { out: string; code: number | null };
  let probed: Awaited<ReturnType<Probe['stop']>>;
  try {
    uclient = await runCommand('turnutils_uclient', [...args, HOST], { timeoutMs: 300_000 });
  } finally {
    probed = await probe.stop();
  }
  const out = uclient.out.replace(/\r/g, '');
  const wall = (Date.now() - t0) / 1000;
  const cpu = server.cpu() - cpu0;
  const totals = /tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$/m.exec(out);
  const lost = /Total lost packets (\d+)/.exec(out);
  if (!totals || !lost) throw new Error(`${server.name}: turnutils_uclient ${args.join(' ')} gave no totals (exit ${uclient.code}):\n${out.split('\n').slice(-10).join('\n')}`);
  const sent = Number(totals[1]);
  const received = Number(totals[2]);
  const result: RunResult = {
    ...spec,
    offered: Math.round((spec.sessions * 1000) / spec.z),
    achieved: achievedRate(out, sent),
    wall,
    sent,
    received,
    lost: Number(lost[1]),
    p50: probed.p50,
    p99: probed.p99,
    cpuPer100k: (cpu * 100_000) / (sent + received + probed.messages),
    ok: Number(lost[1]) === 0 && received === sent && sent === spec.sessions * n,
  };
  log(
    `${server.name.padEnd(7)} ${spec.tcp ? 'TCP' : 'UDP'} ${String(spec.length).padStart(4)} B  ${String(spec.sessions).padStart(3)} × -z ${String(spec.z).padStart(2)}  offered ${String(result.offered).padStart(6)}/s (sent ≈ ${fmt(result.achieved, 0)}/s)  ${wall.toFixed(1)} s  sent ${sent} recv ${received} lost ${result.lost}  rtt p50 ${fmt(result.p50)} p99 ${fmt(result.p99)} ms  cpu ${fmt(result.cpuPer100k)} s/100k  load ${os.loadavg()[0]!.toFixed(1)}`,
  );
  return result;
}

const LADDER: { sessions: number; z: number }[] = SMOKE
  ? [{ sessions: 4, z: 20 }]
  : [
      { sessions: 50, z: 20 },
      { sessions: 50, z: 10 },
      { sessions: 50, z: 4 },
      { sessions: 50, z: 2 },
      { sessions: 50, z: 1 },
      { sessions: 100, z: 1 },
    ];

/** The 1,000-byte and TCP loads: a rate both servers usually carry without loss even on the loaded box. */
const FIXED = { sessions: 50, z: 10 };

/** One server's turn in a round: the ladder up to its first loss, then the 1,000-byte and TCP loads. */
async function ladder(server: Server, secret: string, peerPort: number): Promise<Ladder> {
  const out: Ladder = { runs: [], best: null, big: null, tcp: null };
  for (const step of LADDER) {
    const r = await runLoad(server, secret, peerPort, { ...step, length: 180, tcp: false });
    out.runs.push(r);
    if (!r.ok) break;
    out.best = r;
  }
  if (SMOKE) return out;
  out.big = await runLoad(server, secret, peerPort, { ...FIXED, length: 1000, tcp: false });
  out.tcp = await runLoad(server, secret, peerPort, { ...FIXED, length: 180, tcp: true });
  return out;
}

interface RoundRatios {
  rate: number;
  /** the highest step both servers passed without loss, and the two servers' runs there */
  common: { h: RunResult; c: RunResult } | null;
  cpu: number;
  p99: number;
  bigCpu: number;
  tcpCpu: number;
}

function ratios(h: Ladder, c: Ladder): RoundRatios {
  let common: RoundRatios['common'] = null;
  for (const hr of h.runs) {
    const cr = c.runs.find((r) => r.sessions === hr.sessions && r.z === hr.z);
    if (hr.ok && cr?.ok) common = { h: hr, c: cr };
  }
  const div = (a: number | null | undefined, b: number | null | undefined): number => (a !== null && a !== undefined && b ? a / b : NaN);
  return {
    rate: c.best ? (h.best?.offered ?? 0) / c.best.offered : NaN,
    common,
    cpu: div(common?.h.cpuPer100k, common?.c.cpuPer100k),
    p99: div(common?.h.p99, common?.c.p99),
    bigCpu: div(h.big?.cpuPer100k, c.big?.cpuPer100k),
    tcpCpu: div(h.tcp?.cpuPer100k, c.tcp?.cpuPer100k),
  };
}

const step = (r: RunResult | null | undefined): string => (r ? `${r.offered.toLocaleString('en-US')} (≈ ${fmt(r.achieved, 0)})` : 'none');

function report(rounds: RoundResult<Ladder>[][], loadStart: number, loadEnd: number): string {
  const coturnVersion = (spawnSync('turnserver', ['--version'], { encoding: 'utf8' }).stdout || '').trim().split('\n')[0] ?? '?';
  const perRound = rounds.map((row) => ({ h: row[0]!, c: row[1]!, r: ratios(row[0]!.result!, row[1]!.result!) }));
  const rows = perRound.map(({ h, c, r }) => {
    const hl = h.result!;
    const cl = c.result!;
    return `| ${h.round} | ${step(hl.best)} | ${step(cl.best)} | ${fmt(r.rate)}× | ${r.common ? r.common.h.offered.toLocaleString('en-US') : '–'} | ${fmt(r.common?.h.cpuPer100k)} / ${fmt(r.common?.c.cpuPer100k)} (${fmt(r.cpu)}×) | ${fmt(r.common?.h.p50)} / ${fmt(r.common?.c.p50)} | ${fmt(r.common?.h.p99)} / ${fmt(r.common?.c.p99)} (${fmt(r.p99)}×) | ${fmt(hl.big?.cpuPer100k)} / ${fmt(cl.big?.cpuPer100k)} | ${fmt(hl.tcp?.cpuPer100k)} / ${fmt(cl.tcp?.cpuPer100k)} | ${h.load[0].toFixed(1)} / ${c.load[0].toFixed(1)} |`;
  });
  const all = <K extends keyof RoundRatios>(k: K): number[] => perRound.map((p) => p.r[k] as number);
  return [
    `Run ${new Date().toISOString().slice(0, 10)} on ${os.cpus().length} cores (\`nproc\` = ${THREADS}), Node ${process.version}, ${os.cpus()[0]?.model.trim() ?? ''}; coturn ${coturnVersion} with \`--relay-threads=${THREADS}\`.`,
    `Load: \`turnutils_uclient -W <secret>\` sessions of 180-byte messages over UDP channels, through the server to \`turnutils_peer\` on loopback, which echoes`,
    `them back. Nominal rate = sessions × 1000 / \`-z\` msgs/s each way, reached only while all sessions overlap (uclient starts each at a random`,
    `time 1–6 s into the run); "≈" is the average uclient really sent per second from its first message to its last. Ladder`,
    `${LADDER.map((s) => `${s.sessions} × -z ${s.z}`).join(', ')}, each session sending for ${SECONDS} s; each server stops at its first loss.`,
    `${rounds.length} rounds, servers interleaved (Hearth, coturn, Hearth, coturn, …); each run waits until the server is idle.`,
    `RTT from a probe session of our own (one 180-byte ChannelData every 5 ms) beside the load. CPU = server utime+stime (threads and`,
    `child processes included) per 100k relayed messages, each message counted towards the peer and back: the load-independent figure.`,
    `1-minute load average: ${loadStart.toFixed(1)} at start, ${loadEnd.toFixed(1)} at end; the machine is shared with other work, so rates and`,
    `latencies move with it and the ratios per round are what to compare.`,
    '',
    `| round | Hearth highest lossless msgs/s (≈ sent) | coturn highest lossless | rate ratio | highest common step | CPU-s/100k Hearth / coturn there | p50 ms H / c | p99 ms H / c | 1,000 B CPU-s/100k H / c (${FIXED.sessions} × -z ${FIXED.z}) | TCP CPU-s/100k H / c (${FIXED.sessions} × -z ${FIXED.z}) | load avg H / c |`,
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    `Hearth / coturn, median (range) over the rounds: highest lossless rate **${formatRatio(spread(all('rate')))}** (target ≥ 1.0×);`,
    `CPU per message **${formatRatio(spread(all('cpu')))}** (target ≤ 1.3×); p99 at the same rate **${formatRatio(spread(all('p99')))}** (target ≤ 2×);`,
    `CPU per message at 1,000 B ${formatRatio(spread(all('bigCpu')))}, over TCP ${formatRatio(spread(all('tcpCpu')))}.`,
    '',
    `Hearth with \`HEARTH_TURN_WORKERS=${WORKERS}\`${WORKERS > 1 ? ' (relay processes; the primary routes only what reaches the UDP listener)' : ' (one process)'}, coturn with one relay thread per core.`,
  ].join('\n');
}

async function main(): Promise<void> {
  const loadStart = os.loadavg()[0]!;
  const secret = generateSecret(32);
  const peerPort = await freePort();
  const peer = spawn('turnutils_peer', ['-L', HOST, '-p', String(peerPort)], { stdio: 'ignore' });
  const servers: Server[] = [];
  let rounds: RoundResult<Ladder>[][] = [];
  try {
    servers.push(await startHearth(secret));
    servers.push(await startCoturn(secret));
    for (const sv of servers) log(`${sv.name}: pid ${sv.pid}, port ${sv.port}`);
    rounds = await interleave(
      servers.map((sv) => ({ name: sv.name, run: () => ladder(sv, secret, peerPort) })),
      ROUNDS,
    );
  } finally {
    for (const sv of servers) await sv.stop();
    peer.kill();
  }
  const complete = rounds.filter((row) => row.every((r) => r.result));
  const body = complete.length ? report(complete, loadStart, os.loadavg()[0]!) : 'no round completed';
  log('\n' + body);
  recordBenchmark(
    'TURN',
    body,
    rounds.flat().flatMap((r) => (r.error ? [`round ${r.round}, ${r.side}: ${r.error.message}`] : [])),
    !SMOKE && ROUNDS >= 3 && process.env.TURN_BENCH_WRITE !== '0',
  );
}

await main();
