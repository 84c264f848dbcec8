/**
 * npm run bench:smtp — Hearth SMTP next to Postfix under the same load:
 * Postfix's smtp-source sends MESSAGES messages of 10 KB over 20 parallel sessions
 *   (a) to the MX port for a local mailbox, delivered into a Maildir (fsync on in both), and
 *   (b) to the submission port from a trusted network, relayed to Postfix's smtp-sink.
 * Each figure runs until the last message is delivered (a) or handed to the sink (b).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Directory } from '@hearth/directory';
import { freePort, REPO_ROOT, startDaemon, tempDir, testEnv } from '@hearth/testkit';

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
  const ports = { smtp: await freePort(), smtps: await freePort(), mx: await freePort() };
  const t = await testEnv({
    env: {
      HEARTH_DOMAIN: DOMAIN,
      HEARTH_SMTP_PORT: String(ports.smtp),
      HEARTH_SMTPS_PORT: String(ports.smtps),
      HEARTH_SMTP_INBOUND_PORT: String(ports.mx),
      HEARTH_SMTP_TRUSTED_NETWORKS: '127.0.0.1/32',
      HEARTH_SMTP_RELAY: `smtp://127.0.0.1:${sinkPort}`,
      HEARTH_SMTP_RATE_PER_IP: '0',
      HEARTH_SMTP_RATE_PER_SENDER: '0',
      HEARTH_LOG_LEVEL: 'info',
      // fsyncs run on libuv's pool; 4 threads would serialise 20 sessions behind them
      UV_THREADPOOL_SIZE: '16',
    },
  });
  const directory = await Directory.open(t.config);
  await directory.addUser({ username: 'bench', email: MAILBOX, password: 'bench-password-1' });
  await directory.addMailbox(MAILBOX, 'bench');
  await directory.close();
  const daemon = await startDaemon('services/smtp/src/main.ts', t.env, (o) => o.includes('"msg":"ready"'), 60000);
  const maildir = path.join(t.dataDir, 'mail', DOMAIN, 'bench', 'new');
  const spool = path.join(t.dataDir, 'queue', 'msg');
  return {
    name: 'hearth',
    mxPort: ports.mx,
    submissionPort: ports.smtp,
    delivered: () => countFiles(maildir),
    queued: () => countFiles(spool),
    resetMaildir: () => emptyDir(maildir),
    stop: async () => {
      await daemon.stop();
      await t.cleanup();
    },
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
    delivered: () => countFiles(maildir),
    queued: () => ['incoming', 'active', 'deferred', 'maildrop', 'hold'].reduce((n, d) => n + countFiles(path.join(queue, d)), 0),
    resetMaildir: () => emptyDir(maildir),
    stop: async () => {
      spawnSync('postfix', ['-c', conf, 'stop']);
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

interface Result {
  a: number;
  b: number;
}

/** One round of (a) and (b) against a target; each run waits for the previous one to drain. */
async function round(t: Target): Promise<Result> {
  t.resetMaildir();
  // the queue check first: counting a Maildir of 10,000 files is the costly one
  const a = await load(t.mxPort, MAILBOX, () => t.queued() === 0 && t.delivered() >= MESSAGES);
  const b = await load(t.submissionPort, 'someone@remote.test', () => t.queued() === 0);
  console.log(`${t.name.padEnd(8)} (a) MX → Maildir: ${a.rate.toFixed(0)} msgs/s (${a.seconds.toFixed(1)} s)   (b) relay → sink: ${b.rate.toFixed(0)} msgs/s (${b.seconds.toFixed(1)} s)`);
  return { a: a.rate, b: b.rate };
}

function writeSection(hearth: Result, postfix: Result, version: string, rounds: number): void {
  const file = path.join(REPO_ROOT, 'BENCHMARKS.md');
  const existing = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmarks\n\nFigures from `npm run bench*` on the machine named in each section.\n';
  const ratio = (x: number, y: number): string => `${(x / y).toFixed(2)}×`;
  const section = `## SMTP

Run ${new Date().toISOString().slice(0, 10)} on ${os.availableParallelism()} cores (${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.version}, against Postfix ${version} on the same machine in the same run.
Load: Postfix's \`smtp-source -s ${SESSIONS} -m ${MESSAGES} -l ${BODY} -d\` (${MESSAGES.toLocaleString('en')} messages of 10 KB over ${SESSIONS} parallel sessions). Each figure is messages over the time from the first connection until the last message is delivered, fsync on in both servers; both servers run side by side, rounds interleaved, best of ${rounds} per figure (the machine is shared):
(a) to the MX port for one local mailbox, delivered into a Maildir (Postfix: \`virtual\`); (b) to the submission port from \`HEARTH_SMTP_TRUSTED_NETWORKS=127.0.0.1/32\` (Postfix: \`mynetworks\`), relayed to one \`smtp-sink\`.

| | Hearth msgs/s | Postfix msgs/s | Hearth / Postfix |
|---|---|---|---|
| (a) MX → Maildir | ${hearth.a.toFixed(0)} | ${postfix.a.toFixed(0)} | ${ratio(hearth.a, postfix.a)} |
| (b) relay → smtp-sink | ${hearth.b.toFixed(0)} | ${postfix.b.toFixed(0)} | ${ratio(hearth.b, postfix.b)} |

Target: ≥ 0.5× Postfix on both, durability on (spool file and directory fsync'd before the 250; Maildir file and directory fsync'd).
`;
  const re = /## SMTP\n[\s\S]*?(?=\n## |$)/;
  const next = re.test(existing) ? existing.replace(re, section.trimEnd() + '\n') : `${existing.trimEnd()}\n\n${section}`;
  fs.writeFileSync(file, next);
}

need('smtp-source');
need('smtp-sink');
need('postfix');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const version = spawnSync('postconf', ['-h', 'mail_version'], { encoding: 'utf8' }).stdout.trim();
const sink = await startSink();
const targets: Target[] = [];
try {
  targets.push(await startHearth(sink.port), await startPostfix(sink.port));
  // interleaved rounds, best of each: other load on the machine hits both alike
  const best = new Map<string, Result>();
  for (let i = 0; i < ROUNDS; i++) {
    for (const t of targets) {
      const r = await round(t);
      const prev = best.get(t.name);
      best.set(t.name, { a: Math.max(r.a, prev?.a ?? 0), b: Math.max(r.b, prev?.b ?? 0) });
    }
  }
  const hearth = best.get('hearth')!;
  const postfix = best.get('postfix')!;
  console.log(`best of ${ROUNDS}: hearth ${hearth.a.toFixed(0)} / ${hearth.b.toFixed(0)} msgs/s, postfix ${postfix.a.toFixed(0)} / ${postfix.b.toFixed(0)} msgs/s`);
  console.log(`ratio (a) ${(hearth.a / postfix.a).toFixed(2)}×   (b) ${(hearth.b / postfix.b).toFixed(2)}×`);
  if (MESSAGES >= 10000) writeSection(hearth, postfix, version, ROUNDS);
} finally {
  for (const t of targets) await t.stop().catch(() => {});
  sink.proc.kill();
}
