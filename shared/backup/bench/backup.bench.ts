/**
 * Backup benchmark: `hearth backup create` / `restore` on mixed data (a Maildir, an app data
 * folder, the app's MySQL database, the directory store) beside `restic backup` of the same
 * files run directly, mysqldump of the database then restic, and `tar | zstd` of them, in the
 * same run: first backup, then an incremental one after 1 % of the files changed, then a restore
 * (also beside tar -x then mysql loading the dump); times, CPU and repository sizes.
 *
 * The issue's figure is 1 GB (BACKUP_BENCH_MB=1024); the size is a knob so a small machine can
 * finish in minutes (BACKUP_BENCH_ROUNDS, at least 3, interleaved). Results are printed and written to the "Backup" section of BENCHMARKS.md
 * (BACKUP_BENCH_WRITE=0: print only).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '@hearth/config';
import { hearth, tempDir, treeCpuSeconds, writeBenchmarkSection } from '@hearth/testkit';
import { createBackup, parseBackupSettings, restoreBackup } from '../src/index.ts';

const MB = Number(process.env.BACKUP_BENCH_MB ?? 1024);
const ROUNDS = Math.max(3, Number(process.env.BACKUP_BENCH_ROUNDS ?? 3));
/** unique per run: MySQL names come from the app id */
const APP = `bench${randomBytes(3).toString('hex')}`;
const WORDS = 'the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were her she there'.split(' ');

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

function text(bytes: number): string {
  const out: string[] = [];
  let n = 0;
  while (n < bytes) {
    const w = WORDS[(Math.random() * WORDS.length) | 0]!;
    out.push(w);
    n += w.length + 1;
  }
  return out.join(' ');
}

function du(dir: string): number {
  return Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]);
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): void {
  const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'ignore', 'pipe'], shell: false });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

