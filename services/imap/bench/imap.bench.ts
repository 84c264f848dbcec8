/**
 * IMAP benchmark: Hearth's IMAP daemon against Dovecot (Debian dovecot-imapd in its documented
 * high-performance settings, passwd-file auth, its own config, index and ports in a temp dir)
 * serving the same Maildir of 10,000 messages, driven by the same raw-socket client.
 *
 *   logins/s (connect, LOGIN, LOGOUT), SELECT from 1 and from 10 clients, FETCH 1:* (UID FLAGS
 *   RFC822.SIZE), FETCH of 1,000 full bodies (BODY.PEEK[]), SEARCH UNSEEN and SEARCH SUBJECT,
 *   SORT (ARRIVAL), SORT (SUBJECT), SORT (FROM) and THREAD REFERENCES of the whole folder.
 *
 * Every figure is measured in interleaved rounds (Hearth, Dovecot, Hearth, Dovecot, …): the table
 * gives the median and range of the per-round ratios, and each server's CPU seconds per operation
 * (user + system of the daemon, or of Dovecot's whole process tree, from /proc), which does not
 * depend on what else the machine runs. A failed round stops the bench with the server, figure
 * and round named.
 *
 * Results are printed and written to the "IMAP" section of BENCHMARKS.md.
 * Knobs: IMAP_BENCH_MESSAGES, IMAP_BENCH_CLIENTS, IMAP_BENCH_ROUNDS (≥ 3 for a recorded figure),
 * IMAP_BENCH_SCALE (operations per round, 1 = the default amounts), IMAP_BENCH_HOST (listen address),
 * IMAP_BENCH_ONLY (comma-separated figure keys), IMAP_BENCH_WRITE=0 (print only),
 * IMAP_BENCH_CPU_PROF=<dir> (Hearth's daemon runs with node --cpu-prof, the profile lands there),
 * IMAP_BENCH_AGAINST=<another checkout> (that checkout's Hearth daemon instead of Dovecot, on the
 * same Maildir: a regression hunt between commits; nothing is written to BENCHMARKS.md).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '@hearth/config';
import { Directory } from '@hearth/directory';
import { MailStore } from '@hearth/mailstore';
import { freePort, interleave, median, memoryMiB, startDaemon, tempDir, treeCpuSeconds, writeBenchmarkSection } from '@hearth/testkit';
import { handToDovecot, startDovecot } from '../test/dovecot.ts';

const MESSAGES = Number(process.env.IMAP_BENCH_MESSAGES ?? 10_000);
const CLIENTS = Number(process.env.IMAP_BENCH_CLIENTS ?? 10);
const ROUNDS = Number(process.env.IMAP_BENCH_ROUNDS ?? 3);
const SCALE = Number(process.env.IMAP_BENCH_SCALE ?? 1);
const HOST = process.env.IMAP_BENCH_HOST ?? '127.0.0.1';
const ONLY = process.env.IMAP_BENCH_ONLY ? new Set(process.env.IMAP_BENCH_ONLY.split(',')) : null;
const AGAINST = process.env.IMAP_BENCH_AGAINST ? path.resolve(process.env.IMAP_BENCH_AGAINST) : null;
const ADDRESS = 'bench.app@example.test';
const PASSWORD = 'bench-app-secret-1';

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

// ---------- a minimal client: one command at a time, counts bytes ----------

class Client {
  private tail = '';
  /** the whole response of a command sent with `capture` */
  private captured: string | null = null;
  private bytes = 0;
  private wake: (() => void) | null = null;
  private n = 0;
  private closed = false;

  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.bytes += d.length;
      this.tail = (this.tail + d.toString('latin1', Math.max(0, d.length - 4096))).slice(-4096);
      if (this.captured !== null) this.captured += d.toString('latin1');
      this.wake?.();
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    sock.on('error', () => {});
  }

  static async connect(port: number): Promise<Client> {
    const sock = net.connect(port, HOST);
    sock.setNoDelay(true);
    const c = new Client(sock);
    await c.waitFor(/^\* OK.*\r\n$/s);
    return c;
  }

  private async waitFor(re: RegExp): Promise<void> {
    while (!re.test(this.tail)) {
      if (this.closed) throw new Error(`connection closed; last bytes: ${this.tail.slice(-200)}`);
      await new Promise<void>((r) => (this.wake = r));
      this.wake = null;
    }
  }

  /** Sends a command and waits for its tagged OK; returns the response size. */
  async cmd(text: string): Promise<number> {
    const tag = `T${++this.n}`;
    const start = this.bytes;
    this.tail = '';
    this.sock.write(`${tag} ${text}\r\n`);
    await this.waitFor(new RegExp(`(^|\\r\\n)${tag} (OK|NO|BAD)[^\\r\\n]*\\r\\n$`));
    if (!new RegExp(`(^|\\r\\n)${tag} OK`).test(this.tail)) throw new Error(`${text} failed: ${this.tail.slice(-200)}`);
    return this.bytes - start;
  }

  /** Sends a command and returns its whole response text. */
  async capture(text: string): Promise<string> {
    this.captured = '';
    try {
      await this.cmd(text);
      return this.captured;
    } finally {
      this.captured = null;
    }
  }

  close(): void {
    this.sock.destroy();
  }
}

