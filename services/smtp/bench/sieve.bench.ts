/**
 * npm run bench:sieve — delivery throughput with a 20-rule Sieve script active versus none, Hearth
 * next to Dovecot's LDA + Pigeonhole in the same run, on the same SIEVE_BENCH_N messages.
 * Hearth: the messages go over one SMTP connection to the inbound (MX) port, timed until the last
 * one is in its Maildir folder. Dovecot: `dovecot-lda` once per message (as Postfix runs it), from
 * one shell loop. Rounds interleaved (Hearth script, Hearth none, Dovecot script, Dovecot none);
 * before timing, both must file every message into the same folder with the same flags.
 * Knobs: SIEVE_BENCH_N (messages, default 300), SIEVE_BENCH_ROUNDS (default 3), SIEVE_BENCH_WRITE=0.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { MailStore } from '@hearth/mailstore';
import { ScriptStore } from '@hearth/sieve';
import { formatRatio, interleave, recordBenchmark, spread, tempDir, treeCpuSeconds, waitFor } from '@hearth/testkit';
import { startHearthSmtp } from './hearth-smtp.ts';

const N = Number(process.env.SIEVE_BENCH_N ?? 300);
const ROUNDS = Number(process.env.SIEVE_BENCH_ROUNDS ?? 3);
const WRITE = process.env.SIEVE_BENCH_WRITE !== '0' && N >= 300 && ROUNDS >= 3;
const DOMAIN = 'bench.test';
const USER = `bench@${DOMAIN}`;
const FOLDERS = ['Lists', 'Dev', 'Ops', 'Billing', 'Social', 'Spam', 'Family', 'Travel', 'Newsletters', 'Alerts'];

/** Twenty rules of the kinds webmail filter editors write; the later ones are reached by fewer messages. */
const SCRIPT = `require ["fileinto", "imap4flags", "envelope", "body"];
if header :contains "List-Id" "dev.lists.example" { fileinto "Dev"; stop; }
if header :contains "List-Id" "ops.lists.example" { fileinto "Ops"; stop; }
if exists "List-Unsubscribe" { if body :contains "unsubscribe here" { fileinto "Newsletters"; stop; } }
if header :contains "X-Spam-Flag" "YES" { fileinto "Spam"; stop; }
if envelope :is "from" "alerts@monitor.example" { addflag "\\\\Flagged"; fileinto "Alerts"; stop; }
if address :domain :is "from" "bank.example" { fileinto "Billing"; stop; }
if address :is "from" ["mum@home.example", "dad@home.example"] { addflag "\\\\Flagged"; fileinto "Family"; stop; }
if header :matches "subject" "*invoice*" { fileinto "Billing"; stop; }
if header :contains "subject" ["flight", "boarding pass", "hotel booking"] { fileinto "Travel"; stop; }
if address :domain :is "from" ["social.example", "friends.example"] { fileinto "Social"; stop; }
if body :contains "viagra" { fileinto "Spam"; stop; }
if header :contains "subject" "[lists]" { fileinto "Lists"; stop; }
if address :localpart :is "from" "noreply" { addflag "\\\\Seen"; keep; stop; }
if header :is "X-Priority" "1" { addflag "\\\\Flagged"; }
if envelope :domain :is "from" "partner.example" { fileinto "Ops"; stop; }
if header :contains "subject" "weekly digest" { fileinto "Newsletters"; stop; }
if body :contains "password reset" { addflag "\\\\Flagged"; keep; stop; }
if address :is "to" "team@${DOMAIN}" { fileinto "Lists"; stop; }
if header :contains "subject" "receipt" { fileinto "Billing"; stop; }
if size :over 100K { fileinto "Lists"; stop; }
`;

