/**
 * IMAP benchmark: Hearth's IMAP daemon against Dovecot (Debian dovecot-imapd, passwd-file
 * auth, its own config and ports in a temp dir) serving the same Maildir of 10,000 messages,
 * driven by the same raw-socket client.
 *
 *   logins/s (connect, LOGIN, LOGOUT), SELECT, FETCH 1:* (UID FLAGS RFC822.SIZE),
 *   FETCH of 1,000 full bodies (BODY.PEEK[]), SEARCH UNSEEN and SEARCH SUBJECT,
 *   each from 10 concurrent clients; plus SELECT from a single client.
 *
 * Results are printed and written to the "IMAP" section of BENCHMARKS.md.
 * Knobs: IMAP_BENCH_MESSAGES, IMAP_BENCH_CLIENTS, IMAP_BENCH_ROUNDS, IMAP_BENCH_REPEAT, IMAP_BENCH_WRITE=0 (print only).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '@hearth/config';
import { Directory } from '@hearth/directory';
import { MailStore } from '@hearth/mailstore';
import { freePort, memoryMiB, startDaemon, tempDir, writeBenchmarkSection } from '@hearth/testkit';
import { handToDovecot, startDovecot } from '../test/dovecot.ts';

const MESSAGES = Number(process.env.IMAP_BENCH_MESSAGES ?? 10_000);
const CLIENTS = Number(process.env.IMAP_BENCH_CLIENTS ?? 10);
const ROUNDS = Number(process.env.IMAP_BENCH_ROUNDS ?? 5);
const LOGINS_PER_CLIENT = 30;
const REPEAT = Number(process.env.IMAP_BENCH_REPEAT ?? 2);
const ADDRESS = 'bench.app@example.test';
const PASSWORD = 'bench-app-secret-1';

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

// ---------- a minimal client: one command at a time, counts bytes ----------

class Client {
  private tail = '';
  private bytes = 0;
  private wake: (() => void) | null = null;
  private n = 0;
  private closed = false;

  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.bytes += d.length;
      this.tail = (this.tail + d.toString('latin1', Math.max(0, d.length - 4096))).slice(-4096);
      this.wake?.();
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    sock.on('error', () => {});
  }

  static async connect(port: number): Promise<Client> {
    const sock = net.connect(port, '127.0.0.1');
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

  /** The response text of the last command's tail (enough for short answers like SEARCH). */
  get lastTail(): string {
    return this.tail;
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
  const head = `From: Sender ${i % 50} <sender${i % 50}@example.test>\r\nTo: ${ADDRESS}\r\nSubject: ${subject}\r\nDate: Mon, 2 Mar 2026 10:${String(i % 60).padStart(2, '0')}:00 +0000\r\nMessage-ID: <bench-${i}@example.test>\r\nMIME-Version: 1.0\r\n`;
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

// ---------- servers ----------

interface Target {
  name: string;
  port: number;
  pid: number | null;
}

// ---------- phases ----------

interface Result {
  opsPerSecond: number;
  meanMs: number;
  bytesPerSecond: number;
}

async function loggedIn(port: number): Promise<Client> {
  const c = await Client.connect(port);
  await c.cmd(`LOGIN "${ADDRESS}" "${PASSWORD}"`);
  return c;
}

/** Runs `op` ROUNDS times on each of the clients at once; per-op latency and aggregate rates. */
async function concurrent(clients: Client[], rounds: number, op: (c: Client, worker: number, round: number) => Promise<number>): Promise<Result> {
  const lat: number[] = [];
  let bytes = 0;
  const t0 = performance.now();
  await Promise.all(
    clients.map(async (c, w) => {
      for (let r = 0; r < rounds; r++) {
        const s = performance.now();
        bytes += await op(c, w, r);
        lat.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  return { opsPerSecond: lat.length / secs, meanMs: lat.reduce((a, b) => a + b, 0) / lat.length, bytesPerSecond: bytes / secs };
}

async function runPhases(t: Target): Promise<Record<string, Result>> {
  const out: Record<string, Result> = {};
  // warm-up: first SELECT builds Dovecot's index / Hearth's uidlist; first header SEARCH fills caches
  const warm = await loggedIn(t.port);
  await warm.cmd('SELECT INBOX');
  await warm.cmd('SEARCH SUBJECT "needle"');
  await warm.cmd('FETCH 1:* (UID FLAGS RFC822.SIZE)');
  warm.close();

  log(`  ${t.name}: logins`);
  const loginT0 = performance.now();
  const lat: number[] = [];
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      for (let i = 0; i < LOGINS_PER_CLIENT; i++) {
        const s = performance.now();
        const c = await Client.connect(t.port);
        await c.cmd(`LOGIN "${ADDRESS}" "${PASSWORD}"`);
        await c.cmd('LOGOUT');
        c.close();
        lat.push(performance.now() - s);
      }
    }),
  );
  const loginSecs = (performance.now() - loginT0) / 1000;
  out.logins = { opsPerSecond: lat.length / loginSecs, meanMs: lat.reduce((a, b) => a + b, 0) / lat.length, bytesPerSecond: 0 };

  log(`  ${t.name}: SELECT (1 client)`);
  const single = [await loggedIn(t.port)];
  out.select1 = await concurrent(single, ROUNDS * 20, (c) => c.cmd('SELECT INBOX'));
  single[0]!.close();

  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => loggedIn(t.port)));
  log(`  ${t.name}: SELECT (${CLIENTS} clients)`);
  out.select = await concurrent(clients, ROUNDS * 10, (c) => c.cmd('SELECT INBOX'));
  log(`  ${t.name}: FETCH 1:* (UID FLAGS RFC822.SIZE)`);
  out.fetchMeta = await concurrent(clients, ROUNDS, (c) => c.cmd('FETCH 1:* (UID FLAGS RFC822.SIZE)'));
  log(`  ${t.name}: FETCH 1,000 bodies`);
  const span = Math.max(1, MESSAGES - 1000);
  out.fetchBodies = await concurrent(clients, Math.max(2, Math.floor(ROUNDS / 2)), (c, w, r) => {
    const from = 1 + ((w * 997 + r * 3001) % span);
    return c.cmd(`FETCH ${from}:${Math.min(MESSAGES, from + 999)} BODY.PEEK[]`);
  });
  log(`  ${t.name}: SEARCH`);
  out.searchFlags = await concurrent(clients, ROUNDS * 4, (c) => c.cmd('SEARCH UNSEEN'));
  out.searchSubject = await concurrent(clients, ROUNDS, (c) => c.cmd('SEARCH SUBJECT "needle"'));
  for (const c of clients) c.close();
  return out;
}