async function main(): Promise<void> {
  const root = tempDir('hearth-backup-bench-');
  const dataDir = path.join(root, 'data');
  const pw = path.join(root, 'password');
  fs.writeFileSync(pw, 'bench-password\n', { mode: 0o600 });
  const env: Record<string, string> = {
    HEARTH_DATA_DIR: dataDir,
    HEARTH_BACKUP_REPOSITORY: path.join(root, 'hearth-repo'),
    HEARTH_BACKUP_PASSWORD_FILE: pw,
    HEARTH_ARGON2_MEMORY_KIB: '1024',
    HEARTH_ARGON2_TIME_COST: '1',
    HEARTH_MYSQL_ADMIN_URL: process.env.HEARTH_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306',
    HEARTH_LOG_LEVEL: 'warn',
  };
  Object.assign(process.env, env);
  const config = loadConfig();
  const settings = parseBackupSettings();
  try {
    // ---- the data: 30 % mail, 60 % app files, 10 % database ----
    const cli = async (args: string[], input?: string): Promise<string> => {
      const r = await hearth(args, { env, input });
      if (r.code !== 0) throw new Error(`hearth ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    await cli(['user', 'add', 'alice', '--email', 'alice@example.test', '--password-stdin'], 'alice-password-1\n');
    await cli(['mailbox', 'add', 'alice@example.test', '--owner', 'alice']);
    const manifest = path.join(root, 'manifest.json');
    fs.writeFileSync(manifest, JSON.stringify({ id: 'bench.app', title: 'Bench', version: '1.0.0', manifestVersion: 2, httpPort: 8000, addons: { localstorage: {}, mysql: {} } }));
    await cli(['app', 'install', manifest, '--id', APP, '--domain', `${APP}.example.test`]);
    const messages = Math.max(100, Math.round((10_000 * MB) / 1024));
    const maildir = path.join(dataDir, 'mail', 'example.test', 'alice');
    for (const d of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(maildir, d), { recursive: true });
    const mailBytes = (MB * 0.3 * 1048576) / messages;
    const uidlist: string[] = [`3 V1700000000 N${messages + 1} G0`];
    for (let i = 0; i < messages; i++) {
      const name = `${1700000000 + i}.M${i}P1.bench,S=${Math.round(mailBytes)}`;
      fs.writeFileSync(path.join(maildir, 'cur', `${name}:2,S`), `From: bob@remote.test\r\nTo: alice@example.test\r\nSubject: message ${i}\r\n\r\n${text(mailBytes * (0.5 + Math.random()))}\r\n`);
      uidlist.push(`${i + 1} :${name}`);
    }
    fs.writeFileSync(path.join(maildir, 'dovecot-uidlist'), uidlist.join('\n') + '\n');
    const appData = path.join(dataDir, 'apps', APP, 'data');
    const files: string[] = [];
    let written = 0;
    for (let i = 0; written < MB * 0.6 * 1048576; i++) {
      const dir = path.join(appData, `d${i % 50}`);
      fs.mkdirSync(dir, { recursive: true });
      const size = [4096, 65536, 1048576][i % 3]!;
      const file = path.join(dir, `f${i}.${i % 2 ? 'bin' : 'txt'}`);
      fs.writeFileSync(file, i % 2 ? randomBytes(size) : text(size));
      files.push(file);
      written += size;
    }
    const rows = Math.round((MB * 0.1 * 1048576) / 1000);
    const appEnv = Object.fromEntries(
      (await cli(['app', 'env', APP]))
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    // rows from a cross join of digits: portable across MySQL and MariaDB (no recursion limits)
    const digits = ['a', 'b', 'c', 'd', 'e', 'f'];
    const sql = [
      'CREATE TABLE digit (i INT); INSERT INTO digit VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9);',
      'CREATE TABLE t (id INT PRIMARY KEY, body TEXT);',
      `INSERT INTO t SELECT n, REPEAT(MD5(n), 31) FROM (SELECT ${digits.map((d, i) => `${d}.i * ${10 ** i}`).join(' + ')} AS n FROM ${digits.map((d) => `digit ${d}`).join(', ')}) x WHERE n < ${rows};`,
      'DROP TABLE digit;',
    ].join(' ');
    run('mysql', ['-h', appEnv.CLOUDRON_MYSQL_HOST!, '-P', appEnv.CLOUDRON_MYSQL_PORT!, '-u', appEnv.CLOUDRON_MYSQL_USERNAME!, '-e', sql, appEnv.CLOUDRON_MYSQL_DATABASE!], { MYSQL_PWD: appEnv.CLOUDRON_MYSQL_PASSWORD! });
    const total = du(dataDir);
    log(`data: ${(total / 1048576).toFixed(0)} MiB (${messages} messages, ${files.length} app files, ${rows} database rows)`);

    // ---- first backups, then interleaved rounds: 1 % changed → incremental each way; restore each way ----
    const resticEnv = { RESTIC_REPOSITORY: path.join(root, 'restic-repo'), RESTIC_PASSWORD_FILE: pw, RESTIC_CACHE_DIR: path.join(root, 'restic-cache') };
    run('restic', ['init'], resticEnv);
    /** wall seconds and CPU seconds (this process and every child it reaped: restic, mysqldump, mysql, tar, zstd) */
    const measure = async (fn: () => unknown): Promise<{ s: number; cpu: number }> => {
      const cpu0 = treeCpuSeconds(process.pid);
      const t0 = performance.now();
      await fn();
      return { s: (performance.now() - t0) / 1000, cpu: treeCpuSeconds(process.pid) - cpu0 };
    };
    const hearthBackup = () => measure(() => createBackup({ config, settings }));
    const resticBackup = () => measure(() => run('restic', ['backup', '-q', 'mail', 'apps', 'hearth.db'], resticEnv, dataDir));
    // The same by hand with the database: its dump (as hearth takes it) beside the files, and on restore tar -x then that dump loaded.
    const mysqlArgs = ['-h', appEnv.CLOUDRON_MYSQL_HOST!, '-P', appEnv.CLOUDRON_MYSQL_PORT!, '-u', appEnv.CLOUDRON_MYSQL_USERNAME!];
    const mysqlPwd = { MYSQL_PWD: appEnv.CLOUDRON_MYSQL_PASSWORD! };
    const dumpDir = path.join(root, 'dump');
    fs.mkdirSync(dumpDir);
    const dumpFile = path.join(dumpDir, 'app.sql');
    const dumpThenRestic = () =>
      measure(() => {
        run('sh', ['-c', `mysqldump "$@" > "${dumpFile}"`, 'mysqldump', ...mysqlArgs, '--single-transaction', '--no-tablespaces', '--skip-dump-date', '--hex-blob', appEnv.CLOUDRON_MYSQL_DATABASE!], mysqlPwd);
        run('restic', ['backup', '-q', 'mail', 'apps', 'hearth.db', dumpDir], resticEnv, dataDir);
      });
    /** the app's own database gets a scratch table set loaded: the app user can create nothing else */
    const tarThenMysql = (tarTarget: string) =>
      measure(() => {
        run('sh', ['-c', `zstd -q -d -c "${root}/data.tar.zst" | tar -xf - -C "${tarTarget}"`]);
        run('sh', ['-c', `mysql "$@" < "${dumpFile}"`, 'mysql', ...mysqlArgs, `${appEnv.CLOUDRON_MYSQL_DATABASE!}`], mysqlPwd);
      });
    const tarZstd = () => measure(() => run('sh', ['-c', `tar -cf - -C "${dataDir}" --exclude=./backup mail apps hearth.db | zstd -q -T0 -o "${root}/data.tar.zst" -f`]));
    const first = { hearth: await hearthBackup(), restic: await resticBackup(), tar: await tarZstd() };
    log(`first: hearth ${first.hearth.s.toFixed(1)} s, restic ${first.restic.s.toFixed(1)} s, tar|zstd ${first.tar.s.toFixed(1)} s`);
    const changed = Math.max(1, Math.round(files.length / 100));
    const newMessages = Math.max(1, Math.ceil(messages / 100));
    const load0 = os.loadavg();
    type M = { s: number; cpu: number };
    const incr: { hearth: M; restic: M; dumpRestic: M }[] = [];
    const restore: { hearth: M; restic: M; tar: M; tarMysql: M }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < changed; i++) fs.appendFileSync(files[(i * 97 + r * 31) % files.length]!, randomBytes(4096));
      for (let i = 0; i < newMessages; i++) fs.writeFileSync(path.join(maildir, 'new', `${1800000000 + r * 100000 + i}.M${i}P${r}.bench`), `Subject: new ${i}\r\n\r\n${text(mailBytes)}\r\n`);
      // the order rotates each round: none always runs first or last on a warm page cache
      const runs: [keyof (typeof incr)[number], () => Promise<M>][] = [['hearth', hearthBackup], ['restic', resticBackup], ['dumpRestic', dumpThenRestic]];
      const got: Partial<(typeof incr)[number]> = {};
      for (let k = 0; k < runs.length; k++) {
        const [name, fn] = runs[(k + r) % runs.length]!;
        got[name] = await fn();
      }
      incr.push(got as (typeof incr)[number]);
      log(`round ${r + 1} incremental: hearth ${incr[r]!.hearth.s.toFixed(1)} s, restic ${incr[r]!.restic.s.toFixed(1)} s, mysqldump + restic ${incr[r]!.dumpRestic.s.toFixed(1)} s`);
      // restores: hearth puts everything back in place (aside, MySQL loaded, swapped); restic and tar -x into an empty folder
      const resticTarget = path.join(root, 'restic-restore');
      const tarTarget = path.join(root, 'tar-restore');
      fs.rmSync(resticTarget, { recursive: true, force: true });
      fs.rmSync(tarTarget, { recursive: true, force: true });
      fs.mkdirSync(tarTarget);
      if (r === 0) run('sh', ['-c', `tar -cf - -C "${dataDir}" --exclude=./backup mail apps hearth.db | zstd -q -T0 -o "${root}/data.tar.zst" -f`]);
      const h = await measure(() => restoreBackup({ config, settings, snapshot: 'latest' }));
      const t = await measure(() => run('sh', ['-c', `zstd -q -d -c "${root}/data.tar.zst" | tar -xf - -C "${tarTarget}"`]));
      const rr = await measure(() => run('restic', ['restore', 'latest', '--target', resticTarget], resticEnv));
      fs.rmSync(tarTarget, { recursive: true, force: true });
      fs.mkdirSync(tarTarget);
      run('mysql', [...mysqlArgs, '-e', 'DROP TABLE t', appEnv.CLOUDRON_MYSQL_DATABASE!], mysqlPwd);
      const tm = await tarThenMysql(tarTarget);
      restore.push({ hearth: h, restic: rr, tar: t, tarMysql: tm });
      log(`round ${r + 1} restore: hearth ${h.s.toFixed(1)} s, restic ${rr.s.toFixed(1)} s, tar -x ${t.s.toFixed(1)} s, tar -x + mysql ${tm.s.toFixed(1)} s`);
    }
    const load1 = os.loadavg();
    const sizes = { hearth: du(path.join(root, 'hearth-repo')), restic: du(resticEnv.RESTIC_REPOSITORY), tar: fs.statSync(`${root}/data.tar.zst`).size };

    const mib = (b: number): string => `${(b / 1048576).toFixed(0)} MiB`;
    const sorted = (xs: number[]): number[] => [...xs].sort((p, q) => p - q);
    const med = (xs: number[]): number => sorted(xs)[Math.floor(xs.length / 2)]!;
    const stat = (xs: number[], digits = 1): string => `${med(xs).toFixed(digits)} (${sorted(xs)[0]!.toFixed(digits)}–${sorted(xs).at(-1)!.toFixed(digits)})`;
    const secs = (xs: { s: number }[]): string => `${stat(xs.map((v) => v.s))} s`;
    const cpus = (xs: { cpu: number }[]): string => `${stat(xs.map((v) => v.cpu))} CPU-s`;
    const body = [
      `Run ${new Date().toISOString().slice(0, 10)} on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), restic ${execFileSync('restic', ['version'], { encoding: 'utf8' }).split(' ')[1]}, shared with other work: load average ${load0.map((l) => l.toFixed(1)).join(' / ')} at the start of the rounds, ${load1.map((l) => l.toFixed(1)).join(' / ')} at the end.`,
      `Data: **${mib(total)}** (BACKUP_BENCH_MB=${MB}): ${messages} Maildir messages, ${files.length} app files (half random, half text), a MySQL table of ${rows} rows, the directory store. Each of ${ROUNDS} rounds: ${changed} app file(s) appended to and ${newMessages} new messages (1 %), then an incremental backup each way (order rotating), then a restore each way. Median (range) over the rounds; CPU-s: this process and every child it ran (restic, mysqldump, mysql, tar, zstd), not the MySQL server's.`,
      '',
      '| | hearth | restic directly (same files) | tar \\| zstd | hearth / reference |',
      '|---|---|---|---|---|',
      `| first backup | ${first.hearth.s.toFixed(1)} s, ${first.hearth.cpu.toFixed(1)} CPU-s | ${first.restic.s.toFixed(1)} s, ${first.restic.cpu.toFixed(1)} CPU-s | ${first.tar.s.toFixed(1)} s, ${first.tar.cpu.toFixed(1)} CPU-s | ${(first.hearth.s / first.restic.s).toFixed(2)}× restic |`,
      `| incremental (1 % changed) | ${secs(incr.map((v) => v.hearth))}, ${cpus(incr.map((v) => v.hearth))} | ${secs(incr.map((v) => v.restic))}, ${cpus(incr.map((v) => v.restic))} | | ${stat(incr.map((v) => v.hearth.s / v.restic.s), 2)}× restic (target ≤ 1.2×) |`,
      `| restore (everything) | ${secs(restore.map((v) => v.hearth))}, ${cpus(restore.map((v) => v.hearth))} (aside, MySQL loaded, swapped in) | ${secs(restore.map((v) => v.restic))}, ${cpus(restore.map((v) => v.restic))} | ${secs(restore.map((v) => v.tar))}, ${cpus(restore.map((v) => v.tar))} (tar -x) | ${stat(restore.map((v) => v.hearth.s / v.tar.s), 2)}× tar -x (target ≤ 1.5×), ${stat(restore.map((v) => v.hearth.s / v.restic.s), 2)}× restic restore |`,
      `| incremental, against mysqldump of the same database + restic | ${secs(incr.map((v) => v.hearth))} | ${secs(incr.map((v) => v.dumpRestic))}, ${cpus(incr.map((v) => v.dumpRestic))} | | ${stat(incr.map((v) => v.hearth.s / v.dumpRestic.s), 2)}× |`,
      `| restore, against tar -x + mysql loading the same dump | ${secs(restore.map((v) => v.hearth))} | | ${secs(restore.map((v) => v.tarMysql))}, ${cpus(restore.map((v) => v.tarMysql))} | ${stat(restore.map((v) => v.hearth.s / v.tarMysql.s), 2)}× |`,
      `| repository size at the end | ${mib(sizes.hearth)} | ${mib(sizes.restic)} | ${mib(sizes.tar)} (one archive) | |`,
      '',
      "hearth backup does more than restic on the same files: it dumps the database (mysqldump), takes the directory store through SQLite's online backup and links every Maildir folder under its lock; restic alone reads the raw files (the live MySQL files would not even be consistent). hearth restore loads the MySQL dump into the server; tar -x and restic restore only write files.",
    ].join('\n');
    process.stdout.write(body + '\n');
    if (process.env.BACKUP_BENCH_WRITE !== '0') writeBenchmarkSection('Backup', body);
  } finally {
    await hearth(['app', 'uninstall', APP], { env }).catch(() => {});
    fs.rmSync(root, { recursive: true, force: true });
  }
}

await main();
