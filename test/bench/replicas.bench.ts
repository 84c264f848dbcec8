/**
 * npm run bench:replicas — what a second replica buys on this machine: complete stacks (`npm start`
 * with LDAP, SMTP and OIDC) on 127.0.0.41 and 127.0.0.42 over one PostgreSQL database, one Redis
 * and one data folder, Debian's HAProxy on 127.0.0.40 in front (as test/two-stacks.test.ts).
 * Rounds interleave 1 replica (stack B taken out of HAProxy and stopped) and 2 replicas (B started
 * and put back), so other load on the shared machine falls on both alike. Per side and operation:
 *   - LDAP searches: CONNECTIONS connections through the balancer, each bound as an app, searching
 *     the seed filter for random users in a closed loop for SECONDS;
 *   - SMTP relay: Postfix's smtp-source sends MESSAGES messages of 4 KB over SESSIONS sessions through
 *     the balancer (HAProxy's address is a trusted network), timed until the queue is empty (relayed to smtp-sink);
 *   - OIDC code exchange: CODES codes minted over signed-in browser sessions, exchanged at /token from
 *     CLIENTS clients.
 * First the stacks' CPU over IDLE_SECONDS without traffic (what a replica costs by being there).
 * Each figure: operations per second, CPU per operation summed over the stacks' processes, HAProxy and
 * the PostgreSQL backends serving the bench's database (from /proc), the queue's database statements
 * per relayed message (hearth_smtp_queue_statements_total, every replica's), load average.
 * Then, with 2 replicas, the failover gap: client loops of each protocol (a new connection per
 * operation) run while stack A's whole process group is SIGKILLed; per protocol the longest time a
 * client went without a successful operation, and the operations that failed.
 * Knobs: BENCH_ROUNDS (3), BENCH_SECONDS (8), BENCH_MESSAGES (600), BENCH_CODES (300),
 * BENCH_FAILOVER_SECONDS (20), BENCH_WRITE=0. BENCHMARKS.md is written from a full-size run without failures.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { portEnvName, type PortName } from '@hearth/config';
import { Directory } from '@hearth/directory';
import {
  formatRatio,
  freePort,
  interleave,
  median,
  metricValue,
  recordBenchmark,
  ReplicaStacks,
  scrapeMetrics,
  spread,
  stackPorts,
  startBalancer,
  testEnv,
  treeCpuSeconds,
  waitFor,
  type Balancer,
  type RoundResult,
} from '@hearth/testkit';
import { OP } from '../../services/ldap/src/protocol.ts';
import { bindRequest, searchRequest, seedFilter, WireClient } from '../../services/ldap/test/wire-client.ts';
import { addOidcApp, Browser, formOf, PASSWORD } from '../../services/oidc/test/helpers.ts';
import { portAccepts } from '../../services/supervisor/src/services.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 600);
const CODES = Number(process.env.BENCH_CODES ?? 300);
const FAILOVER_SECONDS = Number(process.env.BENCH_FAILOVER_SECONDS ?? 20);
const WRITE = process.env.BENCH_WRITE !== '0' && ROUNDS >= 3 && MESSAGES >= 600 && CODES >= 300;
const CONNECTIONS = 8;
const SESSIONS = 10;
const CLIENTS = 8;
const USERS = 200;
/** client loops per protocol while a replica dies */
const FAILOVER_LOOPS = 2;
/** seconds of no traffic per side, for the stacks' idle CPU */
const IDLE_SECONDS = 5;

const BALANCER = '127.0.0.40';
const STACKS = ['127.0.0.41', '127.0.0.42'] as const;
const SINK = '127.0.0.43';
const PORTS: PortName[] = ['ldap', 'smtp', 'oidc'];
const LDAP_APP = { id: 'wiki', dn: 'cn=wiki,ou=apps,dc=cloudron', password: 'wiki-ldap-secret' };

const log = (line: string): void => void process.stderr.write(`${line}\n`);

