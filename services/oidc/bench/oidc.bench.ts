/**
 * OIDC provider benchmark (`npm run bench:oidc`).
 *
 * Hearth's daemon (services/oidc/src/main.ts, one process, default SQLite store, audit on) against a
 * bare node-oidc-provider (bench/reference-provider.ts: the same library and version, configured alike,
 * with the library's in-memory adapter, made large enough), in interleaved rounds (Hearth, reference, Hearth, …). Each round
 * runs, from CLIENTS closed-loop clients on the same machine:
 *   - code exchanges: POST /token for codes minted beforehand over signed-in sessions (RS256 and EdDSA clients);
 *   - refresh grants: a rotating refresh token chain per client;
 *   - userinfo: GET /me with a bearer token.
 * The ratio (median and range of the per-round ratios) is Hearth's own cost (directory, audit, store,
 * middleware) over the library's; the server CPU per operation comes from /proc and does not depend on
 * what else the machine runs. Complete logins (form + argon2 password check + code + token) have no
 * counterpart in the reference and are measured for Hearth alone, beside this machine's argon2id rate.
 * A failed round or phase is named and the bench exits 1 without writing; results go to the "OIDC"
 * section of BENCHMARKS.md.
 * Knobs: OIDC_BENCH_ROUNDS (3), OIDC_BENCH_CLIENTS (16), OIDC_BENCH_SECONDS (5), OIDC_BENCH_CODES (2000),
 * OIDC_BENCH_HOST (listen address, 127.0.0.1), OIDC_BENCH_WRITE=0.
 */
import { spawn } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '@hearth/config';
import { Directory, PasswordHasher } from '@hearth/directory';
import { cpuSeconds, formatRatio, freePort, interleave, median, percentile, recordBenchmark, REPO_ROOT, spread, startDaemon, tempDir } from '@hearth/testkit';
import { userClaims } from '../src/account.ts';
import { Browser, formOf, PASSWORD } from '../test/helpers.ts';

const ROUNDS = Number(process.env.OIDC_BENCH_ROUNDS ?? 3);
const CLIENTS = Number(process.env.OIDC_BENCH_CLIENTS ?? 16);
const SECONDS = Number(process.env.OIDC_BENCH_SECONDS ?? 5);
const CODES = Number(process.env.OIDC_BENCH_CODES ?? 2000);
const CODE_BATCH = 250;
const HOST = process.env.OIDC_BENCH_HOST ?? '127.0.0.1';
const ARGON2 = { memoryCost: 19456, timeCost: 2, parallelism: 1 };
/** BENCHMARKS.md is rewritten only from a run without errors (OIDC_BENCH_WRITE=0 never). */
const WRITE = process.env.OIDC_BENCH_WRITE !== '0';

const log = (msg: string): void => void process.stderr.write(`${msg}\n`);

interface Stats {
  count: number;
  errors: number;
  seconds: number;
  rate: number;
  p50: number;
  p99: number;
  /** the server's CPU time (user + system) per operation, ms */
  cpuMs: number;
}

/** What closed loops have measured so far (an exchange phase adds one loop per batch of codes). */
interface Tally {
  latencies: number[];
  errors: number;
  seconds: number;
  /** server CPU seconds */
  cpu: number;
}

const newTally = (): Tally => ({ latencies: [], errors: 0, seconds: 0, cpu: 0 });

function statsOf(t: Tally): Stats {
  const sorted = [...t.latencies].sort((a, b) => a - b);
  return { count: sorted.length, errors: t.errors, seconds: t.seconds, rate: sorted.length / t.seconds, p50: percentile(sorted, 50), p99: percentile(sorted, 99), cpuMs: (t.cpu * 1000) / Math.max(1, sorted.length) };
}

/** Runs `op` in CLIENTS closed loops until `until()` says stop, adding to `tally`; the server's CPU is read from /proc around it. */
async function closedLoop(pid: number, op: (worker: number) => Promise<boolean>, until: () => boolean, tally = newTally()): Promise<Stats> {
  const started = performance.now();
  const cpu0 = cpuSeconds(pid, true);
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, w) => {
      while (!until()) {
        const t = performance.now();
        const ok = await op(w).catch(() => false);
        if (ok) tally.latencies.push(performance.now() - t);
        else tally.errors++;
      }
    }),
  );
  tally.seconds += (performance.now() - started) / 1000;
  tally.cpu += cpuSeconds(pid, true) - cpu0;
  return statsOf(tally);
}

