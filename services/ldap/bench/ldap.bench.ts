/**
 * LDAP benchmark: Hearth's server against OpenLDAP slapd (Debian package, mdb backend)
 * holding the same 10,000 users in 100 groups, driven by the same load generator
 * (raw sockets, prebuilt BER, 16 connections, closed loop).
 *
 *   (a) searches/s with the seed filter for random users, bound as the app
 *   (b) user binds/s (argon2id at the default cost, the same hash in both servers)
 *   (c) p50/p99 latency and server RSS
 *
 * The servers run side by side and are measured in interleaved rounds (Hearth, slapd, Hearth, …):
 * the median and range of the per-round ratios, and each server's CPU-seconds per operation.
 * slapd gets as many threads as Hearth runs argon2 verifications at once, so binds compare at equal concurrency.
 * A failed round is named and the bench exits 1; a full-size run without failures rewrites the "LDAP" section of BENCHMARKS.md.
 * Knobs: LDAP_BENCH_USERS, LDAP_BENCH_SECONDS, LDAP_BENCH_ROUNDS, LDAP_BENCH_BIND_SECONDS,
 * LDAP_BENCH_BIND_ROUNDS, LDAP_BENCH_CONNECTIONS, LDAP_BENCH_WARMUP_SECONDS, LDAP_BENCH_WRITE=0.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { loadConfig } from '@hearth/config';
import { Directory, PasswordHasher, type User } from '@hearth/directory';
import { cpuSeconds, formatRatio, freePort, interleave, memoryMiB, percentile, spread, startDaemon, tempDir, waitFor, recordBenchmark, type RoundResult } from '@hearth/testkit';
import { pduLength } from '../src/ber.ts';
import { OP } from '../src/protocol.ts';
import { bindRequest, searchRequest, seedFilter } from '../test/wire-client.ts';

const USERS = Number(process.env.LDAP_BENCH_USERS ?? 10_000);
const GROUPS = 100;
const SECONDS = Number(process.env.LDAP_BENCH_SECONDS ?? 6);
const ROUNDS = Number(process.env.LDAP_BENCH_ROUNDS ?? 3);
const BIND_SECONDS = Number(process.env.LDAP_BENCH_BIND_SECONDS ?? 6);
const BIND_ROUNDS = Number(process.env.LDAP_BENCH_BIND_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.LDAP_BENCH_CONNECTIONS ?? 16);
const WARMUP_SECONDS = Number(process.env.LDAP_BENCH_WARMUP_SECONDS ?? 2);
/** BENCHMARKS.md is rewritten only from a full-size run (LDAP_BENCH_WRITE=0 never). */
const WRITE = process.env.LDAP_BENCH_WRITE !== '0' && USERS >= 10_000 && ROUNDS >= 3 && BIND_ROUNDS >= 3;
const PASSWORD = 'bench password 1';
const APP_ID = 'bench';
const APP_DN = `cn=${APP_ID},ou=apps,dc=cloudron`;
const APP_PASSWORD = 'bench-app-secret';

interface Target {
  name: string;
  port: number;
  pid: number;
}

interface Phase {
  ops: number;
  errors: number;
  seconds: number;
  p50: number;
  p99: number;
}

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

// ---------- data ----------

