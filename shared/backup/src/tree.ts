import fs from 'node:fs';
import path from 'node:path';
import { withFileLock } from '@hearth/mailstore';

/**
 * Copies of folder trees for a snapshot, made of hard links: files that are only ever
 * replaced by rename (messages, queued messages, RDB files) are then frozen as they were,
 * at no cost in space or time. Where a link is impossible (another filesystem) the file is copied.
 */

const asRoot = process.getuid?.() === 0;

function mkdirLike(dst: string, st: fs.Stats): void {
  fs.mkdirSync(dst, { recursive: true });
  fs.chmodSync(dst, st.mode & 0o7777);
  if (asRoot) fs.lchownSync(dst, st.uid, st.gid);
}

/** Links one file into place; false when it vanished meanwhile (renamed or deleted). */
export function linkFile(src: string, dst: string): boolean {
  try {
    fs.linkSync(src, dst);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return false;
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw err;
    try {
      fs.copyFileSync(src, dst);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }
  return true;
}

export interface TreeOptions {
  /** Maildir folders: each folder's files are taken under its dovecot-uidlist lock, tmp/ is left empty */
  maildir?: boolean;
  /** copy instead of linking (files written in place) */
  copy?: boolean;
}

/** Mirrors src at dst: directories (mode and owner), files (linked or copied), symlinks as symlinks. */
export async function mirrorTree(src: string, dst: string, opts: TreeOptions = {}): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(src);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isDirectory()) {
    fs.mkdirSync(path.dirname(dst), { recursive: true, mode: 0o700 });
    mirrorEntry(src, dst, st, opts);
    return;
  }
  mkdirLike(dst, st);
  const isFolder = opts.maildir === true && fs.existsSync(path.join(src, 'cur'));
  const subfolders: string[] = [];
  const takeFolder = async (): Promise<void> => {
    for (const name of fs.readdirSync(src)) {
      if (isFolder && name === 'dovecot-uidlist.lock') continue;
      const from = path.join(src, name);
      let est: fs.Stats;
      try {
        est = fs.lstatSync(from);
      } catch {
        continue;
      }
      if (isFolder && est.isDirectory() && (name === 'cur' || name === 'new' || name === 'tmp')) {
        mkdirLike(path.join(dst, name), est);
        // tmp/ holds deliveries in progress: never a message yet
        if (name !== 'tmp') for (const f of fs.readdirSync(from)) linkFile(path.join(from, f), path.join(dst, name, f));
      } else if (est.isDirectory()) {
        subfolders.push(name);
      } else {
        mirrorEntry(from, path.join(dst, name), est, opts);
      }
    }
  };
  if (isFolder) await withFileLock(path.join(src, 'dovecot-uidlist.lock'), takeFolder);
  else await takeFolder();
  for (const name of subfolders) await mirrorTree(path.join(src, name), path.join(dst, name), opts);
}

function mirrorEntry(src: string, dst: string, st: fs.Stats, opts: TreeOptions): void {
  if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(src), dst);
  else if (st.isFile()) {
    if (opts.copy) fs.copyFileSync(src, dst);
    else linkFile(src, dst);
  }
  // sockets, fifos and devices are not data
}