const forSeconds = (s: number): (() => boolean) => {
  const end = performance.now() + s * 1000;
  return () => performance.now() >= end;
};

/** Signatures/s with node's crypto on one thread (both servers sign on their one JS thread). */
function signaturesPerSecond(kind: 'rsa' | 'ed25519'): number {
  const { privateKey } = kind === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
  const data = randomBytes(600);
  const alg = kind === 'rsa' ? 'sha256' : null;
  for (let i = 0; i < 50; i++) sign(alg, data, privateKey);
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < 2000) {
    sign(alg, data, privateKey);
    n++;
  }
  return n / ((performance.now() - start) / 1000);
}

async function argon2PerSecond(): Promise<number> {
  const hasher = new PasswordHasher(ARGON2);
  const hash = await hasher.hash(PASSWORD);
  let n = 0;
  const stop = forSeconds(3);
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (!stop()) {
        await hasher.verify(hash, PASSWORD);
        n++;
      }
    }),
  );
  return n / ((performance.now() - start) / 1000);
}

interface BenchApp {
  alg: 'RS256' | 'EdDSA';
  id: string;
  clientId: string;
  secret: string;
}

const redirectUri = (a: BenchApp): string => `https://${a.id}.example.test/cb`;

/** One server under test: where it listens, which process to charge, and how a bench browser signs in there. */
interface Server {
  name: string;
  issuer: string;
  pid: number;
  /** extra authorization request parameters (the reference's stand-in sign-in reads login_hint) */
  authParams: (worker: number) => Record<string, string>;
  /** signs browser `worker` in; returns where the last redirect left to (the app, with a code) */
  signIn: (b: Browser, url: string, worker: number) => Promise<URL | null>;
}

interface RoundResults {
  exchanges: Record<BenchApp['alg'], Stats>;
  refreshes: Stats;
  userinfo: Stats;
}

const verifier = randomBytes(32).toString('base64url');
const challenge = createHash('sha256').update(verifier).digest('base64url');

function authUrl(server: Server, a: BenchApp, scope: string, worker: number): string {
  const u = new URL('/auth', server.issuer);
  u.search = new URLSearchParams({ client_id: a.clientId, response_type: 'code', scope, redirect_uri: redirectUri(a), code_challenge: challenge, code_challenge_method: 'S256', state: randomBytes(8).toString('hex'), ...server.authParams(worker) }).toString();
  return u.href;
}

const basic = (a: BenchApp): string => `Basic ${Buffer.from(`${a.clientId}:${a.secret}`).toString('base64')}`;

async function tokenRequest(server: Server, a: BenchApp, body: Record<string, string>): Promise<Record<string, string> | null> {
  const res = await fetch(`${server.issuer}/token`, { method: 'POST', headers: { authorization: basic(a), 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body).toString() });
  const json = (await res.json()) as Record<string, string>;
  return res.status === 200 ? json : null;
}

const exchange = (server: Server, a: BenchApp, code: string): Promise<Record<string, string> | null> =>
  tokenRequest(server, a, { grant_type: 'authorization_code', code, redirect_uri: redirectUri(a), code_verifier: verifier });