async function seedDirectory(dataDir: string, env: Record<string, string>): Promise<{ users: User[]; hash: string; argon: string }> {
  const config = loadConfig({ ...process.env, ...env });
  const dir = await Directory.open(config);
  const hasher = new PasswordHasher(config.argon2);
  // One hash for everyone: generating 10,000 at full cost would take minutes.
  const hash = await hasher.hash(PASSWORD);
  const groups = [];
  for (let g = 0; g < GROUPS; g++) groups.push(await dir.store.createGroup({ id: `gid-${randomUUID()}`, name: `group${g}` }));
  const users: User[] = [];
  for (let i = 0; i < USERS; i++) {
    const u = await dir.store.createUser({
      id: `uid-${randomUUID()}`,
      username: `user${i}`,
      email: `user${i}@example.test`,
      fallbackEmail: `user${i}@fallback.test`,
      displayName: `User Number${i}`,
      role: 'user',
      active: true,
      passwordHash: hash,
      totpSecret: null,
      createdAt: new Date().toISOString(),
    });
    await dir.store.addMember(groups[i % GROUPS]!.id, u.id);
    users.push(u);
  }
  await dir.putApp(
    { id: APP_ID, domain: 'bench.example.test', manifest: { addons: { ldap: {} } }, access: null, upstream: null, credentials: { ldap: { bindDn: APP_DN, bindPassword: APP_PASSWORD } }, createdAt: new Date().toISOString() },
    [],
  );
  await dir.close();
  const argon = `argon2id m=${config.argon2.memoryCost} KiB, t=${config.argon2.timeCost}, p=${config.argon2.parallelism}`;
  log(`seeded ${USERS} users in ${GROUPS} groups under ${dataDir}`);
  return { users, hash, argon };
}

const SCHEMA = `
attributetype ( 1.3.6.1.4.1.99999.1.1 NAME 'username' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.2 NAME 'samaccountname' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.3 NAME 'objectcategory' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.3.6.1.4.1.99999.1.4 NAME 'memberof' EQUALITY distinguishedNameMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 )
attributetype ( 1.3.6.1.4.1.99999.1.5 NAME 'mailAlternateAddress' EQUALITY caseIgnoreIA5Match SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )
objectclass ( 1.3.6.1.4.1.99999.2.1 NAME 'user' AUXILIARY MAY ( username $ samaccountname $ objectcategory $ memberof $ mailAlternateAddress ) )
objectclass ( 1.3.6.1.4.1.99999.2.2 NAME 'group' STRUCTURAL MUST cn MAY ( gidNumber $ memberUid ) )
`;

/** The same entries as Hearth serves (entryuuid is slapd's own operational attribute). */
function ldif(users: User[], hash: string): string {
  const out: string[] = [
    'dn: dc=cloudron\nobjectClass: top\nobjectClass: domain\ndc: cloudron\n',
    'dn: ou=users,dc=cloudron\nobjectClass: organizationalUnit\nou: users\n',
    'dn: ou=groups,dc=cloudron\nobjectClass: organizationalUnit\nou: groups\n',
    'dn: ou=apps,dc=cloudron\nobjectClass: organizationalUnit\nou: apps\n',
    `dn: ${APP_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: ${APP_ID}\nuserPassword: ${APP_PASSWORD}\n`,
  ];
  const members: string[][] = Array.from({ length: GROUPS }, () => []);
  users.forEach((u, i) => {
    const g = i % GROUPS;
    members[g]!.push(u.id);
    const [given, ...rest] = u.displayName.split(' ');
    out.push(
      [
        `dn: cn=${u.id},ou=users,dc=cloudron`,
        'objectClass: inetOrgPerson',
        'objectClass: user',
        'objectcategory: person',
        `cn: ${u.id}`,
        `uid: ${u.id}`,
        `mail: ${u.email}`,
        `displayName: ${u.displayName}`,
        `mailAlternateAddress: ${u.fallbackEmail}`,
        `givenName: ${given}`,
        `sn: ${rest.join(' ')}`,
        `username: ${u.username}`,
        `samaccountname: ${u.username}`,
        `memberof: cn=group${g},ou=groups,dc=cloudron`,
        `userPassword: {ARGON2}${hash}`,
        '',
      ].join('\n'),
    );
  });
  members.forEach((ids, g) => {
    out.push([`dn: cn=group${g},ou=groups,dc=cloudron`, 'objectClass: group', `cn: group${g}`, `gidNumber: ${5000 + g}`, ...ids.map((id) => `memberUid: ${id}`), ''].join('\n'));
  });
  return out.join('\n');
}

