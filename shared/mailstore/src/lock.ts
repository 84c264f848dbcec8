import fs from 'node:fs';
import os from 'node:os';
import { processAlive } from '@hearth/config';

/** Serializes async work inside one process. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => {});
    return result;
  }
}

const STALE_MS = 30_000;
/** a session lock without a pid is taken over after this long */
const HOLD_STALE_MS = 30 * 60_000;
/** a holder touches its session lock this often, so replicas on other hosts can tell it lives */
const HOLD_TOUCH_MS = 60_000;
/** a session lock from another host that nobody touched for this long is taken over */
const FOREIGN_HOLD_STALE_MS = 3 * HOLD_TOUCH_MS;

/** The file system (or the user's share of it) is full: ENOSPC, or EDQUOT from disk quotas. */
export function isNoSpace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/**
 * A dot-lock file shared with other processes (Dovecot's `dovecot-uidlist.lock`):
 * created with O_EXCL, removed after; a lock older than 30 s is from a dead holder.
 */
export async function withFileLock<T>(file: string, fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fh = await fs.promises.open(file, 'wx', 0o600);
      // The pid is for people reading the lock; the lock is the file itself. On a full disk it
      // stays empty: holding it is what matters, and a failed write must not leave it behind.
      try {
        await fh.writeFile(String(process.pid));
      } catch (err) {
        if (!isNoSpace(err)) {
          await fh.close().catch(() => {});
          await fs.promises.unlink(file).catch(() => {});
          throw err;
        }
      }
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const st = await fs.promises.stat(file).catch(() => null);
      if (st && Date.now() - st.mtimeMs > STALE_MS) {
        await fs.promises.unlink(file).catch(() => {});
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${file}`);
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 10));
    }
  }
  try {
    return await fn();
  } finally {
    await fs.promises.unlink(file).catch(() => {});
  }
}

/**
 * A lock held for as long as a session lasts (not waited for): the file is created with O_EXCL
 * and holds the owner's `pid@host`; the holder touches it every minute. A lock whose process is
 * gone (same host) is taken over; one from another host (a replica on a shared file system,
 * where its pid means nothing here) only once nobody touched it for three minutes. Returns its
 * release, or null while a live holder (this process included) has it.
 */
export async function tryHoldLock(file: string): Promise<(() => Promise<void>) | null> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await fs.promises.open(file, 'wx', 0o600);
      // On a full disk the file stays empty: it still holds the lock (see below).
      await fh.writeFile(`${process.pid}@${os.hostname()}`).catch((err: unknown) => {
        if (!isNoSpace(err)) throw err;
      }).finally(() => fh.close());
      const touch = setInterval(() => {
        const now = new Date();
        fs.promises.utimes(file, now, now).catch(() => {});
      }, HOLD_TOUCH_MS);
      touch.unref();
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        clearInterval(touch);
        await fs.promises.unlink(file).catch(() => {});
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const [pidText = '', host] = (await fs.promises.readFile(file, 'latin1').catch(() => '')).split('@');
      const pid = parseInt(pidText, 10);
      const st = await fs.promises.stat(file).catch(() => null);
      const age = st ? Date.now() - st.mtimeMs : Infinity;
      if (host !== undefined && host !== os.hostname()) {
        if (age < FOREIGN_HOLD_STALE_MS) return null;
      } else {
        if (Number.isSafeInteger(pid) && pid > 0 && processAlive(pid)) return null;
        // Without a pid (written on a full disk) only its age tells that the holder is gone.
        if (!(pid > 0) && age < HOLD_STALE_MS) return null;
      }
      await fs.promises.unlink(file).catch(() => {});
    }
  }
  return null;
}

/**
 * Writes a file so readers see the old or the new content, never a mix: temp, fsync, rename.
 * On failure (a full disk) the temp file is removed and the old content stays.
 */
export async function writeFileAtomic(file: string, data: string | Buffer): Promise<void> {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const fh = await fs.promises.open(tmp, 'w', 0o600);
  try {
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.unlink(tmp).catch(() => {});
    throw err;
  }
}