// ---------- data ----------

const WORDS = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua'.split(' ');

function messageBytes(i: number): Buffer {
  let body = '';
  const lines = 20 + ((i * 7919) % 80);
  for (let l = 0; l < lines; l++) {
    let line = '';
    for (let w = 0; w < 10; w++) line += WORDS[(i + l * 3 + w * 5) % WORDS.length] + ' ';
    body += line.trimEnd() + '\r\n';
  }
  const subject = i % 100 === 7 ? `Quarterly needle report ${i}` : `Bench message ${i}`;
  // three in four reply to one of the previous few messages, so THREAD REFERENCES builds real threads
  const refs = i >= 8 && i % 4 !== 0 ? `References: <bench-${i - 1 - (i % 7)}@example.test>\r\n` : '';
  const head = `From: Sender ${i % 50} <sender${i % 50}@example.test>\r\nTo: ${ADDRESS}\r\nSubject: ${subject}\r\nDate: Mon, 2 Mar 2026 10:${String(i % 60).padStart(2, '0')}:00 +0000\r\nMessage-ID: <bench-${i}@example.test>\r\n${refs}MIME-Version: 1.0\r\n`;
  if (i % 10 === 0) {
    const att = Buffer.alloc(1500, i % 256).toString('base64').replace(/.{76}/g, '$&\r\n');
    return Buffer.from(
      `${head}Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n--b${i}\r\nContent-Type: application/octet-stream; name="a.bin"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="a.bin"\r\n\r\n${att}\r\n--b${i}--\r\n`,
    );
  }
  return Buffer.from(`${head}Content-Type: text/plain; charset=utf-8\r\n\r\n${body}`);
}