async function startSlapd(users: User[], hash: string, threads: number): Promise<{ target: Target; child: ChildProcess; dir: string }> {
  const dir = tempDir('hearth-slapd-');
  fs.mkdirSync(path.join(dir, 'db'));
  fs.writeFileSync(path.join(dir, 'hearth.schema'), SCHEMA);
  const conf = path.join(dir, 'slapd.conf');
  fs.writeFileSync(
    conf,
    [
      ...['core', 'cosine', 'nis', 'inetorgperson'].map((s) => `include /etc/ldap/schema/${s}.schema`),
      `include ${dir}/hearth.schema`,
      `pidfile ${dir}/slapd.pid`,
      `argsfile ${dir}/slapd.args`,
      'modulepath /usr/lib/ldap',
      'moduleload back_mdb',
      'moduleload argon2',
      // What Debian's packaged configuration sets (olcLogLevel: none); Hearth does not log per operation either.
      'loglevel 0',
      `threads ${threads}`,
      'database mdb',
      'maxsize 1073741824',
      'suffix "dc=cloudron"',
      `directory ${dir}/db`,
      'index objectClass eq',
      'index uid,cn,mail eq',
      'index username eq',
      'access to attrs=userPassword by anonymous auth by * none',
      'access to * by * read',
      '',
    ].join('\n'),
  );
  fs.writeFileSync(path.join(dir, 'data.ldif'), ldif(users, hash));
  const add = spawnSync('slapadd', ['-q', '-f', conf, '-l', path.join(dir, 'data.ldif')], { encoding: 'utf8' });
  if (add.status !== 0) throw new Error(`slapadd failed: ${add.stderr}`);
  const port = await freePort();
  const child = spawn('slapd', ['-f', conf, '-h', `ldap://127.0.0.1:${port}/`, '-d', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        if (child.exitCode !== null) throw new Error(`slapd exited: ${err}`);
        const s = net.connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      }),
    20_000,
  );
  return { target: { name: 'slapd', port, pid: child.pid! }, child, dir };
}

// ---------- load generator ----------

/** One closed-loop connection: send a prebuilt request, wait for its final response, repeat. */
class LoadConn {
  private input: Buffer = Buffer.alloc(0);
  private sentAt = 0;
  private entries = 0;
  private ready: { resolve: () => void; reject: (err: Error) => void } | null = null;
  running = false;
  ops = 0;
  errors = 0;
  latencies: number[] = [];

  constructor(
    readonly socket: net.Socket,
    private readonly nextRequest: () => { pdu: Buffer; expectEntries: number },
    private readonly recording: () => boolean,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', () => {});
    socket.on('close', () => this.ready?.reject(new Error('connection closed before the app bind answered')));
  }

  static open(port: number, next: () => { pdu: Buffer; expectEntries: number }, recording: () => boolean): Promise<LoadConn> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new LoadConn(s, next, recording)));
      s.once('error', reject);
    });
  }

  /** Binds as the app before the loop starts. */
  bindApp(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ready = { resolve, reject };
      this.socket.write(bindRequest(1, APP_DN, APP_PASSWORD));
    });
  }

  private expect = 0;

  start(): void {
    this.running = true;
    this.send();
  }

  private send(): void {
    if (!this.running) return;
    const { pdu, expectEntries } = this.nextRequest();
    this.expect = expectEntries;
    this.entries = 0;
    this.sentAt = performance.now();
    this.socket.write(pdu);
  }

  private onData(d: Buffer): void {
    this.input = this.input.length ? Buffer.concat([this.input, d]) : d;
    for (;;) {
      const len = pduLength(this.input, 64 * 1024 * 1024);
      if (len === 0) break;
      const pdu = this.input.subarray(0, len);
      this.input = this.input.subarray(len);
      // SEQUENCE, then the message id INTEGER, then the operation tag.
      const idLen = pdu[pdu[1]! & 0x80 ? 2 + (pdu[1]! & 0x7f) + 1 : 3]!;
      const opAt = (pdu[1]! & 0x80 ? 2 + (pdu[1]! & 0x7f) : 2) + 2 + idLen;
      const tag = pdu[opAt]!;
      if (tag === OP.searchResultEntry) {
        this.entries++;
        continue;
      }
      // LDAPResult: op tag, length, then ENUMERATED resultCode.
      const bodyLenBytes = pdu[opAt + 1]! & 0x80 ? 1 + (pdu[opAt + 1]! & 0x7f) : 1;
      const code = pdu[opAt + 1 + bodyLenBytes + 2]!;
      if (this.ready) {
        const { resolve, reject } = this.ready;
        this.ready = null;
        if (code !== 0) reject(new Error(`app bind failed with result code ${code}`));
        else resolve();
        continue;
      }
      const ok = code === 0 && (this.expect < 0 || this.entries === this.expect);
      if (this.recording()) {
        this.ops++;
        if (!ok) this.errors++;
        this.latencies.push(performance.now() - this.sentAt);
      }
      this.send();
    }
  }
}

