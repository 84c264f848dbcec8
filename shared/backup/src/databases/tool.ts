import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BackupError } from '../errors.ts';

/**
 * Runs a database's own dump or load tool (mysqldump, pg_dump, pg_restore, mysql) with its
 * password in the environment (MYSQL_PWD, PGPASSWORD), never in its arguments.
 */
export function runTool(
  cmd: string,
  args: string[],
  opts: {
    env?: Record<string, string>;
    stdinFile?: string;
    /** what the file passes through on its way to the tool's stdin; its error (a refused line) fails the run */
    stdinFilter?: Transform;
    stdoutFile?: string;
    what: string;
  },
): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = opts.stdinFile && !opts.stdinFilter ? fs.openSync(opts.stdinFile, 'r') : opts.stdinFilter ? 'pipe' : 'ignore';
    const stdout = opts.stdoutFile ? fs.openSync(opts.stdoutFile, 'w', 0o600) : 'pipe';
    const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: [stdin, stdout, 'pipe'] });
    for (const fd of [stdin, stdout]) if (typeof fd === 'number') fs.closeSync(fd);
    let filterError: Error | null = null;
    if (opts.stdinFilter && opts.stdinFile) {
      pipeline(fs.createReadStream(opts.stdinFile), opts.stdinFilter, child.stdin!).catch((e: Error) => {
        // A refused line stops the tool before it reads further; a tool that exited early (EPIPE) reports itself.
        if (e instanceof BackupError) {
          filterError = e;
          child.kill();
        }
      });
    }
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-16 * 1024)));
    child.once('error', (e) => reject(new BackupError(`${opts.what}: cannot run ${cmd}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not installed' : e.message}`)));
    child.once('close', (code) => {
      if (filterError) return reject(new BackupError(`${opts.what}: ${filterError.message}`));
      if (code === 0) return resolve(out);
      const full = /errno 28|no space left/i.test(err);
      const line = err.split('\n').map((l) => l.trim()).filter(Boolean).pop() ?? `exit status ${code}`;
      reject(new BackupError(`${opts.what}: ${full ? 'no space left on device' : line}`));
    });
  });
}

/** The connection parts of a mysql:// or postgres:// admin URL. */
export function urlParts(url: string, defaultPort: number): { host: string; port: string; user: string; password: string; database: string } {
  const u = new URL(url);
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port || String(defaultPort),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.replace(/^\//, '')),
  };
}