/** Writes the Maildir directly (cur/, Dovecot-style names with S=), a third of it \Seen. */
function writeMaildir(dir: string): number {
  for (const sub of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  const t0 = Math.floor(Date.now() / 1000) - MESSAGES;
  let total = 0;
  for (let i = 0; i < MESSAGES; i++) {
    const raw = messageBytes(i);
    total += raw.length;
    const name = `${t0 + i}.M${i}P1.bench,S=${raw.length}:2,${i % 3 === 0 ? 'S' : ''}`;
    fs.writeFileSync(path.join(dir, 'cur', name), raw);
  }
  return total;
}

// ---------- interleaved rounds ----------

/** One server under test: where it listens and the CPU seconds its processes have used so far. */
interface Side {
  name: string;
  port: number;
  cpu(): number;
}

/** What one timed run of a figure measured on one server. */
interface Sample {
  ops: number;
  seconds: number;
  cpuSeconds: number;
  bytes: number;
  meanMs: number;
}

/** A figure: `prepare` (untimed: connections, logins) returns the timed run and its cleanup. */
interface Figure {
  key: string;
  label: string;
  /** per-operation rate or data rate of a sample */
  unit: 'ops/s' | 'MB/s';
  prepare(side: Side): Promise<{ run: () => Promise<{ ops: number; bytes: number; latencies: number[] }>; done: () => void }>;
}

/**
 * Runs every figure `rounds` times on each side with testkit's `interleave` (A B A B … within each
 * figure), so both servers see the same machine load. Throws, naming the figure, side and round, when one fails.
 */
async function interleaved(figures: Figure[], sides: Side[], rounds: number): Promise<Map<string, Sample[][]>> {
  const out = new Map<string, Sample[][]>();
  for (const f of figures) {
    const results = await interleave<Sample>(
      sides.map((side) => ({
        name: side.name,
        run: async () => {
          const { run, done } = await f.prepare(side);
          try {
            const cpu0 = side.cpu();
            const t0 = performance.now();
            const { ops, bytes, latencies } = await run();
            const seconds = (performance.now() - t0) / 1000;
            const cpuSeconds = side.cpu() - cpu0;
            return { ops, seconds, cpuSeconds, bytes, meanMs: latencies.reduce((x, y) => x + y, 0) / latencies.length };
          } finally {
            done();
          }
        },
      })),
      rounds,
      log,
    );
    for (const row of results) {
      const failed = row.find((r) => r.error);
      if (failed) throw new Error(`${f.label}: ${failed.side}, round ${failed.round} of ${rounds} failed: ${failed.error!.message}`, { cause: failed.error });
      log(`  ${f.key} round ${row[0]!.round}: ${row.map((r) => `${r.side} ${rate(f, r.result!).toFixed(1)} ${f.unit}`).join(', ')}`);
    }
    out.set(
      f.key,
      sides.map((_, i) => results.map((row) => row[i]!.result!)),
    );
  }
  return out;
}

function rate(f: Figure, s: Sample): number {
  return f.unit === 'MB/s' ? s.bytes / 1e6 / s.seconds : s.ops / s.seconds;
}

// ---------- figures ----------

async function loggedIn(port: number): Promise<Client> {
  const c = await Client.connect(port);
  await c.cmd(`LOGIN "${ADDRESS}" "${PASSWORD}"`);
  return c;
}

/** `perClient` operations on each of `clients` connections at once (logged in, optionally SELECTed, before the clock starts). */
function onClients(clients: number, perClient: number, op: (c: Client, worker: number, round: number) => Promise<number>, select = true): Figure['prepare'] {
  return async (side) => {
    const cs = await Promise.all(
      Array.from({ length: clients }, async () => {
        const c = await loggedIn(side.port);
        if (select) await c.cmd('SELECT INBOX');
        return c;
      }),
    );
    return {
      run: async () => {
        const latencies: number[] = [];
        let bytes = 0;
        await Promise.all(
          cs.map(async (c, w) => {
            for (let r = 0; r < perClient; r++) {
              const s = performance.now();
              bytes += await op(c, w, r);
              latencies.push(performance.now() - s);
            }
          }),
        );
        return { ops: latencies.length, bytes, latencies };
      },
      done: () => cs.forEach((c) => c.close()),
    };
  };
}

const n = (base: number): number => Math.max(1, Math.round(base * SCALE));

function figures(): Figure[] {
  const span = Math.max(1, MESSAGES - 1000);
  const bodies = (c: Client, w: number, r: number): Promise<number> => {
    const from = 1 + ((w * 997 + r * 3001) % span);
    return c.cmd(`FETCH ${from}:${Math.min(MESSAGES, from + 999)} BODY.PEEK[]`);
  };
  const all: Figure[] = [
    {
      key: 'logins',
      label: 'logins/s (connect, LOGIN, LOGOUT)',
      unit: 'ops/s',
      prepare: async (side) => ({
        run: async () => {
          const latencies: number[] = [];
          await Promise.all(
            Array.from({ length: CLIENTS }, async () => {
              for (let i = 0; i < n(20); i++) {
                const s = performance.now();
                const c = await loggedIn(side.port);
                await c.cmd('LOGOUT');
                c.close();
                latencies.push(performance.now() - s);
              }
            }),
          );
          return { ops: latencies.length, bytes: 0, latencies };
        },
        done: () => {},
      }),
    },
    // (enough SELECTs that a round's CPU time is hundreds of the kernel's 10 ms ticks, not a handful)
    { key: 'select1', label: 'SELECT INBOX, 1 client', unit: 'ops/s', prepare: onClients(1, n(2000), (c) => c.cmd('SELECT INBOX'), false) },
    { key: 'select', label: `SELECT INBOX, ${CLIENTS} clients`, unit: 'ops/s', prepare: onClients(CLIENTS, n(200), (c) => c.cmd('SELECT INBOX'), false) },
    { key: 'fetchMeta', label: 'FETCH 1:* (UID FLAGS RFC822.SIZE)', unit: 'ops/s', prepare: onClients(CLIENTS, n(5), (c) => c.cmd('FETCH 1:* (UID FLAGS RFC822.SIZE)')) },
    { key: 'fetchBodies', label: 'FETCH 1,000 full bodies', unit: 'ops/s', prepare: onClients(CLIENTS, n(2), bodies) },
    { key: 'searchUnseen', label: 'SEARCH UNSEEN', unit: 'ops/s', prepare: onClients(CLIENTS, n(20), (c) => c.cmd('SEARCH UNSEEN')) },
    { key: 'searchSubject', label: 'SEARCH SUBJECT "needle"', unit: 'ops/s', prepare: onClients(CLIENTS, n(5), (c) => c.cmd('SEARCH SUBJECT "needle"')) },
    ...SORTS.map(([key, command]): Figure => ({ key, label: command, unit: 'ops/s', prepare: onClients(CLIENTS, n(3), (c) => c.cmd(command)) })),
    { key: 'qresync', label: 'SELECT (QRESYNC) after 100 flag changes', unit: 'ops/s', prepare: resyncAfterChanges },
  ];
  return ONLY ? all.filter((f) => ONLY.has(f.key)) : all;
}

const SETTLE_MS = 2500;

/** How many times the 100 messages' \Flagged was turned over (both servers share the Maildir, so the turn alternates across sides). */
let flagTurns = 0;

/**
 * RFC 7162 resync: a session notes INBOX's UIDVALIDITY and HIGHESTMODSEQ and turns \Flagged over on
 * 100 messages spread over the folder (untimed; all set, the next round all cleared, and so on, so
 * every round changes all 100); the clients then connect, ENABLE QRESYNC, and the timed part is their
 * `SELECT INBOX (QRESYNC (uidvalidity modseq))`, each answering those 100 changes as FETCHes.
 */
async function resyncAfterChanges(side: Side): Promise<{ run: () => Promise<{ ops: number; bytes: number; latencies: number[] }>; done: () => void }> {
  // (one connection at a time before the timed part: Dovecot allows 10 per user and address)
  const writer = await loggedIn(side.port);
  await writer.cmd('ENABLE QRESYNC');
  const sel = await writer.capture('SELECT INBOX');
  const known = `${/UIDVALIDITY (\d+)/.exec(sel)?.[1]} ${/HIGHESTMODSEQ (\d+)/.exec(sel)?.[1]}`;
  const step = Math.max(1, Math.floor(MESSAGES / 100));
  const sign = flagTurns++ % 2 ? '-' : '+';
  const changed = new Set(Array.from({ length: 100 }, (_, i) => 1 + ((i * step) % MESSAGES)));
  for (const seq of changed) await writer.cmd(`STORE ${seq} ${sign}FLAGS.SILENT (\\Flagged)`);
  await writer.cmd('LOGOUT');
  writer.close();
  // Dovecot rescans a Maildir directory whose mtime is under a second or so old on every access (it
  // cannot tell same-second changes apart); the resync is timed after that, as a client would come back later
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const cs = await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      const c = await loggedIn(side.port);
      await c.cmd('ENABLE QRESYNC');
      return c;
    }),
  );
  // every timed resync must answer all the changes, or the figure measures something else
  const fetches = (await cs[0]!.capture(`SELECT INBOX (QRESYNC (${known}))`)).match(/^\* \d+ FETCH /gm)?.length ?? 0;
  if (fetches !== changed.size) throw new Error(`the resync answered ${fetches} FETCH lines, not ${changed.size}`);
  const rounds = n(50);
  return {
    run: async () => {
      const latencies: number[] = [];
      let bytes = 0;
      await Promise.all(
        cs.map(async (c) => {
          for (let r = 0; r < rounds; r++) {
            const s = performance.now();
            bytes += await c.cmd(`SELECT INBOX (QRESYNC (${known}))`);
            latencies.push(performance.now() - s);
          }
        }),
      );
      return { ops: latencies.length, bytes, latencies };
    },
    done: () => cs.forEach((c) => c.close()),
  };
}