async function drive(t: Target, seconds: number, bindAsApp: boolean, next: () => { pdu: Buffer; expectEntries: number }): Promise<{ phase: Phase; cpu: number }> {
  let recording = false;
  const conns = await Promise.all(Array.from({ length: CONNECTIONS }, () => LoadConn.open(t.port, next, () => recording)));
  try {
    if (bindAsApp) await Promise.all(conns.map((c) => c.bindApp()));
    for (const c of conns) c.start();
    await new Promise((r) => setTimeout(r, WARMUP_SECONDS * 1000));
    const cpu0 = cpuSeconds(t.pid);
    recording = true;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    recording = false;
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(t.pid) - cpu0;
    const lat = conns.flatMap((c) => c.latencies).sort((a, b) => a - b);
    const ops = conns.reduce((n, c) => n + c.ops, 0);
    return { phase: { ops, errors: conns.reduce((n, c) => n + c.errors, 0), seconds: elapsed, p50: percentile(lat, 50), p99: percentile(lat, 99) }, cpu };
  } finally {
    for (const c of conns) {
      c.running = false;
      c.socket.destroy();
    }
  }
}

interface Run extends Phase {
  /** server CPU-seconds (user + system) over the timed part */
  cpu: number;
}

interface Figure {
  label: string;
  rounds: number;
  seconds: number;
  run(t: Target): Promise<Run>;
}

/** One timed run; a run with errors or no operations is a failed round, not a figure. */
async function timedRun(t: Target, seconds: number, bindAsApp: boolean, next: () => { pdu: Buffer; expectEntries: number }): Promise<Run> {
  const { phase, cpu } = await drive(t, seconds, bindAsApp, next);
  if (phase.ops === 0) throw new Error('no operation completed');
  if (phase.errors) throw new Error(`${phase.errors} of ${phase.ops} operations failed`);
  return { ...phase, cpu };
}

interface Measured {
  figure: Figure;
  rounds: RoundResult<Run>[][];
}

/** Interleaves the servers round by round (A B A B …) for every figure, so other load falls on both alike. */
async function measureAll(targets: Target[], figures: Figure[]): Promise<Measured[]> {
  const out: Measured[] = [];
  for (const figure of figures) {
    log(`${figure.label}: ${figure.rounds} rounds of ${figure.seconds} s per server`);
    const rounds = await interleave<Run>(
      targets.map((t) => ({
        name: t.name,
        run: async (round) => {
          log(`  round ${round}/${figure.rounds}: ${t.name}`);
          return figure.run(t);
        },
      })),
      figure.rounds,
      log,
    );
    out.push({ figure, rounds });
  }
  return out;
}

// ---------- report ----------

const rate = (p: Phase): number => p.ops / p.seconds;
const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

