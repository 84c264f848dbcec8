import fs from 'node:fs';
import path from 'node:path';

/**
 * UIDVALIDITY for a new folder from the account's counter, in Dovecot's files so Dovecot and
 * Hearth draw from one sequence: `dovecot-uidvalidity` in the Maildir root holds the last value
 * (8 hex digits), and an empty `dovecot-uidvalidity.<hex>` marks it. Taking a value is renaming
 * the marker from n to n+1: rename is atomic, so of two processes only one gets each value.
 * A folder deleted and re-created within one second thus still gets a new UIDVALIDITY
 * (RFC 3501 §2.3.1.1).
 */
const MAIN = 'dovecot-uidvalidity';
const MARKER = /^dovecot-uidvalidity\.([0-9a-f]{8})$/;
const ATTEMPTS = 10;

const hex = (n: number): string => n.toString(16).padStart(8, '0');

export async function nextUidValidity(root: string): Promise<number> {
  // Like Dovecot, a counter that cannot be kept (disk full) does not stop the folder from opening.
  return takeNext(root).catch(fallback);
}

let lastFallback = 0;

/** The current time, but never the same value twice in this process (Dovecot's fallback). */
function fallback(): number {
  lastFallback = Math.max(Math.floor(Date.now() / 1000), lastFallback + 1);
  return lastFallback;
}

async function takeNext(root: string): Promise<number> {
  const main = path.join(root, MAIN);
  const text = await fs.promises.readFile(main, 'latin1').catch(() => '');
  let current = /^[0-9a-f]{8}/.test(text) ? parseInt(text.slice(0, 8), 16) : 0;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    if (current === 0) current = await newestMarker(root);
    if (current === 0) {
      // No counter yet: start from the current time, as Dovecot does.
      const start = Math.floor(Date.now() / 1000);
      const created = await fs.promises.writeFile(path.join(root, `${MAIN}.${hex(start)}`), '', { flag: 'wx', mode: 0o600 }).then(
        () => true,
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'EEXIST') return false;
          throw err;
        },
      );
      if (created) return written(main, start);
      continue;
    }
    const next = current >= 0xffffffff ? 1 : current + 1;
    const took = await fs.promises.rename(path.join(root, `${MAIN}.${hex(current)}`), path.join(root, `${MAIN}.${hex(next)}`)).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return false;
        throw err;
      },
    );
    if (took) return written(main, next);
    // Another process took this value (or the main file is stale): look at the markers again.
    current = 0;
  }
  // Still racing after several tries: the time is what Dovecot falls back to as well.
  return fallback();
}

async function newestMarker(root: string): Promise<number> {
  let newest = 0;
  for (const name of await fs.promises.readdir(root).catch(() => [] as string[])) {
    const m = MARKER.exec(name);
    if (m) newest = Math.max(newest, parseInt(m[1]!, 16));
  }
  return newest;
}

/** Records the value taken in the main file; that is only a hint (the marker is the counter), so a failed write is no loss. */
async function written(main: string, value: number): Promise<number> {
  await fs.promises.writeFile(main, hex(value), { mode: 0o600 }).catch(() => {});
  return value;
}