async function main(): Promise<void> {
  const loadStart = os.loadavg().map((n) => n.toFixed(1)).join(' ');
  const root = tempDir('hearth-imap-bench-');
  fs.chmodSync(root, 0o755);
  const dataDir = path.join(root, 'hearth');
  const env: Record<string, string> = {
    HEARTH_DATA_DIR: dataDir,
    HEARTH_IMAP_PORT: String(await freePort()),
    HEARTH_IMAPS_PORT: String(await freePort()),
    HEARTH_LOG_LEVEL: 'info',
    HEARTH_LOG_FORMAT: 'json',
  };
  const stops: (() => Promise<void>)[] = [];
  try {
    const config = loadConfig({ ...process.env, ...env });
    const dir = await Directory.open(config);
    await dir.putApp(
      {
        id: 'bench',
        domain: 'bench.example.test',
        manifest: { addons: { recvmail: {} } },
        access: null,
        upstream: null,
        credentials: { recvmail: { username: ADDRESS, password: PASSWORD, address: ADDRESS } },
        createdAt: new Date().toISOString(),
      },
      [ADDRESS],
    );
    await dir.close();
    const maildir = new MailStore(dataDir).mailboxPath(ADDRESS);
    log(`writing ${MESSAGES} messages into ${maildir}`);
    const totalBytes = writeMaildir(maildir);

    const daemon = await startDaemon('services/imap/src/main.ts', env, (o) => o.includes('"msg":"ready"'));
    stops.push(async () => void (await daemon.stop()));
    const hearth: Target = { name: 'Hearth', port: Number(env.HEARTH_IMAP_PORT), pid: daemon.child.pid ?? null };
    // Hearth opens the mailbox first (special-use folders, uidlist), then Dovecot gets the files.
    const first = await loggedIn(hearth.port);
    await first.cmd('SELECT INBOX');
    first.close();
    handToDovecot(path.dirname(maildir));
    fs.chmodSync(path.dirname(path.dirname(maildir)), 0o755);
    fs.chmodSync(path.join(dataDir, 'mail'), 0o755);
    fs.chmodSync(dataDir, 0o755);
    const dovecot = await startDovecot({ dir: path.join(root, 'dovecot'), maildir, login: ADDRESS, password: PASSWORD, ownUidlist: true });
    stops.push(dovecot.stop);
    const dovecotTarget: Target = { name: 'Dovecot', port: dovecot.port, pid: dovecot.pid };

    // Alternating repeats, best figure of each: the box is shared, so a single pass is at the mercy of other load.
    let h: Record<string, Result> = {};
    let d: Record<string, Result> = {};
    const best = (a: Record<string, Result>, b: Record<string, Result>): Record<string, Result> =>
      Object.fromEntries(Object.entries(b).map(([k, r]) => [k, a[k] && a[k].opsPerSecond > r.opsPerSecond ? a[k] : r]));
    for (let i = 0; i < REPEAT; i++) {
      log(`Hearth (pass ${i + 1}):`);
      h = best(h, await runPhases(hearth));
      log(`Dovecot (pass ${i + 1}):`);
      d = best(d, await runPhases(dovecotTarget));
    }
    const rss = hearth.pid ? memoryMiB(hearth.pid).rss : NaN;
    const hearthRss = Number.isNaN(rss) ? null : Math.round(rss);

    const rows: [string, string, (r: Result) => number, (n: number) => string][] = [
      ['logins', 'logins/s (connect, LOGIN, LOGOUT)', (r) => r.opsPerSecond, (n) => n.toFixed(0)],
      ['select1', 'SELECT INBOX, 1 client (ops/s)', (r) => r.opsPerSecond, (n) => n.toFixed(1)],
      ['select', `SELECT INBOX, ${CLIENTS} clients (ops/s)`, (r) => r.opsPerSecond, (n) => n.toFixed(1)],
      ['fetchMeta', 'FETCH 1:* (UID FLAGS RFC822.SIZE) (ops/s)', (r) => r.opsPerSecond, (n) => n.toFixed(1)],
      ['fetchBodies', 'FETCH 1,000 full bodies (ops/s)', (r) => r.opsPerSecond, (n) => n.toFixed(2)],
      ['fetchBodiesMB', 'full-body FETCH throughput (MB/s)', (r) => r.bytesPerSecond / 1e6, (n) => n.toFixed(1)],
      ['searchFlags', 'SEARCH UNSEEN (ops/s)', (r) => r.opsPerSecond, (n) => n.toFixed(1)],
      ['searchSubject', 'SEARCH SUBJECT "needle" (ops/s)', (r) => r.opsPerSecond, (n) => n.toFixed(1)],
    ];
    const lines = ['| | Hearth | Dovecot | Hearth / Dovecot | mean latency Hearth / Dovecot (ms) |', '|---|---|---|---|---|'];
    const ratios: number[] = [];
    for (const [key, label, pick, fmt] of rows) {
      const k = key === 'fetchBodiesMB' ? 'fetchBodies' : key;
      const hv = pick(h[k]!);
      const dv = pick(d[k]!);
      ratios.push(hv / dv);
      const latency = key === 'fetchBodiesMB' ? '' : `${h[k]!.meanMs.toFixed(1)} / ${d[k]!.meanMs.toFixed(1)}`;
      lines.push(`| ${label} | ${fmt(hv)} | ${fmt(dv)} | ${(hv / dv).toFixed(2)}× | ${latency} |`);
    }
    const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
    const body = [
      `Run ${new Date().toISOString().slice(0, 10)} on ${os.availableParallelism()} cores (\`nproc\` = ${os.availableParallelism()}), Node ${process.version}, ${cpu}.`,
      `${MESSAGES.toLocaleString('en-US')} messages (${(totalBytes / 1e6).toFixed(1)} MB, a tenth multipart with an attachment, a third \\Seen) in one Maildir, served by both servers:`,
      `Hearth's daemon (\`services/imap/src/main.ts\`) and Dovecot ${spawnSync('dovecot', ['--version']).stdout?.toString().trim().split(' ')[0] ?? ''} (Debian dovecot-imapd, passwd-file auth with a PLAIN password, its index in a separate directory).`,
      `Same raw-socket client for both, ${CLIENTS} concurrent connections, one command at a time per connection; ${ROUNDS} rounds per client (SELECT: ${ROUNDS * 10}, single-client SELECT: ${ROUNDS * 20}, SEARCH UNSEEN: ${ROUNDS * 4}, full bodies: ${Math.max(2, Math.floor(ROUNDS / 2))});`,
      `full bodies are \`FETCH n:n+999 BODY.PEEK[]\` at different offsets. Logins use the app's recvmail credentials (no argon2; user logins cost one argon2 verification each).`,
      `Each server gets one warm-up (SELECT, SEARCH SUBJECT, FETCH 1:*) first, so Dovecot has built its index and Hearth its uidlist and header cache.`,
      `${REPEAT} alternating passes (Hearth, Dovecot, Hearth, ...); the table keeps each server's best pass per figure.`,
      `Load average at the start / end of the run: ${loadStart} / ${os.loadavg().map((n) => n.toFixed(1)).join(' ')} (other work shares the cores, so figures move by ±50% between runs;`,
      `Dovecot serves each connection from its own process while Hearth is one Node process, so on a busy box the kernel also gives Dovecot more CPU share in the ${CLIENTS}-client rows).`,
      '',
      ...lines,
      '',
      `Hearth RSS after the run: ${hearthRss ?? '?'} MiB. Target (issue 5): ≥ 0.5× Dovecot on each figure — ${ratios.every((r) => r >= 0.5) ? 'met' : `NOT met on ${rows.filter((_, i) => ratios[i]! < 0.5).map((r) => r[1]).join('; ')}`}.`,
    ].join('\n');
    console.log(body);
    if (process.env.IMAP_BENCH_WRITE !== '0') {
      writeBenchmarkSection('IMAP', body);
      log('wrote the IMAP section of BENCHMARKS.md');
    }
  } catch (err) {
    const dovecotLog = path.join(root, 'dovecot', 'dovecot.log');
    if (fs.existsSync(dovecotLog)) log(`dovecot.log:\n${fs.readFileSync(dovecotLog, 'utf8').slice(-3000)}`);
    throw err;
  } finally {
    for (const s of stops.reverse()) await s().catch(() => {});
    if (process.env.IMAP_BENCH_KEEP !== '1') fs.rmSync(root, { recursive: true, force: true });
  }
}

await main();