function rows(m: Measured, digits: number): string[] {
  const ok = m.rounds.filter((row) => row.every((r) => r.result));
  const side = (i: number): Run[] => ok.map((row) => row[i]!.result!);
  const med = (xs: number[]): number => spread(xs)?.median ?? NaN;
  const cpuMs = (runs: Run[]): string => fmt(med(runs.map((r) => (r.cpu / r.ops) * 1000)), digits === 0 ? 3 : 2);
  const [ours, theirs] = [side(0), side(1)];
  const ratio = spread(ok.map((row) => rate(row[0]!.result!) / rate(row[1]!.result!)));
  const cpuRatio = spread(ok.map((row) => row[1]!.result!.cpu / row[1]!.result!.ops / (row[0]!.result!.cpu / row[0]!.result!.ops)));
  return [
    `| ${m.figure.label} | ${fmt(med(ours.map(rate)), digits)} | ${fmt(med(theirs.map(rate)), digits)} | **${formatRatio(ratio)}** | ${cpuMs(ours)} / ${cpuMs(theirs)} | ${formatRatio(cpuRatio)} |`,
    `| ${m.figure.label.replace(/\/s.*/, '')} p50 / p99 (ms) | ${fmt(med(ours.map((r) => r.p50)), 2)} / ${fmt(med(ours.map((r) => r.p99)), 2)} | ${fmt(med(theirs.map((r) => r.p50)), 2)} / ${fmt(med(theirs.map((r) => r.p99)), 2)} | | | |`,
  ];
}

interface Memory {
  idle: number;
  afterSearches: number;
  rss: number;
  peak: number;
}

