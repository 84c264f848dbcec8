import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitFor } from '@hearth/testkit';

/** Dovecot's high-performance login mode: long-lived login processes, one per core kept ready. */
const TUNED_LOGIN = `  service_count = 0\n  process_min_avail = ${os.availableParallelism()}\n  vsz_limit = 1G\n`;
/** imap processes reused for later connections; authentication results cached. */
const TUNED_IMAP = 'service imap {\n  service_count = 0\n}\nauth_cache_size = 1M\n';

/** As root Dovecot runs as the Debian package's own users; otherwise all as the current user. */
const asRoot = process.getuid?.() === 0;

/** Gives Dovecot's mail user the files it must write (only needed, and only possible, as root). */
export function handToDovecot(...paths: string[]): void {
  if (asRoot) spawnSync('chown', ['-R', 'dovecot:dovecot', ...paths]);
}

export interface Dovecot {
  port: number;
  pid: number | null;
  /** Dovecot's own log file. */
  logFile: string;
  stop(): Promise<void>;
}

/**
 * Starts Debian's Dovecot (dovecot-imapd) serving `maildir` over plain IMAP on a free loopback
 * port, with its config, state, index and a passwd-file of one `login`/`password` under `dir`.
 * `ownUidlist` puts Dovecot's control files (dovecot-uidlist) in its index directory, so it
 * numbers the messages on its own instead of sharing Hearth's uidlist in the Maildir.
 */
export async function startDovecot(opts: {
  dir: string;
  maildir: string;
  login: string;
  password: string;
  ownUidlist?: boolean;
  /** listen address (default 127.0.0.1) */
  host?: string;
  /**
   * Dovecot's documented high-performance settings (wiki "LoginProcess", "PerformanceTuning"):
   * login processes serve many connections (service_count = 0, one per core kept ready), imap
   * processes are reused for later connections of the same user, no per-login stat storms.
   */
  tuned?: boolean;
  /** serve ManageSieve (Debian's dovecot-managesieved, Pigeonhole scripts beside the Maildir) instead of IMAP */
  managesieve?: boolean;
}): Promise<Dovecot> {
  const { dir, maildir } = opts;
  const host = opts.host ?? '127.0.0.1';
  const port = await freePort();
  for (const sub of ['run', 'state', 'index', 'home']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  fs.writeFileSync(path.join(dir, 'passwd'), `${opts.login}:{PLAIN}${opts.password}::::::\n`);
  const me = os.userInfo().username;
  const [mailUser, internalUser, loginUser] = asRoot ? ['dovecot', 'dovecot', 'dovenull'] : [me, me, me];
  handToDovecot(path.join(dir, 'index'), path.join(dir, 'home'));
  const logFile = path.join(dir, 'dovecot.log');
  const confFile = path.join(dir, 'dovecot.conf');
  fs.writeFileSync(
    confFile,
    `base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${logFile}
protocols = ${opts.managesieve ? 'sieve' : 'imap'}
listen = ${host}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_privileged_group =
default_internal_user = ${internalUser}
default_login_user = ${loginUser}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/passwd
}
userdb {
  driver = static
  args = uid=${mailUser} gid=${mailUser} home=${dir}/home
}
mail_location = maildir:${maildir}:INDEX=${dir}/index${opts.ownUidlist ? `:CONTROL=${dir}/index` : ''}
${
  opts.managesieve
    ? `service managesieve-login {
  inet_listener sieve {
    port = ${port}
  }
  chroot =
}
plugin {
  sieve = file:${dir}/home/sieve;active=${dir}/home/.dovecot.sieve
}`
    : `service imap-login {
  inet_listener imap {
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
  chroot =
${opts.tuned ? TUNED_LOGIN : ''}}`
}
${opts.tuned ? TUNED_IMAP : ''}
service anvil {
  chroot =
}
`,
  );
  const child = spawn('dovecot', ['-F', '-c', confFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  let spawnError: Error | null = null;
  child.on('error', (err) => (spawnError = err));
  const stop = async (): Promise<void> => {
    spawnSync('dovecot', ['-c', confFile, 'stop']);
    await new Promise<void>((resolve) => {
      if (child.exitCode !== null || spawnError) return resolve();
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, 5000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  };
  try {
    await waitFor(
      () =>
        new Promise<boolean>((resolve, reject) => {
          if (spawnError) return reject(new Error(`dovecot (Debian dovecot-imapd) is needed: ${String(spawnError)}`));
          const s = net.connect(port, host, () => {
            s.destroy();
            resolve(true);
          });
          s.on('error', () => resolve(false));
        }),
      15_000,
      100,
    );
  } catch (err) {
    await stop();
    const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
    throw new Error(`dovecot did not start: ${(err as Error).message}\n${out}\n${log}`);
  }
  return { port, pid: child.pid ?? null, logFile, stop };
}