/** One round against one server: code exchanges (codes minted first, untimed), refresh grants, userinfo. */
async function runRound(server: Server, apps: BenchApp[]): Promise<RoundResults> {
  const browsers: Browser[] = [];
  for (let w = 0; w < CLIENTS; w++) {
    const b = new Browser(server.issuer);
    await server.signIn(b, authUrl(server, apps[0]!, 'openid', w), w);
    browsers.push(b);
  }
  const mint = async (a: BenchApp, n: number, scope: string): Promise<string[]> => {
    const codes: string[] = [];
    await Promise.all(
      browsers.map(async (b, w) => {
        while (codes.length < n) {
          const r = await b.go(authUrl(server, a, scope, w));
          const code = r.leftTo?.searchParams.get('code');
          if (!code) throw new Error(`${server.name}: no code minted (${r.res.status})`);
          codes.push(code);
        }
      }),
    );
    return codes;
  };

  const exchanges = {} as Record<BenchApp['alg'], Stats>;
  for (const a of apps) {
    log(`${server.name}: ${CODES} codes for the ${a.alg} client, minted and exchanged from ${CLIENTS} clients in batches of up to ${CODE_BATCH}`);
    const tally = newTally();
    for (let done = 0; done < CODES; done += CODE_BATCH) {
      // Codes live 60 s: a batch is exchanged while it is fresh, however slowly a loaded machine mints.
      const codes = await mint(a, Math.min(CODE_BATCH, CODES - done), 'openid profile email');
      exchanges[a.alg] = await closedLoop(
        server.pid,
        async () => {
          const code = codes.pop();
          return code !== undefined && (await exchange(server, a, code)) !== null;
        },
        () => codes.length === 0,
        tally,
      );
    }
  }

  log(`${server.name}: refresh grants for ${SECONDS} s`);
  const rs = apps[0]!;
  const chains: string[] = [];
  const accessTokens: string[] = [];
  for (let w = 0; w < CLIENTS; w++) {
    const r = await browsers[w]!.go(authUrl(server, rs, 'openid profile email offline_access', w));
    const t = await exchange(server, rs, r.leftTo?.searchParams.get('code') ?? '');
    if (!t?.refresh_token || !t.access_token) throw new Error(`${server.name}: no refresh token issued`);
    chains.push(t.refresh_token);
    accessTokens.push(t.access_token);
  }
  const refreshes = await closedLoop(
    server.pid,
    async (w) => {
      const t = await tokenRequest(server, rs, { grant_type: 'refresh_token', refresh_token: chains[w]! });
      if (!t) return false;
      chains[w] = t.refresh_token!;
      accessTokens[w] = t.access_token!;
      return true;
    },
    forSeconds(SECONDS),
  );

  log(`${server.name}: userinfo for ${SECONDS} s`);
  const userinfo = await closedLoop(
    server.pid,
    async (w) => {
      const res = await fetch(`${server.issuer}/me`, { headers: { authorization: `Bearer ${accessTokens[w]}` } });
      await res.arrayBuffer();
      return res.status === 200;
    },
    forSeconds(SECONDS),
  );
  return { exchanges, refreshes, userinfo };
}

/** Complete logins against Hearth alone (the reference has no password check to compare with). */
async function hearthLogins(server: Server, rs: BenchApp): Promise<Stats> {
  return closedLoop(
    server.pid,
    async (w) => {
      const b = new Browser(server.issuer);
      const page = await b.go(authUrl(server, rs, 'openid profile email', w));
      const form = formOf(await page.res.text(), '/login');
      const r = await b.postForm(form.action, { ...form.fields, login: `user${w}`, password: PASSWORD });
      const code = r.leftTo?.searchParams.get('code');
      return code ? (await exchange(server, rs, code)) !== null : false;
    },
    forSeconds(SECONDS),
  );
}