/** The messages: a mix that reaches every rule, plus plain mail that falls through to INBOX. */
function messages(): { from: string; raw: string }[] {
  const kinds: { from: string; headers: string[]; subject: string; body: string }[] = [
    { from: 'dev@lists.example', headers: ['List-Id: <dev.lists.example>'], subject: 'PATCH 1/3 fix', body: 'diff follows' },
    { from: 'ops@lists.example', headers: ['List-Id: <ops.lists.example>'], subject: 'deploy done', body: 'all green' },
    { from: 'news@shop.example', headers: ['List-Unsubscribe: <mailto:u@shop.example>'], subject: 'Sale', body: 'Deals. To stop, unsubscribe here.' },
    { from: 'x@spam.example', headers: ['X-Spam-Flag: YES'], subject: 'win', body: 'prize' },
    { from: 'alerts@monitor.example', headers: [], subject: 'disk 90%', body: 'host a' },
    { from: 'statements@bank.example', headers: [], subject: 'Your statement', body: 'attached' },
    { from: 'mum@home.example', headers: [], subject: 'Sunday', body: 'lunch?' },
    { from: 'billing@vendor.example', headers: [], subject: 'Your invoice 1234', body: 'due' },
    { from: 'air@travel.example', headers: [], subject: 'Your flight AB123', body: 'gate 4' },
    { from: 'bot@social.example', headers: [], subject: 'new follower', body: 'hi' },
    { from: 'pills@junk.example', headers: [], subject: 'offer', body: 'cheap viagra now' },
    { from: 'noreply@service.example', headers: [], subject: 'status', body: 'ok' },
    { from: 'boss@work.example', headers: ['X-Priority: 1'], subject: 'now please', body: 'call me' },
    { from: 'pm@partner.example', headers: [], subject: 'plan', body: 'see doc' },
    { from: 'site@accounts.example', headers: [], subject: 'account', body: 'your password reset link' },
    { from: 'friend@elsewhere.example', headers: [], subject: 'hello', body: 'how are you' },
    { from: 'someone@elsewhere.example', headers: [], subject: 'lunch', body: 'tomorrow?' },
  ];
  const filler = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n'.repeat(40);
  return Array.from({ length: N }, (_, i) => {
    const k = kinds[i % kinds.length]!;
    const raw = [
      `From: ${k.from}`,
      `To: ${USER}`,
      `Subject: ${k.subject}`,
      `Message-ID: <${i}.bench@remote.example>`,
      `X-Bench-Seq: ${i}`,
      'Date: Mon, 07 Dec 2026 12:00:00 +0000',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=us-ascii',
      ...k.headers,
      '',
      `${k.body}\r\n${filler}`,
    ].join('\r\n');
    return { from: k.from, raw };
  });
}

/** seq → "folder flags" for every message in a Maildir++ root (INBOX the root, folders `.Name`). */
function placement(root: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const folder of ['INBOX', ...FOLDERS]) {
    const dir = folder === 'INBOX' ? root : path.join(root, `.${folder}`);
    for (const sub of ['new', 'cur']) {
      const d = path.join(dir, sub);
      if (!fs.existsSync(d)) continue;
      for (const f of fs.readdirSync(d)) {
        const seq = Number(/^X-Bench-Seq: (\d+)/m.exec(fs.readFileSync(path.join(d, f), 'latin1'))?.[1]);
        const flags = /:2,([A-Za-z]*)$/.exec(f)?.[1]?.replace(/[^A-Z]/g, '') ?? '';
        out.set(seq, `${folder} ${flags}`);
      }
    }
  }
  return out;
}

function countMail(root: string): number {
  let n = 0;
  for (const folder of ['INBOX', ...FOLDERS]) for (const sub of ['new', 'cur']) n += fs.readdirSync(path.join(folder === 'INBOX' ? root : path.join(root, `.${folder}`), sub)).length;
  return n;
}

function emptyMail(root: string): void {
  for (const folder of ['INBOX', ...FOLDERS]) {
    for (const sub of ['new', 'cur']) {
      const d = path.join(folder === 'INBOX' ? root : path.join(root, `.${folder}`), sub);
      for (const f of fs.readdirSync(d)) fs.rmSync(path.join(d, f));
    }
  }
}

interface Run {
  seconds: number;
  cpu: number;
}

interface Target {
  root: string;
  deliver(script: boolean): Promise<Run>;
  stop(): Promise<void>;
}