interface Figure {
  rate: number;
  /** CPU ms per operation: Hearth's stacks, and everything (stacks + HAProxy + PostgreSQL backends) */
  hearthMs: number;
  allMs: number;
  errors: number;
}

interface SideResult {
  /** the stacks' CPU ms per second with no client traffic: what a replica costs by being there */
  idleMs: number;
  ldap: Figure;
  smtp: Figure & { statements: number };
  oidc: Figure;
}

// ---------- setup ----------

for (const tool of ['haproxy', 'smtp-source', 'smtp-sink']) if (spawnSync('which', [tool]).status !== 0) throw new Error(`${tool} not found (Debian: haproxy, postfix)`);
const loadStart = os.loadavg();
const sinkPort = await freePort();
const ports = await stackPorts();
// the balancer's address is the issuer every replica announces
const issuer = `http://${BALANCER}:${ports[portEnvName('oidc')]}`;
const t = await testEnv({
  backend: 'postgres',
  env: {
    ...ports,
    HEARTH_SERVICES: 'ldap,smtp,oidc',
    HEARTH_REDIS_URL: 'redis://127.0.0.1:6379',
    HEARTH_OIDC_ISSUER: issuer,
    HEARTH_SMTP_RELAY: `smtp://${SINK}:${sinkPort}`,
    // every client comes from HAProxy's address: it may relay, and no per-address limit counts them all together
    HEARTH_SMTP_TRUSTED_NETWORKS: `${BALANCER}/32`,
    HEARTH_TRUSTED_PROXIES: `${BALANCER}/32`,
    HEARTH_SMTP_RATE_PER_IP: '0',
    HEARTH_SMTP_RATE_PER_SENDER: '0',
    HEARTH_SMTP_MAX_CONNECTIONS_PER_ADDRESS: '500',
    HEARTH_LOG_LEVEL: 'warn',
  },
});
const env = t.env;
const sink = spawn('smtp-sink', ['-u', 'nobody', `${SINK}:${sinkPort}`, '1024'], { stdio: 'ignore' });
const db = new pg.Client({ connectionString: env.HEARTH_DATABASE_URL });
await db.connect();
const stacks = new ReplicaStacks(env, PORTS, t.dataDir, portAccepts);
let balancer: Balancer | undefined;

const directory = await Directory.open(t.config);
const users: { username: string; id: string }[] = [];
for (let i = 0; i < USERS; i++) {
  const u = await directory.addUser({ username: `user${i}`, email: `user${i}@example.test`, password: PASSWORD, displayName: `User ${i}` });
  users.push({ username: u.username, id: u.id });
}
const app = await addOidcApp(directory, 'bench', { loginRedirectUri: '/cb' });
// apps search the directory (a user sees only its own entry)
await directory.putApp({ id: LDAP_APP.id, domain: 'wiki.example.test', manifest: { addons: { ldap: {} } }, access: null, upstream: null, credentials: { ldap: { bindDn: LDAP_APP.dn, bindPassword: LDAP_APP.password } }, createdAt: new Date().toISOString() }, []);
await directory.close();

// ---------- measuring ----------

