/**
 * proxyAuth benchmark (`npm run bench:proxyauth`): signed-in GETs of a 1 KB response through the
 * gateway, through a bare 10-line node proxy (no checks: the floor for any gateway on node's http
 * module) and directly to the same upstream, in interleaved rounds (gateway, bare, direct, gateway, …).
 * Each round measures flat-out throughput at 64 connections (autocannon) and latency with 4 and 64
 * clients in closed loop (µs timings). Prints the median and range of the per-round ratios, the
 * latency the gateway adds, each proxy's CPU-seconds per request from /proc (independent of other
 * load) and the load average; writes the "proxyAuth" section of BENCHMARKS.md. A failed round stops
 * the bench naming side and round, exit code 1.
 *
 * PROXYAUTH_BENCH_ROUNDS (default 3), PROXYAUTH_BENCH_SECONDS (per throughput run, default 5),
 * PROXYAUTH_BENCH_LATENCY_SECONDS (per latency run, default 2), PROXYAUTH_BENCH_HOST (listen address),
 * PROXYAUTH_BENCH_WRITE=0 (print only), PROXYAUTH_BENCH_GATEWAY_ARGS (node flags for the gateway, e.g.
 * "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile it under the bench's load).
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Directory, type App } from '@hearth/directory';
import { cpuSeconds, freePort, interleave, median, percentile, REPO_ROOT, runCommand, startDaemon, testEnv, writeBenchmarkSection } from '@hearth/testkit';
import { SESSION_COOKIE, SessionStore, appKey, loadMasterKey } from '../src/session.ts';

interface CannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  non2xx: number;
  errors: number;
}
type Cannon = (opts: { url: string; connections: number; duration: number; headers?: Record<string, string> }) => Promise<CannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Cannon;

const CONNECTIONS = 64;
const ROUNDS = Number(process.env.PROXYAUTH_BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.PROXYAUTH_BENCH_SECONDS ?? 5);
const LATENCY_SECONDS = Number(process.env.PROXYAUTH_BENCH_LATENCY_SECONDS ?? 2);
/** closed-loop clients: at 4, latency is mostly service time; at 64, queueing shows */
const LATENCY_CLIENTS = [4, 64] as const;
/** where the upstream, the bare proxy and the gateway listen (a helper on a shared machine uses its own loopback address) */
const HOST = process.env.PROXYAUTH_BENCH_HOST ?? '127.0.0.1';
const GATEWAY_ARGS = (process.env.PROXYAUTH_BENCH_GATEWAY_ARGS ?? '').split(' ').filter(Boolean);

interface Latency {
  p50: number;
  p99: number;
}

/** Microsecond-resolution latencies from `clients` keep-alive clients, each sending its next request when the last one is done. */
async function closedLoop(url: string, headers: Record<string, string>, clients: number, seconds: number): Promise<Latency> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const samples: number[] = [];
  const end = Date.now() + seconds * 1000;
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const t0 = process.hrtime.bigint();
      http
        .get(url, { headers, agent }, (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode !== 200) return reject(new Error(`${url} answered ${res.statusCode}`));
            samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
            resolve();
          });
        })
        .on('error', reject);
    });
  try {
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (Date.now() < end) await one();
      }),
    );
  } finally {
    agent.destroy();
  }
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

// The upstream runs in its own process so the load generator does not share its event loop.
const UPSTREAM = `
const http = require('node:http');
const body = Buffer.alloc(1024, 'x');
http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(body);
}).listen(Number(process.argv[1]), process.argv[2], () => console.log('listening'));
`;

// The floor for any gateway written on node's http module: the same hop with no checks at all.
const BARE_PROXY = `
const http = require('node:http');
const [listen, target, host] = [Number(process.argv[1]), Number(process.argv[2]), process.argv[3]];
const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 256 });
http.createServer((req, res) => {
  const p = http.request({ host, port: target, path: req.url, method: req.method, headers: req.headers, agent }, (r) => {
    res.writeHead(r.statusCode, r.headers);
    r.pipe(res);
  });
  p.on('error', () => res.destroy());
  p.end();
}).listen(listen, host, () => console.log('listening'));
`;

interface Side {
  name: string;
  url: string;
  headers: Record<string, string>;
  /** the process whose CPU time a request costs on this side (the proxy; the upstream when direct) */
  pid: number;
}

interface Sample {
  rate: number;
  /** autocannon at 64 connections, ms */
  p50: number;
  p99: number;
  cpuPerRequest: number;
  latency: Latency[];
}