/** Sends every message over one SMTP connection, one transaction each, waiting for each reply. */
async function sendAll(port: number, msgs: { from: string; raw: string }[]): Promise<void> {
  const sock = net.connect(port, '127.0.0.1');
  let buf = '';
  const waiters: ((line: string) => void)[] = [];
  sock.on('data', (d) => {
    buf += d.toString('latin1');
    let m: RegExpExecArray | null;
    while ((m = /^(\d{3}) [^\r\n]*\r\n/m.exec(buf))) {
      const end = m.index + m[0].length;
      buf = buf.slice(end);
      waiters.shift()?.(m[0]);
    }
  });
  const reply = (): Promise<string> => new Promise((r) => waiters.push(r));
  const cmd = async (line: string, expect: string): Promise<void> => {
    const p = reply();
    sock.write(line);
    const got = await p;
    if (!got.startsWith(expect)) throw new Error(`${line.trim().slice(0, 40)}: ${got.trim()}`);
  };
  const greeting = reply();
  await new Promise<void>((r, j) => sock.once('connect', r).once('error', j));
  await greeting;
  await cmd('EHLO bench.remote.example\r\n', '250');
  for (const m of msgs) {
    await cmd(`MAIL FROM:<${m.from}>\r\n`, '250');
    await cmd(`RCPT TO:<${USER}>\r\n`, '250');
    await cmd('DATA\r\n', '354');
    await cmd(`${m.raw.replace(/^\./gm, '..')}\r\n.\r\n`, '250');
  }
  await cmd('QUIT\r\n', '221');
  sock.destroy();
}

async function startHearth(msgs: { from: string; raw: string }[]): Promise<Target> {
  let root = '';
  let scripts: ScriptStore | null = null;
  const hearth = await startHearthSmtp(USER, {}, async (t) => {
    const store = new MailStore(t.dataDir);
    const account = await store.open(USER);
    for (const f of FOLDERS) await account.createFolder(f);
    root = store.mailboxPath(USER);
    // the store ManageSieve's PUTSCRIPT writes to
    scripts = new ScriptStore(root);
    await scripts.put('bench', SCRIPT);
  });
  const active = scripts!;
  return {
    root,
    async deliver(script) {
      emptyMail(root);
      await active.setActive(script ? 'bench' : '');
      const cpu0 = treeCpuSeconds(hearth.pid);
      const t0 = performance.now();
      await sendAll(hearth.ports.mx, msgs);
      await waitFor(() => countMail(root) >= msgs.length || undefined, 600_000, 20);
      return { seconds: (performance.now() - t0) / 1000, cpu: treeCpuSeconds(hearth.pid) - cpu0 };
    },
    stop: () => hearth.stop(),
  };
}

