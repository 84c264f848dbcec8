import fs from 'node:fs';
import path from 'node:path';
import { freePort, hearth, runCommand, startDaemon, testEnv, type CliResult, type CommandResult, type Daemon, type TestEnv } from '@hearth/testkit';

export const PASSWORDS = { alice: 'alice-password-1', bob: 'bob-password-1', ada: 'ada-password-1' } as const;

export interface SftpStack {
  t: TestEnv;
  port: number;
  daemon: Daemon;
  scratch: string;
  ok(args: string[], input?: string): Promise<string>;
  cli(args: string[]): Promise<CliResult>;
  /** the wiki app's data folder (ftp uid 33; alice may use it, bob may not, ada is an admin) */
  wikiData: string;
  /** OpenSSH's sftp client, commands on stdin, the password through SSH_ASKPASS */
  sftp(user: string, commands: string[], opts?: { password?: string; identity?: string }): Promise<CommandResult>;
  lftp(user: string, password: string, commands: string[]): Promise<CommandResult>;
  restart(): Promise<void>;
  cleanup(): Promise<void>;
}

export async function sftpStack(env: Record<string, string> = {}): Promise<SftpStack> {
  const port = await freePort();
  const t = await testEnv({ env: { HEARTH_SFTP_PORT: String(port), HEARTH_LOG_LEVEL: 'info', ...env } });
  const scratch = fs.mkdtempSync(path.join(path.dirname(t.dataDir), 'hearth-sftp-client-'));
  const ok = async (args: string[], input?: string): Promise<string> => {
    const r = await hearth(args, { env: t.env, input });
    if (r.code !== 0) throw new Error(`hearth ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  await ok(['user', 'add', 'alice', '--email', 'alice@example.test', '--password-stdin'], `${PASSWORDS.alice}\n`);
  await ok(['user', 'add', 'bob', '--email', 'bob@example.test', '--password-stdin'], `${PASSWORDS.bob}\n`);
  await ok(['user', 'add', 'ada', '--email', 'ada@example.test', '--role', 'admin', '--password-stdin'], `${PASSWORDS.ada}\n`);
  let n = 0;
  const manifest = (addons: object): string => {
    const file = path.join(scratch, `manifest-${n++}.json`);
    fs.writeFileSync(file, JSON.stringify({ id: 'test.files', title: 'Files', version: '1.0.0', manifestVersion: 2, httpPort: 8000, addons }));
    return file;
  };
  await ok(['app', 'install', manifest({ localstorage: { ftp: { uid: 33, uname: 'www-data' } } }), '--id', 'wiki', '--domain', 'wiki.example.test', '--access', 'users:alice']);
  await ok(['app', 'install', manifest({ localstorage: {} }), '--id', 'plain', '--domain', 'plain.example.test']);
  const ready = (o: string): boolean => o.includes('"msg":"ready"');
  const s: SftpStack = {
    t,
    port,
    scratch,
    daemon: await startDaemon('services/sftp/src/main.ts', t.env, ready),
    ok,
    cli: (args) => hearth(args, { env: t.env }),
    wikiData: path.join(t.dataDir, 'apps', 'wiki', 'data'),
    async sftp(user, commands, opts = {}) {
      const askpass = path.join(scratch, 'askpass');
      fs.writeFileSync(askpass, `#!/bin/sh\nprintf '%s\\n' '${(opts.password ?? '').replace(/'/g, "'\\''")}'\n`, { mode: 0o700 });
      const auth = opts.identity
        ? ['-i', opts.identity, '-o', 'PreferredAuthentications=publickey', '-o', 'IdentitiesOnly=yes']
        : ['-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', '-o', 'NumberOfPasswordPrompts=1'];
      return runCommand('sftp', ['-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=${path.join(scratch, 'known_hosts')}`, '-o', 'ConnectTimeout=10', ...auth, '-P', String(port), `${user}@127.0.0.1`], {
        input: commands.join('\n') + '\n',
        env: { SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: 'none' },
        timeoutMs: 30_000,
      });
    },
    lftp(user, password, commands) {
      return runCommand('lftp', ['-c', ['set sftp:auto-confirm yes', 'set net:max-retries 1', 'set net:timeout 10', `open -u ${JSON.stringify(`${user},${password}`)} sftp://127.0.0.1:${port}`, ...commands].join('; ')], {
        env: { HOME: scratch },
        timeoutMs: 30_000,
      });
    },
    async restart() {
      await s.daemon.stop();
      s.daemon = await startDaemon('services/sftp/src/main.ts', t.env, ready);
    },
    async cleanup() {
      await s.daemon.stop();
      fs.rmSync(scratch, { recursive: true, force: true });
      await t.cleanup();
    },
  };
  return s;
}