function report(measured: Measured[], memory: Memory[], argon: string, slapdThreads: number, load: [number, number]): string {
  const [ours, slapd] = memory as [Memory, Memory];
  const [search, bind] = measured as [Measured, Measured];
  const searchRate = (i: number): number => spread(search.rounds.flatMap((row) => (row[i]?.result ? [rate(row[i].result)] : [])))?.median ?? NaN;
  const searchP99 = spread(search.rounds.flatMap((row) => (row[0]?.result ? [row[0].result.p99] : [])))?.median ?? NaN;
  const lines = [
    `Run ${new Date().toISOString().slice(0, 10)} on ${os.cpus().length} cores (\`nproc\` = ${spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()}), Node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'}; \`npm run bench:ldap\`.`,
    `1-minute load average at start / end: ${load[0].toFixed(1)} / ${load[1].toFixed(1)} (the machine is shared with other work: the wall-clock rates move with it, the CPU per operation much less).`,
    `${USERS.toLocaleString('en-US')} users in ${GROUPS} groups, ${CONNECTIONS} connections, closed loop, load generator in the same box (raw sockets, prebuilt BER).`,
    `Rounds interleaved (Hearth, slapd, Hearth, slapd, …): ${search.figure.rounds} of ${search.figure.seconds} s per server for searches, ${bind.figure.rounds} of ${bind.figure.seconds} s for binds, each after ${WARMUP_SECONDS} s of warm-up.`,
    'The ratio is the median and range of the per-round ratios; CPU per operation is the server process\'s user + system time over the timed part of the round (median of the rounds).',
    'Searches: the seed filter `(&(objectclass=user)(|(username=X)(mail=X)))` for random users, all user attributes, bound as the app.',
    `Binds: \`cn=<id>,ou=users,dc=cloudron\` for random users with the right password, one bind per request; both servers verify the same argon2 hash (${argon}).`,
    `Equal concurrency: Hearth runs at most ${slapdThreads} argon2 verifications at once (one per core, at least 2), so slapd runs with \`threads ${slapdThreads}\` (its default is 16) — both verify ${slapdThreads} passwords at a time.`,
    'slapd: Debian OpenLDAP 2.5, mdb backend, equality indexes on objectClass, uid, cn, mail, username, `loglevel 0`.',
    '',
    '| figure | Hearth (median) | slapd (median) | Hearth / slapd: median (range) | server CPU ms per op, Hearth / slapd | slapd CPU / Hearth CPU per op |',
    '|---|---|---|---|---|---|',
    ...rows(search, 0),
    ...rows(bind, 1),
    `| RSS idle with the data loaded (MiB) | ${fmt(ours.idle)} | ${fmt(slapd.idle)} | | | |`,
    `| RSS after searches (MiB) | ${fmt(ours.afterSearches)} | ${fmt(slapd.afterSearches)} | | | |`,
    `| RSS after binds / peak (MiB) | ${fmt(ours.rss)} / ${fmt(ours.peak)} | ${fmt(slapd.rss)} / ${fmt(slapd.peak)} | | | |`,
    '',
    `Targets (issue 3): searches ≥ 0.5× slapd — ${searchRate(0) >= 0.5 * searchRate(1) ? 'met' : 'NOT met'}; search p99 < 10 ms — ${searchP99 < 10 ? 'met' : 'NOT met'}; RSS < 250 MB — ${ours.peak < 250 ? 'met' : 'NOT met'} (peak ${fmt(ours.peak)} MiB).`,
    'Bind throughput is bounded by argon2 in both servers (each bind is one verification); Hearth also writes an audit row and resets the throttle counter per successful bind.',
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const dataDir = tempDir('hearth-ldap-bench-');
  const port = await freePort();
  const env: Record<string, string> = {
    HEARTH_DATA_DIR: dataDir,
    HEARTH_LDAP_PORT: String(port),
    HEARTH_LDAPS_PORT: String(await freePort()),
    HEARTH_LOG_LEVEL: 'info',
    HEARTH_LOG_FORMAT: 'json',
    // The daemon's defaults, stated so a developer's cheap test settings do not leak in.
    HEARTH_ARGON2_MEMORY_KIB: process.env.LDAP_BENCH_ARGON2_MEMORY_KIB ?? '19456',
    HEARTH_ARGON2_TIME_COST: process.env.LDAP_BENCH_ARGON2_TIME_COST ?? '2',
    HEARTH_ARGON2_PARALLELISM: '1',
    HEARTH_LOGIN_MAX_FAILURES_PER_ADDRESS: '1000000',
  };
  const { users, hash, argon } = await seedDirectory(dataDir, env);
  // Hearth's LDAP server verifies at most one password per core (at least 2) at once; slapd gets as many threads.
  const passwordChecks = Math.max(2, os.availableParallelism());
  let slapd: Awaited<ReturnType<typeof startSlapd>> | null = null;
  const daemon = await startDaemon('services/ldap/src/main.ts', env, (out) => out.includes('"msg":"ready"'), 60_000);
  let measured: Measured[] = [];
  try {
    slapd = await startSlapd(users, hash, passwordChecks);
    const targets: Target[] = [{ name: 'hearth', port, pid: daemon.child.pid! }, slapd.target];
    const load = os.loadavg()[0]!;
    const searches = users.map((u, i) => searchRequest(2, 'ou=users,dc=cloudron', 2, seedFilter(i % 2 ? u.username : u.email), []));
    const binds = users.map((u) => bindRequest(3, `cn=${u.id},ou=users,dc=cloudron`, PASSWORD));
    const pick = <T>(list: T[]): T => list[Math.floor(Math.random() * list.length)]!;
    const idle = targets.map((t) => memoryMiB(t.pid).rss);
    const afterSearches: number[] = [];
    measured = await measureAll(targets, [
      { label: 'searches/s', rounds: ROUNDS, seconds: SECONDS, run: (t) => timedRun(t, SECONDS, true, () => ({ pdu: pick(searches), expectEntries: 1 })) },
    ]);
    for (const t of targets) afterSearches.push(memoryMiB(t.pid).rss);
    measured.push(
      ...(await measureAll(targets, [
        { label: `binds/s (argon2, ${passwordChecks} at once)`, rounds: BIND_ROUNDS, seconds: BIND_SECONDS, run: (t) => timedRun(t, BIND_SECONDS, false, () => ({ pdu: pick(binds), expectEntries: -1 })) },
      ])),
    );
    const memory = targets.map((t, i) => ({ idle: idle[i]!, afterSearches: afterSearches[i]!, ...memoryMiB(t.pid) }));
    const body = report(measured, memory, argon, passwordChecks, [load, os.loadavg()[0]!]);
    console.log(body);
    const failed = measured.flatMap((m) => m.rounds.flat().filter((r) => r.error).map((r) => `${m.figure.label}, ${r.side}, round ${r.round}: ${r.error!.message}`));
    recordBenchmark('LDAP', body, failed, WRITE);
  } finally {
    await daemon.stop();
    if (slapd) {
      slapd.child.kill('SIGTERM');
      await new Promise((r) => slapd!.child.once('exit', r));
      fs.rmSync(slapd.dir, { recursive: true, force: true });
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