/** SORT and THREAD figures (RFC 5256) over the whole folder: figure key and command. */
const SORTS: [string, string][] = [
  ['sortArrival', 'SORT (ARRIVAL) UTF-8 ALL'],
  ['sortSubject', 'SORT (SUBJECT) UTF-8 ALL'],
  ['sortFrom', 'SORT (FROM) UTF-8 ALL'],
  ['threadReferences', 'THREAD REFERENCES UTF-8 ALL'],
];

/** Both servers must give the same answers before their speed means anything. */
async function checkSameAnswers(sides: Side[]): Promise<void> {
  const answers: string[] = [];
  for (const side of sides) {
    const c = await loggedIn(side.port);
    const exists = /\* (\d+) EXISTS/.exec(await c.capture('SELECT INBOX'))?.[1];
    const count = async (criteria: string): Promise<number> => ((/\* SEARCH([ \d]*)\r\n/.exec(await c.capture(`SEARCH ${criteria}`))?.[1] ?? '').match(/\d+/g) ?? []).length;
    const needles = await count('SUBJECT "needle"'); // also warms header caches
    const unseen = await count('UNSEEN');
    const metaBytes = await c.cmd('FETCH 1:* (UID FLAGS RFC822.SIZE)');
    // the whole SORT and THREAD answers, as digests (also fills both servers' sort caches)
    const sorted: string[] = [];
    for (const [, command] of SORTS) {
      const answer = /^\* (?:SORT|THREAD)[^\r]*/m.exec(await c.capture(command))?.[0] ?? 'none';
      sorted.push(createHash('sha1').update(answer).digest('hex').slice(0, 8));
    }
    c.close();
    answers.push(`${exists} messages, ${needles} SUBJECT hits, ${unseen} UNSEEN, SORT/THREAD ${sorted.join(' ')}`);
    log(`  ${side.name}: ${answers.at(-1)}, FETCH 1:* ${metaBytes} bytes`);
  }
  if (new Set(answers).size !== 1) throw new Error(`the servers disagree: ${sides.map((s, i) => `${s.name}: ${answers[i]}`).join('; ')}`);
}

