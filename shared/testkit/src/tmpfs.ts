import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** A small file system of its own, to run a daemon's data directory out of space for real. */
export interface SmallDisk {
  /** writes a filler file until the file system reports ENOSPC */
  fill(): void;
  /** removes the filler */
  free(): void;
  unmount(): void;
}

/**
 * Mounts a tmpfs of `bytes` on the (empty) directory `dir`. Needs root (CAP_SYS_ADMIN); returns
 * why not as a string when mounting is impossible here, so a test can skip with that reason.
 */
export function mountTmpfs(dir: string, bytes: number): SmallDisk | string {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    return `cannot mount a tmpfs here: ${((err as { stderr?: Buffer }).stderr?.toString() || (err as Error).message).trim()}`;
  }
  const filler = path.join(dir, 'filler');
  return {
    fill() {
      const fd = fs.openSync(filler, 'a');
      const chunk = Buffer.alloc(64 * 1024, 1);
      try {
        for (;;) fs.writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      } finally {
        fs.closeSync(fd);
      }
      // whatever part of a block is left
      try {
        fs.appendFileSync(filler, Buffer.alloc(4096, 1));
      } catch {
        /* full */
      }
    },
    free() {
      fs.rmSync(filler, { force: true });
    },
    unmount() {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    },
  };
}