async function startDovecot(msgs: { from: string; raw: string }[]): Promise<Target> {
  const dir = tempDir('hearth-bench-sieve-dovecot-');
  const root = path.join(dir, 'mail');
  const msgDir = path.join(dir, 'msgs');
  for (const d of [path.join(dir, 'run'), msgDir, path.join(dir, 'sieve')]) fs.mkdirSync(d, { recursive: true });
  for (const folder of ['INBOX', ...FOLDERS]) for (const sub of ['new', 'cur', 'tmp']) fs.mkdirSync(path.join(folder === 'INBOX' ? root : path.join(root, `.${folder}`), sub), { recursive: true });
  fs.writeFileSync(path.join(root, 'subscriptions'), FOLDERS.join('\n') + '\n');
  msgs.forEach((m, i) => fs.writeFileSync(path.join(msgDir, `${i}.eml`), m.raw.replace(/\r\n/g, '\n')));
  // the envelope senders listed up front, so the loop starts no process but dovecot-lda
  fs.writeFileSync(path.join(dir, 'senders'), msgs.map((m, i) => `${i} ${m.from}\n`).join(''));
  fs.writeFileSync(path.join(dir, 'sieve', 'bench.sieve'), SCRIPT);
  const active = path.join(dir, 'active.sieve');
  // dovecot-lda refuses to run as root without a userdb (-d): it runs as nobody, who owns the tree
  fs.chmodSync(dir, 0o755);
  spawnSync('chown', ['-R', 'nobody', dir]);
  const conf = path.join(dir, 'dovecot.conf');
  fs.writeFileSync(
    conf,
    `base_dir = ${dir}/run
log_path = ${dir}/dovecot.log
protocols =
ssl = no
mail_location = maildir:${root}
postmaster_address = postmaster@${DOMAIN}
hostname = bench.local
protocol lda {
  mail_plugins = sieve
}
plugin {
  sieve = file:${dir}/sieve;active=${active}
}
`,
  );
  // one shell runs dovecot-lda per message and then prints the CPU time of the processes it reaped
  const loop = `while read i s; do /usr/lib/dovecot/dovecot-lda -c ${conf} -f "$s" -a ${USER} < ${msgDir}/$i.eml || exit 1; done < ${dir}/senders; times`;
  return {
    root,
    async deliver(script) {
      emptyMail(root);
      fs.rmSync(active, { force: true });
      if (script) fs.symlinkSync(path.join(dir, 'sieve', 'bench.sieve'), active);
      const t0 = performance.now();
      const r = spawnSync('runuser', ['-u', 'nobody', '--', 'bash', '-c', loop], { encoding: 'utf8', env: { ...process.env, HOME: dir, USER: 'nobody' } });
      const seconds = (performance.now() - t0) / 1000;
      if (r.status !== 0) throw new Error(`dovecot-lda failed: ${r.stderr}${fs.existsSync(path.join(dir, 'dovecot.log')) ? fs.readFileSync(path.join(dir, 'dovecot.log'), 'utf8').slice(-1000) : ''}`);
      // `times`: the shell's own, then its children's user and system time ("0m1.234s 0m0.567s")
      const child = r.stdout.trim().split('\n').at(-1)!.match(/(\d+)m([\d.]+)s/g)!;
      const cpu = child.reduce((s, x) => s + Number(/(\d+)m/.exec(x)![1]) * 60 + Number(/m([\d.]+)s/.exec(x)![1]), 0);
      if (countMail(root) !== msgs.length) throw new Error(`Dovecot stored ${countMail(root)} of ${msgs.length}`);
      return { seconds, cpu };
    },
    async stop() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Fails loudly unless both servers filed every message into the same folder with the same flags. */
function compare(hearth: Target, dovecot: Target): string {
  const h = placement(hearth.root);
  const d = placement(dovecot.root);
  const byFolder = new Map<string, number>();
  for (let i = 0; i < N; i++) {
    if (h.get(i) !== d.get(i)) throw new Error(`message ${i}: Hearth put it in "${h.get(i) ?? 'nowhere'}", Dovecot in "${d.get(i) ?? 'nowhere'}"`);
    byFolder.set(h.get(i)!, (byFolder.get(h.get(i)!) ?? 0) + 1);
  }
  return [...byFolder].map(([k, v]) => `${k.trim()}: ${v}`).join(', ');
}

const msgs = messages();
const loadStart = os.loadavg()[0]!;
const hearth = await startHearth(msgs);
const dovecot = await startDovecot(msgs);
try {
  await hearth.deliver(true);
  await dovecot.deliver(true);
  const folders = compare(hearth, dovecot);
  console.error(`both filed ${N} messages alike: ${folders}`);
  const rate = (r: Run): number => N / r.seconds;
  const rounds = await interleave<Run>(
    [
      { name: 'hearth script', run: () => hearth.deliver(true) },
      { name: 'hearth none', run: () => hearth.deliver(false) },
      { name: 'dovecot script', run: () => dovecot.deliver(true) },
      { name: 'dovecot none', run: () => dovecot.deliver(false) },
    ],
    ROUNDS,
  );
  for (const row of rounds) console.log(row.map((r) => `${r.side}: ${r.result ? `${rate(r.result).toFixed(0)} msgs/s, ${((r.result.cpu / N) * 1000).toFixed(2)} ms CPU/msg` : 'FAILED'}`).join(' | '));
  const failed = rounds.flat().filter((r) => r.error);
  const ok = rounds.filter((row) => row.every((r) => r.result));
  const col = (i: number): Run[] => ok.map((row) => row[i]!.result!);
  const med = (xs: number[]): string => spread(xs)?.median.toFixed(0) ?? '–';
  const cpuMs = (xs: Run[]): string => ((spread(xs.map((r) => r.cpu / N))?.median ?? NaN) * 1000).toFixed(2);
  const ratioScript = spread(ok.map((row) => rate(row[0]!.result!) / rate(row[2]!.result!)));
  const ratioNone = spread(ok.map((row) => rate(row[1]!.result!) / rate(row[3]!.result!)));
  const loadEnd = os.loadavg()[0]!;
  const table = [
    `| | Hearth msgs/s | Hearth CPU ms/msg | Dovecot msgs/s | Dovecot CPU ms/msg | Hearth / Dovecot, median (range) |`,
    `|---|---|---|---|---|---|`,
    `| 20-rule script | ${med(col(0).map(rate))} | ${cpuMs(col(0))} | ${med(col(2).map(rate))} | ${cpuMs(col(2))} | **${formatRatio(ratioScript)}** |`,
    `| no script | ${med(col(1).map(rate))} | ${cpuMs(col(1))} | ${med(col(3).map(rate))} | ${cpuMs(col(3))} | **${formatRatio(ratioNone)}** |`,
  ].join('\n');
  // what the script itself costs: CPU per message with it minus without it, per server
  const scriptCost = (withIt: Run[], without: Run[]): string => (((spread(withIt.map((r) => r.cpu / N))?.median ?? NaN) - (spread(without.map((r) => r.cpu / N))?.median ?? NaN)) * 1000).toFixed(2);
  const costLine = `CPU the script adds per message (median with it minus median without): Hearth ${scriptCost(col(0), col(1))} ms, Dovecot ${scriptCost(col(2), col(3))} ms.`;
  console.log(table);
  console.log(costLine);
  console.log(`load average ${loadStart.toFixed(1)} → ${loadEnd.toFixed(1)}`);
  const version = spawnSync('dovecot', ['--version'], { encoding: 'utf8' }).stdout.trim();
  recordBenchmark(
    'Sieve delivery',
    `Run ${new Date().toISOString().slice(0, 10)} on ${os.availableParallelism()} cores (shared with other work; 1-minute load average ${loadStart.toFixed(1)} at the start, ${loadEnd.toFixed(1)} at the end), Node ${process.version}, against Dovecot ${version} (\`dovecot-lda\` + Pigeonhole) in the same run: \`npm run bench:sieve\`.
${N} messages (~3.5 KB, 17 kinds) per run; ${ROUNDS} rounds interleaved (Hearth script, Hearth none, Dovecot script, Dovecot none). Before timing, both servers filed every message into the same folder with the same flags (${folders}).
Hearth: one SMTP connection to the MX port, one transaction per message, timed until the last message is in its folder (queue spool and Maildir fsync'd). Dovecot: \`dovecot-lda\` once per message from one shell loop, as Postfix's \`mailbox_command\` runs it (Dovecot's default \`mail_fsync = optimized\`; no SMTP in front of it, so Dovecot's side carries no protocol cost but one process start per message). CPU: Hearth's daemon, Dovecot's reaped \`dovecot-lda\` processes.

${table}

${costLine}

Target: ≥ 1.0× Dovecot with the script. Limits: most of Dovecot's CPU per message is starting \`dovecot-lda\`, which hides how cheap Pigeonhole's script run is; compare the added CPU above, not only the ratio; a loaded shared 2-core machine (rounds vary by 2× on it); LDA per message rather than LMTP over one connection (LMTP would spare Dovecot the process start and would be the fairer comparison for throughput).`,
    failed.map((r) => `round ${r.round}, ${r.side}: ${r.error!.message}`),
    WRITE,
  );
} finally {
  await hearth.stop().catch(() => {});
  await dovecot.stop().catch(() => {});
}