// ---------- run ----------

const BENCH_APP = {
  id: 'bench',
  domain: 'bench.example.test',
  manifest: { addons: { recvmail: {} } },
  access: null,
  upstream: null,
  credentials: { recvmail: { username: ADDRESS, password: PASSWORD, address: ADDRESS } },
  createdAt: new Date().toISOString(),
};

/** The app whose recvmail credentials log in, in the directory under `dataDir`; with `checkout`, written by that checkout's code (its own schema). */
async function putBenchApp(dataDir: string, checkout?: string): Promise<void> {
  if (checkout) {
    const code = `import { loadConfig } from '@hearth/config'; import { Directory } from '@hearth/directory';
      const dir = await Directory.open(loadConfig({ ...process.env, HEARTH_DATA_DIR: ${JSON.stringify(dataDir)} }));
      await dir.putApp(${JSON.stringify(BENCH_APP)}, [${JSON.stringify(ADDRESS)}]); await dir.close();`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: path.join(checkout, 'services/imap'), encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`could not set up ${checkout}'s directory: ${r.stderr}`);
    return;
  }
  const dir = await Directory.open(loadConfig({ ...process.env, HEARTH_DATA_DIR: dataDir }));
  await dir.putApp(BENCH_APP, [ADDRESS]);
  await dir.close();
}

const fmt = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