async function measure(side: Side): Promise<Sample> {
  const cpu0 = cpuSeconds(side.pid);
  const r = await autocannon({ url: side.url, connections: CONNECTIONS, duration: SECONDS, headers: side.headers });
  const cpu = cpuSeconds(side.pid) - cpu0;
  if (r.non2xx || r.errors || !r.requests.total) throw new Error(`${r.non2xx} non-2xx answers, ${r.errors} errors, ${r.requests.total} requests`);
  const latency: Latency[] = [];
  for (const clients of LATENCY_CLIENTS) latency.push(await closedLoop(side.url, side.headers, clients, LATENCY_SECONDS));
  return { rate: r.requests.total / SECONDS, p50: r.latency.p50, p99: r.latency.p99, cpuPerRequest: cpu / r.requests.total, latency };
}

async function main(): Promise<void> {
  const upstreamPort = await freePort();
  const upstream = spawn(process.execPath, ['-e', UPSTREAM, String(upstreamPort), HOST], { stdio: ['ignore', 'pipe', 'inherit'] });
  const barePort = await freePort();
  const bare = spawn(process.execPath, ['-e', BARE_PROXY, String(barePort), String(upstreamPort), HOST], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await freePort();
  const env = await testEnv({ env: { HEARTH_PROXYAUTH_PORT: String(port), HEARTH_LISTEN: HOST, HEARTH_LOG_LEVEL: 'info' } });
  const directory = await Directory.open(env.config);
  let gateway: Awaited<ReturnType<typeof startDaemon>> | undefined;
  try {
    await new Promise<void>((resolve) => upstream.stdout!.once('data', () => resolve()));
    await new Promise<void>((resolve) => bare.stdout!.once('data', () => resolve()));
    const user = await directory.addUser({ username: 'bench', email: 'bench@example.test', password: 'bench-password-1' });
    const app: App = {
      id: 'bench',
      domain: 'bench.example.test',
      manifest: { title: 'Bench', addons: { proxyAuth: {} } },
      access: null,
      upstream: `http://${HOST}:${upstreamPort}`,
      credentials: { proxyAuth: { clientId: 'proxyauth-bench', clientSecret: 'bench-secret-0123456789', cookieSecret: 'bench-cookie-0123456789' } },
      createdAt: new Date().toISOString(),
    };
    await directory.putApp(app, []);
    // The gateway as deployed: the esbuild bundle (npm run build), not the sources through tsx.
    const built = await runCommand(process.execPath, [path.join(REPO_ROOT, 'scripts/build.mjs'), path.join(REPO_ROOT, 'services/proxyauth')], { timeoutMs: 120_000 });
    if (built.code !== 0) throw new Error(`building services/proxyauth failed: ${built.stderr.trim()}`);
    gateway = await startDaemon('services/proxyauth/dist/main.js', env.env, (out) => out.includes('"ready"'), undefined, GATEWAY_ARGS);
    const stored = directory.app('bench')!;
    const sessions = new SessionStore(directory, { sessionIdleSeconds: 3600, sessionMaxSeconds: 86400 });
    const cookie = `${SESSION_COOKIE}=${await sessions.create(appKey(loadMasterKey(env.dataDir), stored), stored, user.id, null)}`;
    const headers = { Host: 'bench.example.test', Cookie: cookie };
    const sides: Side[] = [
      { name: 'gateway', url: `http://${HOST}:${port}/page`, headers, pid: gateway.child.pid! },
      { name: 'bare node proxy', url: `http://${HOST}:${barePort}/page`, headers, pid: bare.pid! },
      { name: 'direct', url: `http://${HOST}:${upstreamPort}/page`, headers: { Cookie: cookie }, pid: upstream.pid! },
    ];
    const seen = await new Promise<string>((resolve, reject) => {
      http.get(sides[0]!.url, { headers }, (res) => {
        let body = '';
        res.setEncoding('latin1').on('data', (d: string) => (body += d)).on('end', () => resolve(`${res.statusCode} ${body.length}`));
      }).on('error', reject);
    });
    if (seen !== '200 1024') throw new Error(`signed-in request through the gateway answered ${seen}, not 200 with the 1 KB body`);

    const loadStart = os.loadavg().map((x) => x.toFixed(1)).join(' ');
    for (const side of sides) await autocannon({ url: side.url, connections: CONNECTIONS, duration: 1, headers: side.headers }); // warm-up
    const rounds = await interleave<Sample>(
      sides.map((side) => ({ name: side.name, run: () => measure(side) })),
      ROUNDS,
      (line) => console.error(line),
    );
    for (const row of rounds) {
      const failed = row.find((r) => r.error);
      if (failed) throw new Error(`${failed.side}, round ${failed.round} of ${ROUNDS} failed: ${failed.error!.message}`, { cause: failed.error });
      console.error(`round ${row[0]!.round}: ${row.map((r) => `${r.side} ${Math.round(r.result!.rate)} req/s`).join(', ')}`);
    }
    const samples = sides.map((_, i) => rounds.map((row) => row[i]!.result!));
    const loadEnd = os.loadavg().map((x) => x.toFixed(1)).join(' ');

    const [g, b, d] = samples as [Sample[], Sample[], Sample[]];
    const ratio = (xs: Sample[], ys: Sample[]): string => {
      const r = xs.map((x, i) => x.rate / ys[i]!.rate);
      return `**${median(r).toFixed(2)}×** (${Math.min(...r).toFixed(2)}–${Math.max(...r).toFixed(2)})`;
    };
    const ms = (n: number): string => n.toFixed(3);
    const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
    const row = (name: string, xs: Sample[]): string =>
      `| ${name} | ${fmt(median(xs.map((x) => x.rate)))} | ${median(xs.map((x) => x.p50))} / ${median(xs.map((x) => x.p99))} | ${LATENCY_CLIENTS.map((_, k) => `${ms(median(xs.map((x) => x.latency[k]!.p50)))} / ${ms(median(xs.map((x) => x.latency[k]!.p99)))}`).join(' | ')} | ${(median(xs.map((x) => x.cpuPerRequest)) * 1e6).toFixed(1)} |`;
    const added = (k: number, q: 'p50' | 'p99', base: Sample[]): string => {
      const n = median(g.map((x, i) => x.latency[k]![q] - base[i]!.latency[k]![q]));
      return `${n < 0 ? '−' : '+'}${ms(Math.abs(n))}`;
    };
    const table = [
      `| target (${ROUNDS} interleaved rounds, medians) | requests/s at ${CONNECTIONS} connections | autocannon p50 / p99 (ms) | ${LATENCY_CLIENTS.map((c) => `${c} clients p50 / p99 (ms)`).join(' | ')} | proxy CPU µs per request |`,
      '|---|---|---|---|---|---|',
      row('through the gateway', g),
      row('through a bare 10-line node proxy (no checks)', b),
      row('upstream directly (CPU: the upstream itself)', d),
      '',
      `Gateway / bare node proxy: ${ratio(g, b)}; gateway / direct: ${ratio(g, d)} (median and range of per-round ratios; bare / direct: ${ratio(b, d)}).`,
      `Latency the gateway adds (median of per-round differences): ${LATENCY_CLIENTS.map((c, k) => `${c} clients p50 ${added(k, 'p50', d)} ms, p99 ${added(k, 'p99', d)} ms vs direct (vs the bare proxy: p50 ${added(k, 'p50', b)}, p99 ${added(k, 'p99', b)})`).join('; ')}.`,
    ].join('\n');
    console.log(table);
    if (process.env.PROXYAUTH_BENCH_WRITE !== '0') {
      writeBenchmarkSection(
        'proxyAuth',
        `Run ${new Date().toISOString().slice(0, 10)} on ${os.availableParallelism()} cores (${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.version}; load average ${loadStart} at the start, ${loadEnd} at the end (the machine was shared: rates and latencies move with load, CPU per request does not).
Signed-in GETs of a 1 KB response. Each round runs the gateway, the bare proxy and the upstream directly one after another:
${SECONDS} s flat out at ${CONNECTIONS} connections (autocannon), then ${LATENCY_SECONDS} s each of ${LATENCY_CLIENTS.join(' and ')} clients in closed loop (µs timings).
The upstream (node http), the proxies and the load generator share the same cores; the gateway runs as built (\`npm run build\`, dist/main.js).
Per request the gateway normalises the path, checks the session (cookie HMAC and store read, reused for 1 s), checks the user
against the directory (a disabled user is out at the next directory reload), strips and adds headers, and forwards over undici's
keep-alive connection pool; the bare proxy uses node's http client with a keep-alive agent.

${table}

Target (issue 20): ≥ 0.9× the bare node proxy and ≥ 0.5× direct.`,
      );
      console.log('written to BENCHMARKS.md');
    }
  } finally {
    await gateway?.stop();
    bare.kill();
    upstream.kill();
    await directory.close();
    await env.cleanup();
  }
}

try {
  await main();
} catch (err) {
  console.error(`proxyAuth bench FAILED: ${(err as Error).message}`);
  process.exitCode = 1;
}