/** CPU seconds of the server processes now: each live stack's tree, HAProxy, and the PostgreSQL backends of our database (by pid). */
async function cpuNow(): Promise<{ hearth: number; haproxy: number; postgres: Map<number, number> }> {
  let hearth = 0;
  for (const s of STACKS) {
    const pid = stacks.pid(s);
    if (pid && fs.existsSync(`/proc/${pid}`)) hearth += treeCpuSeconds(pid);
  }
  const postgres = new Map<number, number>();
  for (const { pid } of (await db.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database()')).rows) {
    try {
      postgres.set(pid, treeCpuSeconds(pid));
    } catch {
      // ended meanwhile
    }
  }
  return { hearth, haproxy: balancer?.proc.pid ? treeCpuSeconds(balancer.proc.pid) : 0, postgres };
}

/** CPU ms per operation between two cpuNow() looks; a backend gone by the second look is missed (the pools keep theirs). */
function cpuPerOp(a: Awaited<ReturnType<typeof cpuNow>>, b: Awaited<ReturnType<typeof cpuNow>>, ops: number): { hearthMs: number; allMs: number } {
  let pgSeconds = 0;
  for (const [pid, s] of b.postgres) pgSeconds += s - (a.postgres.get(pid) ?? 0);
  const hearth = b.hearth - a.hearth;
  const all = hearth + (b.haproxy - a.haproxy) + pgSeconds;
  return { hearthMs: (hearth * 1000) / Math.max(1, ops), allMs: (all * 1000) / Math.max(1, ops) };
}

const ldapPort = Number(env[portEnvName('ldap')]);
const smtpPort = Number(env[portEnvName('smtp')]);
const searchFor = (i: number): Buffer => searchRequest(2, 'ou=users,dc=cloudron', 2, seedFilter(users[i % USERS]!.username), ['mail']);

/** A connection bound as the app; null when the bind failed. */
async function ldapSession(): Promise<WireClient | null> {
  const c = await WireClient.connect(ldapPort, BALANCER);
  c.send(bindRequest(1, LDAP_APP.dn, LDAP_APP.password));
  const r = await c.next();
  if (r?.code !== 0) {
    c.socket.destroy();
    return null;
  }
  return c;
}

/** One search on a bound connection: its one entry and success. */
async function ldapSearch(c: WireClient, i: number): Promise<boolean> {
  c.send(searchFor(i));
  const replies = await c.untilDone();
  return replies !== null && replies.length === 2 && replies[0]!.tag === OP.searchResultEntry && replies[1]!.code === 0;
}

async function ldapPhase(): Promise<Figure> {
  const conns = (await Promise.all(Array.from({ length: CONNECTIONS }, () => ldapSession()))).filter((c): c is WireClient => c !== null);
  if (conns.length < CONNECTIONS) throw new Error(`LDAP: ${CONNECTIONS - conns.length} binds failed`);
  let ops = 0;
  let errors = 0;
  const cpu0 = await cpuNow();
  const start = performance.now();
  const end = start + SECONDS * 1000;
  await Promise.all(
    conns.map(async (c, n) => {
      for (let i = n; performance.now() < end; i += CONNECTIONS) {
        if (await ldapSearch(c, i)) ops++;
        else errors++;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const cpu1 = await cpuNow();
  for (const c of conns) c.socket.destroy();
  return { rate: ops / seconds, errors, ...cpuPerOp(cpu0, cpu1, ops) };
}

const queued = async (): Promise<number> => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM smtp_queue')).rows[0]!.n);

/** hearth_smtp_queue_statements_total summed over the replicas up now (each from its own metrics port). */
async function queueStatements(addresses: readonly string[]): Promise<number> {
  let n = 0;
  for (const a of addresses) n += metricValue(await scrapeMetrics(`http://${a}:${env[portEnvName('smtpMetrics')]}/metrics`), 'hearth_smtp_queue_statements_total');
  return n;
}

async function smtpPhase(live: readonly string[]): Promise<Figure & { statements: number }> {
  const statements0 = await queueStatements(live);
  const cpu0 = await cpuNow();
  const start = performance.now();
  const source = spawn('smtp-source', ['-s', String(SESSIONS), '-m', String(MESSAGES), '-l', '4096', '-d', '-f', 'sender@remote.test', '-t', 'someone@remote.test', `${BALANCER}:${smtpPort}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  source.stderr!.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((r) => source.on('exit', r));
  if (code !== 0) throw new Error(`smtp-source exited with ${code}: ${stderr.slice(-500)}`);
  await waitFor(async () => (await queued()) === 0, 600_000, 100);
  const seconds = (performance.now() - start) / 1000;
  const cpu1 = await cpuNow();
  const statements = (await queueStatements(live)) - statements0;
  return { rate: MESSAGES / seconds, errors: 0, ...cpuPerOp(cpu0, cpu1, MESSAGES), statements: statements / MESSAGES };
}

const verifier = randomBytes(32).toString('base64url');
const challenge = createHash('sha256').update(verifier).digest('base64url');
const basic = `Basic ${Buffer.from(`${app.clientId}:${app.clientSecret}`).toString('base64')}`;

/** Browsers signed in through the balancer (sessions in Redis: any replica knows them). */
async function signedIn(n: number): Promise<Browser[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, w) => {
      const b = new Browser(issuer);
      const page = await b.go(authUrl());
      const form = formOf(await page.res.text(), '/login');
      const r = await b.postForm(form.action, { ...form.fields, login: users[w]!.username, password: PASSWORD });
      if (!r.leftTo?.searchParams.get('code')) throw new Error(`sign-in of ${users[w]!.username} gave no code (${r.res.status})`);
      return b;
    }),
  );
}

function authUrl(): string {
  const u = new URL('/auth', issuer);
  u.search = new URLSearchParams({ client_id: app.clientId, response_type: 'code', scope: 'openid profile email', redirect_uri: app.redirectUri, code_challenge: challenge, code_challenge_method: 'S256', state: randomBytes(8).toString('hex') }).toString();
  return u.href;
}

async function mint(browsers: Browser[], n: number): Promise<string[]> {
  const codes: string[] = [];
  let asked = 0;
  await Promise.all(
    browsers.map(async (b) => {
      while (asked < n) {
        asked++;
        const code = (await b.go(authUrl())).leftTo?.searchParams.get('code');
        if (!code) throw new Error('no code minted');
        codes.push(code);
      }
    }),
  );
  return codes;
}

async function exchange(code: string): Promise<boolean> {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: app.redirectUri, code_verifier: verifier }).toString(),
  });
  const json = (await res.json()) as { id_token?: string };
  return res.status === 200 && typeof json.id_token === 'string';
}

async function oidcPhase(): Promise<Figure> {
  const codes = await mint(await signedIn(CLIENTS), CODES);
  let ops = 0;
  let errors = 0;
  const cpu0 = await cpuNow();
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      for (let code = codes.pop(); code !== undefined; code = codes.pop()) {
        if (await exchange(code).catch(() => false)) ops++;
        else errors++;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const cpu1 = await cpuNow();
  return { rate: ops / seconds, errors, ...cpuPerOp(cpu0, cpu1, ops) };
}

// ---------- one replica or two ----------

/** HAProxy's view: whether server sN is UP in every backend. */
async function inRotation(n: number): Promise<boolean> {
  const csv = (await balancer!.command('show stat')).split('\n');
  const header = csv[0]!.replace(/^# /, '').split(',');
  const status = header.indexOf('status');
  const rows = csv.slice(1).map((l) => l.split(',')).filter((f) => f[1] === `s${n}`);
  return rows.length === PORTS.length && rows.every((f) => f[status] === 'UP');
}

async function setReplicas(n: 1 | 2): Promise<void> {
  const b = STACKS[1];
  if (n === 1) {
    // out of rotation first, so no client is cut off, then stopped: its queue must not deliver beside A
    for (const p of PORTS) await balancer!.command(`disable server ${p}/s1`);
    await stacks.stop(b);
  } else if (!(await stacks.up(b))) {
    stacks.start(b);
    await stacks.waitUp([b]);
    for (const p of PORTS) await balancer!.command(`enable server ${p}/s1`);
    await waitFor(() => inRotation(1), 60_000, 200);
  }
}

/** The stacks' CPU over IDLE_SECONDS without clients, in ms per second. */
async function idle(): Promise<number> {
  const a = await cpuNow();
  await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
  const b = await cpuNow();
  return ((b.hearth - a.hearth) * 1000) / IDLE_SECONDS;
}

async function side(n: 1 | 2): Promise<SideResult> {
  await setReplicas(n);
  const live = STACKS.slice(0, n);
  const idleMs = await idle();
  log(`  ${n} replica(s): idle ${idleMs.toFixed(1)} ms CPU per second`);
  const ldap = await ldapPhase();
  log(`  ${n} replica(s): LDAP ${ldap.rate.toFixed(0)} searches/s, ${ldap.hearthMs.toFixed(2)} ms Hearth CPU/op`);
  const smtp = await smtpPhase(live);
  log(`  ${n} replica(s): SMTP ${smtp.rate.toFixed(0)} relayed msgs/s, ${smtp.hearthMs.toFixed(2)} ms Hearth CPU/msg, ${smtp.statements.toFixed(2)} queue statements/msg`);
  const oidc = await oidcPhase();
  log(`  ${n} replica(s): OIDC ${oidc.rate.toFixed(0)} code exchanges/s, ${oidc.hearthMs.toFixed(2)} ms Hearth CPU/op`);
  return { idleMs, ldap, smtp, oidc };
}

// ---------- failover ----------

/** One SMTP transaction on a new connection: true when the message was accepted (250 after the data). */
function smtpOnce(i: number): Promise<boolean> {
  return new Promise((resolve) => {
    const steps = [`EHLO bench.test`, 'MAIL FROM:<sender@remote.test>', 'RCPT TO:<someone@remote.test>', 'DATA', `Subject: failover-${i}\r\n\r\nbody\r\n.`, 'QUIT'];
    const expect = [220, 250, 250, 250, 354, 250];
    const s = net.connect({ host: BALANCER, port: smtpPort });
    let buf = '';
    let step = 0;
    let accepted = false;
    const done = (): void => {
      s.destroy();
      resolve(accepted);
    };
    s.setTimeout(15_000, done);
    s.on('error', done);
    s.on('close', done);
    s.on('data', (d) => {
      buf += d;
      // a complete reply: its last line has a space after the code
      for (let m = /^(\d{3}) [^\n]*\n/m.exec(buf); m; m = /^(\d{3}) [^\n]*\n/m.exec(buf)) {
        buf = buf.slice(m.index + m[0].length);
        if (Number(m[1]) !== expect[step]) return done();
        if (step === 5) accepted = true;
        if (step === steps.length) return done();
        s.write(`${steps[step]}\r\n`);
        step++;
      }
    });
  });
}

async function ldapOnce(i: number): Promise<boolean> {
  const c = await ldapSession().catch(() => null);
  if (!c) return false;
  try {
    return await ldapSearch(c, i);
  } finally {
    c.socket.destroy();
  }
}

interface Gap {
  /** the longest time one client loop went without a success, from the last success before the kill */
  longest: number;
  /** a typical time between successes before the kill */
  usual: number;
  failed: number;
  ok: number;
}

async function failover(): Promise<Record<'ldap' | 'smtp' | 'oidc', Gap>> {
  await setReplicas(2);
  const codes = await mint(await signedIn(FAILOVER_LOOPS), 2000);
  const killAt = performance.now() + (FAILOVER_SECONDS * 1000) / 4;
  const end = performance.now() + FAILOVER_SECONDS * 1000;
  const killer = (async () => {
    await new Promise((r) => setTimeout(r, killAt - performance.now()));
    log(`  SIGKILL to stack ${STACKS[0]}`);
    stacks.kill(STACKS[0]);
  })();
  const loop = async (op: (i: number) => Promise<boolean>): Promise<{ successes: number[]; failed: number }> => {
    const successes: number[] = [];
    let failed = 0;
    for (let i = 0; performance.now() < end; i++) {
      if (await op(i).catch(() => false)) successes.push(performance.now());
      else {
        failed++;
        // as a client would, a moment before trying again
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return { successes, failed };
  };
  const ops = {
    ldap: ldapOnce,
    smtp: smtpOnce,
    oidc: async () => {
      const code = codes.pop();
      return code !== undefined && exchange(code);
    },
  };
  const results = await Promise.all(Object.entries(ops).map(async ([name, op]) => [name, await Promise.all(Array.from({ length: FAILOVER_LOOPS }, () => loop(op)))] as const));
  await killer;
  const out = {} as Record<'ldap' | 'smtp' | 'oidc', Gap>;
  for (const [name, loops] of results) {
    let longest = 0;
    const usual: number[] = [];
    for (const { successes } of loops) {
      const before = successes.filter((x) => x <= killAt);
      for (let i = 1; i < before.length; i++) usual.push(before[i]! - before[i - 1]!);
      // from this loop's last success before the kill, through each success after it, to the end when none came
      let previous = before.at(-1) ?? killAt;
      const after = successes.filter((x) => x > killAt);
      for (const x of after) {
        longest = Math.max(longest, x - previous);
        previous = x;
      }
      if (after.length === 0) longest = Math.max(longest, end - previous);
    }
    out[name as 'ldap' | 'smtp' | 'oidc'] = { longest: longest / 1000, usual: median(usual) / 1000, failed: loops.reduce((n, l) => n + l.failed, 0), ok: loops.reduce((n, l) => n + l.successes.length, 0) };
  }
  return out;
}

// ---------- the run ----------

const failures: string[] = [];
let body = '';
try {
  stacks.start(STACKS[0]);
  stacks.start(STACKS[1]);
  await stacks.waitUp(STACKS);
  balancer = await startBalancer({ address: BALANCER, stacks: STACKS, env, ports: PORTS, http: ['oidc'], dir: t.dataDir, probe: portAccepts });
  await waitFor(async () => (await inRotation(0)) && (await inRotation(1)), 60_000, 200);
  log(`stacks up; ${ROUNDS} rounds of 1 and 2 replicas`);
  const rounds = await interleave<SideResult>(
    [
      { name: '1 replica', run: () => side(1) },
      { name: '2 replicas', run: () => side(2) },
    ],
    ROUNDS,
    log,
  );
  for (const r of rounds.flat()) {
    if (r.error) failures.push(`round ${r.round}, ${r.side}: ${r.error.message}`);
    for (const [op, f] of Object.entries(r.result ?? {})) if (typeof f === 'object' && f.errors > 0) failures.push(`round ${r.round}, ${r.side}: ${f.errors} failed ${op} operations`);
  }
  log('failover: 2 replicas, one killed while clients loop');
  const gaps = await failover();
  body = report(rounds, gaps);
  process.stdout.write(`${body}\n`);
} catch (err) {
  failures.push((err as Error).stack ?? String(err));
} finally {
  stacks.killAll();
  balancer?.stop();
  sink.kill();
  await db.end();
  await t.cleanup();
}
recordBenchmark('Replicas behind HAProxy', body, failures, WRITE);

function report(rounds: RoundResult<SideResult>[][], gaps: Record<'ldap' | 'smtp' | 'oidc', Gap>): string {
  const full = rounds.filter((row) => row.every((r) => r.result));
  const one = (op: 'ldap' | 'smtp' | 'oidc', k: keyof Figure): string => {
    const v = spread(full.map((row) => row[0]!.result![op][k]));
    const w = spread(full.map((row) => row[1]!.result![op][k]));
    return `${v?.median.toFixed(k === 'rate' ? 0 : 2) ?? '–'} | ${w?.median.toFixed(k === 'rate' ? 0 : 2) ?? '–'} | ${formatRatio(spread(full.map((row) => row[1]!.result![op][k] / row[0]!.result![op][k])))}`;
  };
  const loads = rounds.flat().flatMap((r) => r.load);
  const statements = (i: number): string => spread(full.map((row) => row[i]!.result!.smtp.statements))?.median.toFixed(2) ?? '–';
  const names = { ldap: 'LDAP search (app bind, seed filter)', smtp: 'SMTP relay (4 KB, queue → smtp-sink)', oidc: 'OIDC code exchange (RS256 ID token)' } as const;
  const idleRow = `| no traffic: the stacks' CPU ms per second | ${[0, 1].map((i) => spread(full.map((row) => row[i]!.result!.idleMs))?.median.toFixed(1) ?? '–').join(' | ')} | ${formatRatio(spread(full.map((row) => row[1]!.result!.idleMs / row[0]!.result!.idleMs)))} |`;
  const rows = (Object.keys(names) as (keyof typeof names)[]).flatMap((op) => [
    `| ${names[op]}: per second | ${one(op, 'rate')} |`,
    `| ${names[op]}: Hearth CPU ms per op | ${one(op, 'hearthMs')} |`,
    `| ${names[op]}: all servers' CPU ms per op | ${one(op, 'allMs')} |`,
  ]);
  const gapRow = (op: keyof typeof gaps): string => `| ${names[op]} | ${gaps[op].longest.toFixed(2)} | ${gaps[op].usual.toFixed(3)} | ${gaps[op].failed} | ${gaps[op].ok} |`;
  return [
    `Run ${new Date().toISOString().slice(0, 10)} on ${os.availableParallelism()} cores (\`nproc\` = ${os.availableParallelism()}), Node ${process.version}; load average (1/5/15 min) at the start ${loadStart.map((l) => l.toFixed(1)).join(' / ')}, per run ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}, at the end ${os.loadavg().map((l) => l.toFixed(1)).join(' / ')}.`,
    'The machine is shared with other helpers\' builds and tests while this runs: rates move with their load; the CPU per operation (from /proc) does not.',
    '',
    `\`npm run bench:replicas\`: complete stacks (\`npm start\` with LDAP, SMTP, OIDC) on ${STACKS.join(' and ')} over one PostgreSQL database, one Redis and one data folder, Debian's HAProxy on ${BALANCER} in front`,
    `(round robin; a check every 500 ms). ${full.length} interleaved rounds (1 replica: stack B out of rotation and stopped; 2 replicas: B started and back in rotation), clients on the same machine:`,
    `LDAP ${CONNECTIONS} connections bound as an app, searching ${USERS} users for ${SECONDS} s; SMTP smtp-source, ${MESSAGES} messages over ${SESSIONS} sessions, timed until the queue is empty; OIDC ${CODES} codes exchanged by ${CLIENTS} clients.`,
    '"All servers" adds HAProxy and the PostgreSQL backends of the bench\'s database to the stacks (every supervisor and daemon process); Redis is shared with other tests here and not counted.',
    '',
    '| operation | 1 replica (median) | 2 replicas (median) | 2 / 1, median (range, rounds) |',
    '|---|---|---|---|',
    idleRow,
    ...rows,
    '',
    'Why a second replica gains little here: both replicas, HAProxy, PostgreSQL, Redis and the load generators share the same 2 cores (with other helpers\' work),',
    'so a second replica adds processes competing for them, not capacity. It can only help where one replica is held back by something other than the cores: its one',
    'JavaScript thread per daemon, or waits (database round trips, the relay\'s SMTP turns). The second replica also costs: each queued message is announced to it',
    '(NOTIFY) and it claims when idle, a round trip that may find nothing; the statements per message below show that. Read the CPU per operation across runs;',
    'the rates move with the machine\'s other load. On machines with cores to spare per replica (what the deployment recipes are for) the rates are what changes.',
    '',
    `Coordination per relayed message: ${statements(0)} queue statements (round trips to PostgreSQL, \`hearth_smtp_queue_statements_total\` summed over the replicas) with 1 replica, ${statements(1)} with 2 (median of the rounds).`,
    '',
    `Failover: with 2 replicas, ${FAILOVER_LOOPS} client loops per protocol through HAProxy (a new connection per operation; OIDC: one code exchange per operation) for ${FAILOVER_SECONDS} s, stack ${STACKS[0]}'s whole process group SIGKILLed after ${FAILOVER_SECONDS / 4} s, not restarted.`,
    '',
    '| protocol | seconds without a success (longest, one loop) | usual seconds between successes | failed operations | successful operations |',
    '|---|---|---|---|---|',
    gapRow('ldap'),
    gapRow('smtp'),
    gapRow('oidc'),
    '',
    'The gap is HAProxy\'s: an operation in flight on the killed replica fails (its connection is reset), new connections to it fail and are sent to the live',
    'one (`option redispatch`, `retries 3`; for HTTP `retry-on conn-failure`), and the next check (every 500 ms, out after one failure) takes it out of rotation.',
  ].join('\n');
}
