import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { BackupError } from './errors.ts';
import { requireRepository, type BackupSettings } from './settings.ts';

/**
 * The restic command line, the only place Hearth talks to it. The password reaches restic
 * through RESTIC_PASSWORD_FILE in its environment, never its arguments; restic's own
 * messages are turned into one line that says what is wrong.
 */

export const snapshotSchema = z.object({
  id: z.string(),
  short_id: z.string(),
  time: z.string(),
  tags: z.array(z.string()).optional(),
  paths: z.array(z.string()),
  hostname: z.string().optional(),
});
export type ResticSnapshot = z.infer<typeof snapshotSchema>;

/** Environment restic must not inherit: another password or repository would override ours. */
const OWN_VARIABLES = /^RESTIC_(PASSWORD|PASSWORD_FILE|PASSWORD_COMMAND|REPOSITORY|REPOSITORY_FILE|KEY_HINT)$/;

/** How long a command waits for another restic's conflicting lock before failing. */
const LOCK_WAIT_MS = 60_000;

/** restic refused: another restic holds a lock that conflicts with this command's. */
class RepositoryLockedError extends BackupError {}

export interface RunOptions {
  cwd?: string;
  /** what Hearth was doing, for error messages: "backup", "restore" */
  action: string;
  /** restic exit codes that are not failures */
  okCodes?: number[];
}

export class Restic {
  readonly repository: string;
  private readonly passwordFile: string;

  constructor(
    settings: BackupSettings,
    /** restic's cache of repository metadata (kept beside the data, 0700) */
    private readonly cacheDir: string,
  ) {
    const r = requireRepository(settings);
    this.repository = r.repository;
    this.passwordFile = r.passwordFile;
    this.bin = settings.resticBin;
  }

  private readonly bin: string;

  private env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!OWN_VARIABLES.test(k)) env[k] = v;
    fs.mkdirSync(this.cacheDir, { recursive: true, mode: 0o700 });
    return { ...env, RESTIC_REPOSITORY: this.repository, RESTIC_PASSWORD_FILE: this.passwordFile, RESTIC_CACHE_DIR: this.cacheDir, RESTIC_PROGRESS_FPS: '0.016' };
  }

  /**
   * restic refuses to start while another restic holds a conflicting lock (a prune or check beside a listing or a
   * backup, from this process, the CLI or another replica). Like newer restic's --retry-lock (Debian 12 has 0.14),
   * wait and try again for up to LOCK_WAIT_MS before failing with the lock's holder named.
   */
  async run(args: string[], opts: RunOptions): Promise<string> {
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
      try {
        return await this.runOnce(args, opts);
      } catch (err) {
        if (!(err instanceof RepositoryLockedError) || Date.now() + delay > deadline) throw err;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private runOnce(args: string[], opts: RunOptions): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.bin, args, { cwd: opts.cwd, env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let err = '';
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-64 * 1024)));
      child.once('error', (e) => reject(new BackupError(`cannot run ${this.bin} (HEARTH_RESTIC_BIN): ${e.message}`)));
      child.once('close', (code) => {
        if (code === 0 || opts.okCodes?.includes(code ?? -1)) return resolve(Buffer.concat(out).toString('utf8'));
        const locked = /repository is already locked (?:exclusively )?by (.*)/i.exec(err);
        if (locked) {
          const holder = locked[1]!.trim();
          return reject(new RepositoryLockedError(`${opts.action} failed: the backup repository ${this.repository} is locked by ${holder}; if no restic runs there, remove the stale lock with "restic unlock"`));
        }
        reject(new BackupError(`${opts.action} failed: ${this.explain(err, code)}`));
      });
    });
  }

  /** restic's stderr as one line an operator can act on. */
  private explain(stderr: string, code: number | null): string {
    if (/wrong password or no key found/i.test(stderr)) return `wrong password for the backup repository ${this.repository} (HEARTH_BACKUP_PASSWORD_FILE)`;
    if (/Is there a repository at the following location|repository does not exist|unable to open config file/i.test(stderr)) {
      return `no restic repository at ${this.repository} (run "hearth backup create" to start one)`;
    }
    if (/no space left on device/i.test(stderr)) return 'no space left on device';
    if (/no matching ID found|invalid id|no snapshot found/i.test(stderr)) return 'no such snapshot';
    if (/repository contains errors|ciphertext verification failed|pack .* contains|load.*: .*not found|Fatal: unable to load snapshot|invalid data returned|decompress/i.test(stderr)) {
      return `the repository ${this.repository} is damaged: ${lastLine(stderr)}`;
    }
    return lastLine(stderr) || `restic exited with status ${code}`;
  }

  /** Whether the repository exists (opens with our password); creates it when `create`. */
  async ensureRepository(): Promise<boolean> {
    try {
      await this.run(['cat', 'config'], { action: 'opening the backup repository' });
      return false;
    } catch (err) {
      if (!/no restic repository at/.test((err as Error).message)) throw err;
    }
    // Local repositories: the parent folder must exist; restic makes the rest (0700).
    if (!/^[a-z0-9]+:/i.test(this.repository)) fs.mkdirSync(path.dirname(path.resolve(this.repository)), { recursive: true, mode: 0o700 });
    await this.run(['init'], { action: 'creating the backup repository' });
    return true;
  }

  async snapshots(tags: string[] = []): Promise<ResticSnapshot[]> {
    // read-only: no lock, so a listing (the console shows one on every page view) never holds off a prune or check
    const text = await this.run(['--no-lock', 'snapshots', '--json', ...tags.flatMap((t) => ['--tag', t])], { action: 'listing snapshots' });
    return z.array(snapshotSchema).parse(JSON.parse(text || '[]'));
  }
}

function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !/^(repository [0-9a-f]+ opened|created restic repository|Please note)/.test(l));
  return (lines[lines.length - 1] ?? '').replace(/^Fatal:\s*/, '');
}
