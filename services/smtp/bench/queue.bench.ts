/**
 * npm run bench:smtp-queue — what the replicas' queue costs: the same SMTP daemon with its queue
 * in this node's spool and in PostgreSQL (HEARTH_DATABASE_URL; bodies stay in the spool), under
 * Postfix's smtp-source relaying MESSAGES messages of 10 KB over 20 sessions to smtp-sink.
 * Rounds interleave the two; per message: the daemon's CPU, and with PostgreSQL the database
 * transactions (pg_stat_database.xact_commit of the bench's database, the idle polling included).
 * Knobs: BENCH_MESSAGES (default 2000), BENCH_ROUNDS (default 3).
 */
import { spawn, spawnSync } from 'node:child_process';
import os from 'node:os';
import pg from 'pg';
import { createPostgresDatabase, formatRatio, freePort, interleave, spread, treeCpuSeconds, waitFor } from '@hearth/testkit';
import { startHearthSmtp, type HearthSmtp } from './hearth-smtp.ts';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SESSIONS = 20;

interface Figure {
  rate: number;
  cpuMs: number;
  /** database transactions per message (PostgreSQL side only) */
  xacts: number | null;
}

interface Side {
  name: string;
  smtp: HearthSmtp;
  queued: () => Promise<number>;
  xacts: () => Promise<number | null>;
  stop: () => Promise<void>;
}

async function side(name: string, sinkPort: number, databaseUrl?: string): Promise<Side> {
  const smtp = await startHearthSmtp('bench@example.test', {
    HEARTH_SMTP_TRUSTED_NETWORKS: '127.0.0.1/32',
    HEARTH_SMTP_RELAY: `smtp://127.0.0.1:${sinkPort}`,
    UV_THREADPOOL_SIZE: '16',
    ...(databaseUrl ? { HEARTH_DATABASE_URL: databaseUrl } : {}),
  });
  const client = databaseUrl ? new pg.Client({ connectionString: databaseUrl }) : null;
  await client?.connect();
  const { SpoolQueueStore } = await import('../src/spool-queue.ts');
  const { Spool } = await import('../src/spool.ts');
  const spool = new SpoolQueueStore(new Spool(`${smtp.env.dataDir}/queue`));
  return {
    name,
    smtp,
    queued: async () => (client ? Number((await client.query('SELECT count(*) AS n FROM smtp_queue')).rows[0].n) : (await spool.list()).length),
    xacts: async () => (client ? Number((await client.query('SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()')).rows[0].xact_commit) : null),
    stop: async () => {
      await client?.end();
      await smtp.stop();
    },
  };
}

async function round(s: Side): Promise<Figure> {
  const cpu0 = treeCpuSeconds(s.smtp.pid);
  const x0 = await s.xacts();
  const t0 = process.hrtime.bigint();
  const c = spawn('smtp-source', ['-s', String(SESSIONS), '-m', String(MESSAGES), '-l', '10240', '-d', '-f', 'sender@remote.test', '-t', 'someone@remote.test', `127.0.0.1:${s.smtp.ports.submission}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  const code = await new Promise<number | null>((r) => c.on('exit', r));
  if (code !== 0) throw new Error(`smtp-source exited with ${code}`);
  await waitFor(async () => (await s.queued()) === 0, 600_000, 100);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const x1 = await s.xacts();
  const f: Figure = { rate: MESSAGES / seconds, cpuMs: ((treeCpuSeconds(s.smtp.pid) - cpu0) * 1000) / MESSAGES, xacts: x0 === null || x1 === null ? null : (x1 - x0) / MESSAGES };
  console.error(`${s.name.padEnd(10)} ${f.rate.toFixed(0)} msgs/s, ${f.cpuMs.toFixed(2)} ms CPU/msg${f.xacts === null ? '' : `, ${f.xacts.toFixed(2)} transactions/msg`}`);
  return f;
}

for (const tool of ['smtp-source', 'smtp-sink']) if (spawnSync('which', [tool]).status !== 0) throw new Error(`${tool} not found (Debian: postfix)`);
const loadStart = os.loadavg()[0]!;
const sinkPort = await freePort();
const sink = spawn('smtp-sink', ['-u', 'nobody', `127.0.0.1:${sinkPort}`, '1024'], { stdio: 'ignore' });
const db = await createPostgresDatabase();
const sides: Side[] = [];
try {
  sides.push(await side('spool', sinkPort), await side('postgresql', sinkPort, db.url));
  const rounds = await interleave<Figure>(sides.map((s) => ({ name: s.name, run: () => round(s) })), ROUNDS, (l) => console.error(l));
  const ok = rounds.filter((row) => row.every((r) => r.result));
  const med = (xs: number[]) => spread(xs)?.median ?? NaN;
  const col = (i: number, k: keyof Figure) => med(ok.map((row) => row[i]!.result![k] ?? NaN));
  console.log(`| ${ok.length} rounds of ${MESSAGES} relayed messages | spool | PostgreSQL | PostgreSQL / spool |`);
  console.log('|---|---|---|---|');
  console.log(`| msgs/s (median) | ${col(0, 'rate').toFixed(0)} | ${col(1, 'rate').toFixed(0)} | ${formatRatio(spread(ok.map((r) => r[1]!.result!.rate / r[0]!.result!.rate)))} |`);
  console.log(`| daemon CPU ms per message | ${col(0, 'cpuMs').toFixed(2)} | ${col(1, 'cpuMs').toFixed(2)} | ${formatRatio(spread(ok.map((r) => r[1]!.result!.cpuMs / r[0]!.result!.cpuMs)))} |`);
  console.log(`| database transactions per message | – | ${col(1, 'xacts').toFixed(2)} | |`);
  console.log(`load average ${loadStart.toFixed(1)} → ${os.loadavg()[0]!.toFixed(1)}, ${os.availableParallelism()} cores`);
  if (rounds.flat().some((r) => r.error)) process.exitCode = 1;
} finally {
  for (const s of sides) await s.stop().catch(() => {});
  sink.kill();
  await db.drop();
}
