import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** Owner-only modes for everything secret Hearth keeps on disk: the data directory and its key and store files. */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Creates `file` (mode 0600, its folder 0700) holding `contents` unless it exists, and returns what
 * the file holds afterwards. The contents are written aside and hard-linked into place, which fails
 * instead of overwriting, so processes racing to create the same key all end up with the first one.
 */
export function writeFileOnce(file: string, contents: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: PRIVATE_DIR_MODE });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  fs.writeFileSync(tmp, contents, { mode: PRIVATE_FILE_MODE });
  try {
    fs.linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return fs.readFileSync(file, 'utf8');
}

/**
 * Creates the data directory 0700 (missing parents too) and takes group and other access away from it
 * and from the named files in it when an older Hearth or a loose umask left them open. Returns what it
 * tightened ("hearth.db 0644→0600"), for the caller's log line; empty when everything was already private.
 */
export function securePrivateDir(dir: string, files: readonly string[] = []): string[] {
  fs.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const tightened: string[] = [];
  for (const [name, p] of [['data directory', dir] as const, ...files.map((f) => [f, path.join(dir, f)] as const)]) {
    let mode: number;
    try {
      mode = fs.statSync(p).mode & 0o777;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if ((mode & 0o077) === 0) continue;
    fs.chmodSync(p, mode & 0o700);
    tightened.push(`${name} ${octal(mode)}→${octal(mode & 0o700)}`);
  }
  return tightened;
}

const octal = (mode: number): string => `0${mode.toString(8).padStart(3, '0')}`;

/** Whether a process with this pid exists (EPERM: it exists but belongs to someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