async function main(): Promise<void> {
  const dataDir = tempDir('hearth-oidc-bench-');
  const port = await freePort();
  const issuer = `http://${HOST}:${port}`;
  const env: Record<string, string> = {
    HEARTH_DATA_DIR: dataDir,
    HEARTH_LISTEN: HOST,
    HEARTH_OIDC_PORT: String(port),
    HEARTH_OIDC_ISSUER: issuer,
    // one process, as the reference is
    HEARTH_OIDC_WORKERS: '1',
    HEARTH_LOG_LEVEL: 'info',
    HEARTH_LOG_FORMAT: 'json',
    // The daemon's defaults, stated so a developer's cheap test settings do not leak in.
    HEARTH_ARGON2_MEMORY_KIB: String(ARGON2.memoryCost),
    HEARTH_ARGON2_TIME_COST: String(ARGON2.timeCost),
    HEARTH_ARGON2_PARALLELISM: String(ARGON2.parallelism),
  };
  const config = loadConfig({ ...process.env, ...env });

  log('seeding users and apps');
  const directory = await Directory.open(config);
  const accounts: Record<string, unknown> = {};
  const userIds: string[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const user = await directory.addUser({ username: `user${i}`, email: `user${i}@example.test`, password: PASSWORD, displayName: `Bench User ${i}` });
    userIds.push(user.id);
  }
  const apps: BenchApp[] = (['RS256', 'EdDSA'] as const).map((alg) => ({ alg, id: `bench-${alg.toLowerCase()}`, clientId: `cid-bench-${alg.toLowerCase()}`, secret: randomBytes(24).toString('base64url') }));
  for (const a of apps) {
    await directory.putApp(
      { id: a.id, domain: `${a.id}.example.test`, manifest: { title: a.id, addons: { oidc: { loginRedirectUri: '/cb', tokenSignatureAlgorithm: a.alg } } }, access: null, upstream: null, credentials: { oidc: { clientId: a.clientId, clientSecret: a.secret } }, createdAt: new Date().toISOString() },
      [],
    );
  }
  // The reference serves the same claims Hearth derives from the directory.
  for (const id of userIds) accounts[id] = userClaims(directory, directory.userById(id)!);
  await directory.close();

  const loadBefore = os.loadavg().map((x) => x.toFixed(1)).join(' ');
  log('measuring the machine: RS256, EdDSA, argon2id');
  const rs256 = signaturesPerSecond('rsa');
  const eddsa = signaturesPerSecond('ed25519');
  const argon2 = await argon2PerSecond();

  const refPort = await freePort();
  const refIssuer = `http://${HOST}:${refPort}`;
  const reference = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'services/oidc/bench/reference-provider.ts')], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      OIDC_REFERENCE_SETUP: JSON.stringify({
        issuer: refIssuer,
        host: HOST,
        port: refPort,
        clients: apps.map((a) => ({ client_id: a.clientId, client_secret: a.secret, redirect_uris: [redirectUri(a)], id_token_signed_response_alg: a.alg })),
        accounts,
      }),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const daemon = await startDaemon('services/oidc/src/main.ts', env, (out) => out.includes('"msg":"ready"'));
  try {
    await new Promise<void>((resolve, reject) => {
      reference.stdout!.once('data', () => resolve());
      reference.once('exit', (code) => reject(new Error(`the reference provider exited with ${code} before it listened`)));
    });
    const hearth: Server = {
      name: 'Hearth',
      issuer,
      pid: daemon.child.pid!,
      authParams: () => ({}),
      signIn: async (b, url, w) => {
        const page = await b.go(url);
        const form = formOf(await page.res.text(), '/login');
        return (await b.postForm(form.action, { ...form.fields, login: `user${w}`, password: PASSWORD })).leftTo;
      },
    };
    const bare: Server = {
      name: 'node-oidc-provider',
      issuer: refIssuer,
      pid: reference.pid!,
      authParams: (w) => ({ login_hint: userIds[w]! }),
      signIn: async (b, url) => (await b.go(url)).leftTo,
    };

    log(`complete logins on Hearth (argon2id m=${ARGON2.memoryCost} KiB, t=${ARGON2.timeCost}) for ${SECONDS} s`);
    const logins = await hearthLogins(hearth, apps[0]!);

    const rounds = await interleave<RoundResults>(
      [hearth, bare].map((server) => ({ name: server.name, run: () => runRound(server, apps) })),
      ROUNDS,
      log,
    );
    const loadAfter = os.loadavg().map((x) => x.toFixed(1)).join(' ');

    const failed: string[] = [];
    for (const row of rounds) for (const r of row) if (r.error) failed.push(`${r.side}, round ${r.round}: ${r.error.message}`);
    if (logins.errors || !logins.count) failed.push(`complete logins on Hearth: ${logins.errors} errors, ${logins.count} completed`);
    const complete = rounds.filter((row) => row.every((r) => r.result));
    const phases: { name: string; pick: (r: RoundResults) => Stats }[] = [
      { name: 'code exchange, RS256 ID token', pick: (r) => r.exchanges.RS256 },
      { name: 'code exchange, EdDSA ID token', pick: (r) => r.exchanges.EdDSA },
      { name: 'refresh grant, rotating, RS256', pick: (r) => r.refreshes },
      { name: 'userinfo', pick: (r) => r.userinfo },
    ];
    for (const row of complete) {
      for (const r of row) for (const p of phases) {
        const s = p.pick(r.result!);
        if (s.errors || !s.count) failed.push(`${p.name}, ${r.side}, round ${r.round}: ${s.errors} errors, ${s.count} completed`);
      }
    }

    const f = (n: number, d = 0): string => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : '–');
    const cores = os.availableParallelism();
    const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
    const rows = phases.map((p) => {
      const h = complete.map((row) => p.pick(row[0]!.result!));
      const b = complete.map((row) => p.pick(row[1]!.result!));
      const rate = spread(h.map((x, i) => x.rate / b[i]!.rate));
      const cpuRatio = spread(h.map((x, i) => b[i]!.cpuMs / x.cpuMs));
      const med = (xs: Stats[], k: keyof Stats): number => median(xs.map((x) => x[k]));
      return `| ${p.name} | ${f(med(h, 'rate'))} | ${f(med(b, 'rate'))} | **${formatRatio(rate)}** | ${f(med(h, 'p50'), 1)} / ${f(med(h, 'p99'), 1)} | ${f(med(b, 'p50'), 1)} / ${f(med(b, 'p99'), 1)} | ${f(med(h, 'cpuMs'), 2)} / ${f(med(b, 'cpuMs'), 2)} | ${formatRatio(cpuRatio)} |`;
    });
    const exchangeRates = complete.map((row) => row[0]!.result!.exchanges.RS256.rate);
    const body = [
      `Run ${new Date().toISOString().slice(0, 10)} on ${cores} cores (\`nproc\` = ${cores}), Node ${process.version}, ${cpu}; \`npm run bench:oidc\`. Load average (1, 5, 15 min) at the start ${loadBefore}, at the end ${loadAfter}.`,
      `Hearth's daemon (one process, default SQLite store, audit on) against a bare node-oidc-provider (bench/reference-provider.ts): the same library and version, configured as Hearth configures it`,
      `(claims, scopes, PKCE, lifetimes, rotating refresh tokens, opaque access tokens, RSA-2048 and Ed25519 keys, client_secret_basic, the same first-party grant) with the library's in-memory adapter`,
      `(made large enough) and accounts from a fixed table: no directory, audit, store or middleware. The ratio is then Hearth's own cost on top of the library.`,
      `${ROUNDS} rounds, servers interleaved (Hearth, reference, Hearth, …); each round: ${f(CODES)} codes per exchange phase (minted beforehand over signed-in sessions, untimed), ${SECONDS} s of refresh grants, ${SECONDS} s of userinfo,`,
      `from ${CLIENTS} closed-loop clients on the same machine. Ratios are the median (range) of the per-round ratios; CPU per op is the server's user+system time over the phase from /proc (median of the rounds),`,
      `the figure that does not move with the rest of the machine's load.`,
      '',
      '| operation | Hearth per second | reference per second | Hearth / reference | Hearth p50 / p99 (ms) | reference p50 / p99 (ms) | server CPU ms per op, Hearth / reference | reference CPU / Hearth CPU per op |',
      '|---|---|---|---|---|---|---|---|',
      ...rows,
      '',
      `Complete logins on Hearth alone (form + argon2id password check + code + token; the reference has no password check): ${f(logins.rate, 1)}/s, p50 / p99 ${f(logins.p50, 1)} / ${f(logins.p99, 1)} ms, ${f(logins.cpuMs, 2)} ms CPU per login;`,
      `machine ceilings in the same run: argon2id ${f(argon2, 1)} verifications/s (${CLIENTS} concurrent, m=${ARGON2.memoryCost} KiB, t=${ARGON2.timeCost}), RS256 ${f(rs256)} and EdDSA ${f(eddsa)} signatures/s on one thread.`,
      '',
      `Target (issue 6): code exchange ≥ 500/s on this 2-core machine — ${median(exchangeRates) >= 500 ? 'met' : 'not met'} (median RS256 figure: ${f(median(exchangeRates))}/s).`,
    ].join('\n');
    process.stdout.write(`${body}\n`);
    recordBenchmark('OIDC', body, failed, WRITE);
  } finally {
    await daemon.stop();
    reference.kill();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
