import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { hearth, runCommand, tempDir, type CliResult, type TestEnv } from '@hearth/testkit';
import { stack } from '../../provisioning/test/helpers.ts';

export { MYSQL_ADMIN_URL, PG_ADMIN_URL } from '../../provisioning/test/helpers.ts';

export interface BackupStack {
  t: TestEnv;
  env: Record<string, string>;
  repo: string;
  passwordFile: string;
  cli(args: string[], env?: Record<string, string>): Promise<CliResult>;
  /** runs the CLI and fails the test on a non-zero exit */
  ok(args: string[], input?: string): Promise<string>;
  install(id: string, addons: Record<string, object>): Promise<Record<string, string>>;
  /** restic itself on the repository (for `restic check`, and to plant odd snapshots) */
  restic(args: string[], cwd?: string): Promise<{ code: number | null; out: string }>;
  cleanup(): Promise<void>;
}

/** The provisioning tests' stack (database servers configured), plus a restic repository and its password file outside the data dir. */
export async function backupStack(extra: Record<string, string> = {}): Promise<BackupStack> {
  const outside = tempDir('hearth-backup-repo-');
  const passwordFile = path.join(outside, 'password');
  fs.writeFileSync(passwordFile, 'correct horse battery staple\n', { mode: 0o600 });
  const repo = path.join(outside, 'repo');
  const st = await stack({ HEARTH_BACKUP_REPOSITORY: repo, HEARTH_BACKUP_PASSWORD_FILE: passwordFile, ...extra });
  const s: BackupStack = {
    t: st.t,
    env: st.env,
    repo,
    passwordFile,
    cli: st.cli,
    async ok(args, input) {
      const r = await hearth(args, { env: st.env, input });
      if (r.code !== 0) throw new Error(`hearth ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      return r.stdout;
    },
    install: (id, addons) => st.install(id, addons),
    async restic(args, cwd) {
      const r = spawnSync('restic', args, {
        cwd,
        env: { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD_FILE: passwordFile, RESTIC_CACHE_DIR: path.join(outside, 'cache') },
        encoding: 'utf8',
        timeout: 120_000,
      });
      return { code: r.status, out: `${r.stdout}${r.stderr}` };
    },
    async cleanup() {
      // every app's databases and redis instance go with it
      const apps = JSON.parse(await s.ok(['app', 'list', '--json']).catch(() => '[]')) as { id: string }[];
      for (const a of apps) await st.cli(['app', 'uninstall', a.id]);
      await st.t.cleanup();
      fs.rmSync(outside, { recursive: true, force: true });
    },
  };
  return s;
}

/** mysql, psql and redis-cli as the app would run them, with the credentials `hearth app env` gave it. */
export async function appSql(kind: 'mysql' | 'psql' | 'redis', env: Record<string, string>, statement: string): Promise<string> {
  let r;
  if (kind === 'mysql') {
    r = await runCommand('mysql', ['-h', env.CLOUDRON_MYSQL_HOST!, '-P', env.CLOUDRON_MYSQL_PORT!, '-u', env.CLOUDRON_MYSQL_USERNAME!, '-N', '-B', '-e', statement, env.CLOUDRON_MYSQL_DATABASE!], {
      env: { MYSQL_PWD: env.CLOUDRON_MYSQL_PASSWORD! },
      timeoutMs: 30_000,
    });
  } else if (kind === 'psql') {
    r = await runCommand('psql', ['-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-c', statement, env.CLOUDRON_POSTGRESQL_URL!], { timeoutMs: 30_000 });
  } else {
    r = await runCommand('redis-cli', ['-h', env.CLOUDRON_REDIS_HOST!, '-p', env.CLOUDRON_REDIS_PORT!, ...statement.split(' ')], { env: { REDISCLI_AUTH: env.CLOUDRON_REDIS_PASSWORD ?? '' }, timeoutMs: 30_000 });
  }
  if (r.code !== 0) throw new Error(`${kind} ${statement}: ${r.out}`);
  return r.stdout.trim();
}