async function main(): Promise<void> {
  const loadStart = os.loadavg().map((x) => x.toFixed(1)).join(' ');
  const root = tempDir('hearth-imap-bench-');
  fs.chmodSync(root, 0o755);
  const dataDir = path.join(root, 'hearth');
  const env: Record<string, string> = {
    HEARTH_DATA_DIR: dataDir,
    HEARTH_LISTEN: HOST,
    HEARTH_IMAP_PORT: String(await freePort()),
    HEARTH_IMAPS_PORT: String(await freePort()),
    // (metrics stay on, as in production, on a port of their own: not the default another daemon may hold)
    HEARTH_IMAP_METRICS_PORT: String(await freePort()),
    HEARTH_LOG_LEVEL: 'warn',
    HEARTH_LOG_FORMAT: 'json',
  };
  const stops: (() => Promise<void>)[] = [];
  try {
    await putBenchApp(dataDir);
    const maildir = new MailStore(dataDir).mailboxPath(ADDRESS);
    log(`writing ${MESSAGES} messages into ${maildir}`);
    const totalBytes = writeMaildir(maildir);

    const profile = process.env.IMAP_BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.IMAP_BENCH_CPU_PROF)}`] : [];
    const daemon = await startDaemon('services/imap/src/main.ts', { ...env, HEARTH_LOG_LEVEL: 'info' }, (o) => o.includes('"msg":"ready"'), undefined, profile);
    stops.push(async () => void (await daemon.stop()));
    const hearthPid = daemon.child.pid!;
    const hearth: Side = { name: 'Hearth', port: Number(env.HEARTH_IMAP_PORT), cpu: () => treeCpuSeconds(hearthPid) };
    // Hearth opens the mailbox first (special-use folders, uidlist), then Dovecot gets the files.
    const first = await loggedIn(hearth.port);
    await first.cmd('SELECT INBOX');
    first.close();
    handToDovecot(path.dirname(maildir));
    fs.chmodSync(path.dirname(path.dirname(maildir)), 0o755);
    fs.chmodSync(path.join(dataDir, 'mail'), 0o755);
    fs.chmodSync(dataDir, 0o755);
    let other: Side;
    if (AGAINST) {
      const port = await freePort();
      // its own directory (its schema), the same Maildir
      const theirs = path.join(root, 'against');
      await putBenchApp(theirs, AGAINST);
      fs.symlinkSync(path.join(dataDir, 'mail'), path.join(theirs, 'mail'));
      const them = await startDaemon(path.join(AGAINST, 'services/imap/src/main.ts'), { ...env, HEARTH_DATA_DIR: theirs, HEARTH_IMAP_PORT: String(port), HEARTH_IMAPS_PORT: String(await freePort()), HEARTH_IMAP_METRICS_PORT: String(await freePort()), HEARTH_LOG_LEVEL: 'info' }, (o) => o.includes('"msg":"ready"'));
      stops.push(async () => void (await them.stop()));
      const pid = them.child.pid!;
      other = { name: `Hearth at ${path.basename(AGAINST)}`, port, cpu: () => treeCpuSeconds(pid) };
    } else {
      const dovecot = await startDovecot({ dir: path.join(root, 'dovecot'), maildir, login: ADDRESS, password: PASSWORD, ownUidlist: true, host: HOST, tuned: true });
      stops.push(dovecot.stop);
      const pid = dovecot.pid!;
      other = { name: 'Dovecot', port: dovecot.port, cpu: () => treeCpuSeconds(pid) };
    }
    const sides = [hearth, other];

    log('warm-up and answer check (Dovecot builds its index, Hearth its uidlist and header cache):');
    await checkSameAnswers(sides);
    const figs = figures();
    const results = await interleaved(figs, sides, ROUNDS);
    const rss = memoryMiB(hearthPid).rss;
    const loadEnd = os.loadavg().map((x) => x.toFixed(1)).join(' ');

    const lines = [
      `| figure (${ROUNDS} rounds each) | Hearth (median) | ${other.name} (median) | Hearth / ${other.name}: median (range) | CPU ms per op, Hearth / ${other.name} | ${other.name} CPU / Hearth CPU |`,
      '|---|---|---|---|---|---|',
    ];
    const verdicts: string[] = [];
    for (const f of figs) {
      const [h, d] = results.get(f.key)!;
      const ratios = h!.map((s, r) => rate(f, s) / rate(f, d![r]!));
      const cpuH = median(h!.map((s) => s.cpuSeconds / s.ops));
      const cpuD = median(d!.map((s) => s.cpuSeconds / s.ops));
      const r = median(ratios);
      lines.push(
        `| ${f.label} (${f.unit}) | ${fmt(median(h!.map((s) => rate(f, s))))} | ${fmt(median(d!.map((s) => rate(f, s))))} | **${r.toFixed(2)}×** (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}) | ${(cpuH * 1000).toFixed(3)} / ${(cpuD * 1000).toFixed(3)} | ${(cpuD / cpuH).toFixed(2)}× |`,
      );
      if (f.key === 'fetchBodies') {
        const mbH = median(h!.map((s) => s.bytes / 1e6 / s.seconds));
        const mbD = median(d!.map((s) => s.bytes / 1e6 / s.seconds));
        lines.push(`| full-body FETCH throughput (MB/s) | ${fmt(mbH)} | ${fmt(mbD)} | | | |`);
      }
      if (f.key !== 'logins' && f.key !== 'searchSubject') verdicts.push(`${f.label} ${r >= 1 ? 'met' : 'NOT met'} (${r.toFixed(2)}×)`);
    }
    const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
    const body = [
      `Run ${new Date().toISOString().slice(0, 10)} on ${os.availableParallelism()} cores (\`nproc\` = ${os.availableParallelism()}), Node ${process.version}, ${cpu}; \`npm run bench:imap\`.`,
      `${MESSAGES.toLocaleString('en-US')} messages (${(totalBytes / 1e6).toFixed(1)} MB, a tenth multipart with an attachment, a third \\Seen) in one Maildir, served by both servers:`,
      `Hearth's daemon (\`services/imap/src/main.ts\`) and Dovecot ${spawnSync('dovecot', ['--version']).stdout?.toString().trim().split(' ')[0] ?? ''} (Debian dovecot-imapd, passwd-file auth with a PLAIN password, its index in a separate directory,`,
      `in its high-performance settings: \`service imap-login { service_count = 0 }\` with a login process per core, \`service imap { service_count = 0 }\` (processes reused)).`,
      `Same raw-socket client for both, ${CLIENTS} concurrent connections (SELECT also from 1), one command at a time per connection; full bodies are \`FETCH n:n+999 BODY.PEEK[]\` at different offsets.`,
      `Logins use the app's recvmail credentials (no argon2). Both servers first answer the same SELECT, SEARCH SUBJECT, SEARCH UNSEEN, FETCH 1:*, SORT and THREAD (checked equal), so Dovecot has built its index and Hearth its caches.`,
      `Each figure: ${ROUNDS} interleaved rounds (Hearth, Dovecot, Hearth, Dovecot, …); the ratio column is the median and range of the per-round ratios.`,
      `CPU per op is the server's user + system time over the timed part of each round (Hearth's one process; Dovecot's whole process tree, reaped children included), median of the rounds: it does not depend on other load.`,
      `Load average (1, 5, 15 min) at the start / end: ${loadStart} / ${loadEnd}.`,
      '',
      ...lines,
      '',
      `Hearth RSS after the run: ${Number.isNaN(rss) ? '?' : Math.round(rss)} MiB. Target (issue 20): ≥ 1.0× Dovecot — ${verdicts.join('; ')}.`,
    ].join('\n');
    console.log(body);
    if (process.env.IMAP_BENCH_WRITE !== '0' && !AGAINST) {
      writeBenchmarkSection('IMAP', body);
      log('wrote the IMAP section of BENCHMARKS.md');
    }
  } catch (err) {
    const dovecotLog = path.join(root, 'dovecot', 'dovecot.log');
    if (fs.existsSync(dovecotLog)) log(`dovecot.log (end):\n${fs.readFileSync(dovecotLog, 'utf8').slice(-3000)}`);
    throw err;
  } finally {
    for (const s of stops.reverse()) await s().catch(() => {});
    if (process.env.IMAP_BENCH_KEEP !== '1') fs.rmSync(root, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (err) {
  log(`IMAP bench FAILED: ${(err as Error).message}`);
  process.exitCode = 1;
}
