import fs from 'node:fs';
import path from 'node:path';
import ssh2, { type Attributes, type FileEntry, type SFTPWrapper } from 'ssh2';
import type { Logger } from '@hearth/log';
import { Chroot, PathRefused } from './chroot.ts';
import type { QuotaTracker } from './quota.ts';

const { STATUS_CODE, OPEN_MODE } = ssh2.utils.sftp;
const MAX_READ = 256 * 1024;
const DIR_BATCH = 128;
/** requests waiting their turn in one session; OpenSSH's sftp keeps 64 in flight, lftp fewer */
const MAX_QUEUED = 1024;
const asRoot = process.getuid?.() === 0;

type Handle = { kind: 'file'; fd: number; path: string; size: number } | { kind: 'dir'; path: string; entries: string[] | null };

class QuotaExceeded extends Error {}

export interface SessionOptions {
  sftp: SFTPWrapper;
  /** requests wait for it: the client's first ones arrive the moment the subsystem is accepted */
  ready: Promise<Chroot>;
  appId: string;
  /** every file and folder written is owned by this uid and gid (the manifest's ftp.uid) */
  uid: number;
  quota: QuotaTracker;
  maxHandles: number;
  logger: Logger;
}

function attrsOf(st: fs.Stats): Attributes {
  return { mode: st.mode, uid: st.uid, gid: st.gid, size: st.size, atime: Math.floor(st.atimeMs / 1000), mtime: Math.floor(st.mtimeMs / 1000) };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** The `ls -l` line SFTP version 3 clients show. */
function longname(name: string, st: fs.Stats): string {
  const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : '-';
  const perms = [0o400, 0o200, 0o100, 0o40, 0o20, 0o10, 0o4, 0o2, 0o1].map((bit, i) => (st.mode & bit ? 'rwx'[i % 3] : '-')).join('');
  const d = st.mtime;
  return `${type}${perms} ${String(st.nlink).padStart(4)} ${String(st.uid).padEnd(8)} ${String(st.gid).padEnd(8)} ${String(st.size).padStart(10)} ${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2)} ${d.getFullYear()} ${name}`;
}

/** SFTP version 3 requests over one app's data folder. */
export function serveSftp(o: SessionOptions): { close: () => void } {
  const { sftp } = o;
  let chroot: Chroot;
  const handles = new Map<number, Handle>();
  let nextHandle = 1;

  const own = async (p: string): Promise<void> => {
    if (asRoot) await fs.promises.lchown(p, o.uid, o.uid);
  };

  const newHandle = (h: Handle): Buffer => {
    const id = nextHandle++;
    handles.set(id, h);
    const b = Buffer.alloc(4);
    b.writeUInt32BE(id);
    return b;
  };
  const handleOf = (b: Buffer): Handle | undefined => (b.length === 4 ? handles.get(b.readUInt32BE(0)) : undefined);

  /**
   * Runs one request after every request before it, as OpenSSH's sftp-server does: clients
   * pipeline (lftp sends WRITE, FSETSTAT and CLOSE without waiting), and a CLOSE or a size change
   * applied before the WRITE it follows would lose the data. Any failure becomes a status reply,
   * never a crash.
   */
  let queue: Promise<void> = Promise.resolve();
  let queued = 0;
  const fail = (reqid: number, what: string, err: unknown): void => {
    const code = (err as NodeJS.ErrnoException).code;
    if (err instanceof PathRefused) {
      o.logger.info({ app: o.appId, request: what, reason: err.message }, 'sftp path refused');
      return void sftp.status(reqid, STATUS_CODE.PERMISSION_DENIED, err.message);
    }
    if (err instanceof QuotaExceeded) {
      o.logger.info({ app: o.appId, request: what }, 'sftp upload refused: over the quota');
      return void sftp.status(reqid, STATUS_CODE.FAILURE, err.message);
    }
    if (code === 'ENOENT' || code === 'ENOTDIR') return void sftp.status(reqid, STATUS_CODE.NO_SUCH_FILE, 'no such file or folder');
    if (code === 'EACCES' || code === 'EPERM' || code === 'ELOOP') return void sftp.status(reqid, STATUS_CODE.PERMISSION_DENIED, 'permission denied');
    if (code === 'ENOSPC' || code === 'EDQUOT') return void sftp.status(reqid, STATUS_CODE.FAILURE, 'no space left on the disk');
    if (code === 'EEXIST') return void sftp.status(reqid, STATUS_CODE.FAILURE, 'already exists');
    if (code === 'ENOTEMPTY') return void sftp.status(reqid, STATUS_CODE.FAILURE, 'folder not empty');
    if (code === 'EISDIR') return void sftp.status(reqid, STATUS_CODE.FAILURE, 'is a folder');
    o.logger.warn({ app: o.appId, request: what, err: (err as Error).message }, 'sftp request failed');
    sftp.status(reqid, STATUS_CODE.FAILURE, 'failed');
  };
  const run = (reqid: number, what: string, fn: () => Promise<void>): void => {
    if (queued >= MAX_QUEUED) return void sftp.status(reqid, STATUS_CODE.FAILURE, 'too many requests in flight');
    queued++;
    queue = queue.then(async () => {
      try {
        chroot = await o.ready;
        await fn();
      } catch (err) {
        // a reply to a channel that is gone throws too: the queue goes on regardless
        try {
          fail(reqid, what, err);
        } catch {
          // the session is over
        }
      } finally {
        queued--;
      }
    });
  };
  const ok = (reqid: number): void => void sftp.status(reqid, STATUS_CODE.OK);
  const tooMany = (reqid: number): boolean => {
    if (handles.size < o.maxHandles) return false;
    sftp.status(reqid, STATUS_CODE.FAILURE, 'too many open files in this session');
    return true;
  };

  sftp.on('REALPATH', (reqid, p) =>
    run(reqid, 'realpath', async () => {
      const v = chroot.virtual(p);
      sftp.name(reqid, [{ filename: v, longname: v, attrs: {} as Attributes }]);
    }),
  );

  const stat = (follow: boolean) => (reqid: number, p: string) =>
    run(reqid, follow ? 'stat' : 'lstat', async () => {
      const host = await chroot.resolve(p, follow);
      sftp.attrs(reqid, attrsOf(await (follow ? fs.promises.stat(host) : fs.promises.lstat(host))));
    });
  sftp.on('STAT', stat(true));
  sftp.on('LSTAT', stat(false));

  sftp.on('OPEN', (reqid, p, flags, attrs) =>
    run(reqid, 'open', async () => {
      if (tooMany(reqid)) return;
      const host = await chroot.resolve(p, true);
      let mode = 0;
      const write = (flags & OPEN_MODE.WRITE) !== 0 || (flags & OPEN_MODE.APPEND) !== 0;
      if ((flags & OPEN_MODE.READ) && write) mode = fs.constants.O_RDWR;
      else mode = write ? fs.constants.O_WRONLY : fs.constants.O_RDONLY;
      if (flags & OPEN_MODE.CREAT) mode |= fs.constants.O_CREAT;
      if (flags & OPEN_MODE.EXCL) mode |= fs.constants.O_EXCL;
      if (flags & OPEN_MODE.APPEND) mode |= fs.constants.O_APPEND;
      const before = await fs.promises.stat(host).catch(() => null);
      if (before?.isDirectory()) throw Object.assign(new Error('is a folder'), { code: 'EISDIR' });
      // A symlink planted after resolve() is not followed.
      const fd = await new Promise<number>((resolve, reject) =>
        fs.open(host, mode | fs.constants.O_NOFOLLOW, (attrs.mode ?? 0o644) & 0o777, (err, fd) => (err ? reject(err) : resolve(fd))),
      );
      let size = before?.size ?? 0;
      if (write && (flags & OPEN_MODE.TRUNC) && size > 0) {
        await new Promise<void>((resolve, reject) => fs.ftruncate(fd, 0, (err) => (err ? reject(err) : resolve())));
        o.quota.take(o.appId, -size);
        size = 0;
      }
      if (write && asRoot) await new Promise<void>((resolve, reject) => fs.fchown(fd, o.uid, o.uid, (err) => (err ? reject(err) : resolve())));
      sftp.handle(reqid, newHandle({ kind: 'file', fd, path: host, size }));
    }),
  );

  sftp.on('READ', (reqid, handle, offset, length) =>
    run(reqid, 'read', async () => {
      const h = handleOf(handle);
      if (h?.kind !== 'file') return void sftp.status(reqid, STATUS_CODE.FAILURE, 'bad handle');
      const buf = Buffer.alloc(Math.min(length, MAX_READ));
      const n = await new Promise<number>((resolve, reject) => fs.read(h.fd, buf, 0, buf.length, offset, (err, n) => (err ? reject(err) : resolve(n))));
      if (n === 0) return void sftp.status(reqid, STATUS_CODE.EOF);
      sftp.data(reqid, buf.subarray(0, n));
    }),
  );

  sftp.on('WRITE', (reqid, handle, offset, data) =>
    run(reqid, 'write', async () => {
      const h = handleOf(handle);
      if (h?.kind !== 'file') return void sftp.status(reqid, STATUS_CODE.FAILURE, 'bad handle');
      const end = offset + data.length;
      const growth = Math.max(0, end - h.size);
      if (!o.quota.take(o.appId, growth)) throw new QuotaExceeded("the app's data folder is over its quota (HEARTH_SFTP_QUOTA_MB)");
      try {
        await new Promise<void>((resolve, reject) => fs.write(h.fd, data, 0, data.length, offset, (err) => (err ? reject(err) : resolve())));
      } catch (err) {
        o.quota.take(o.appId, -growth);
        throw err;
      }
      h.size = Math.max(h.size, end);
      ok(reqid);
    }),
  );

  const fstat = (reqid: number, handle: Buffer): void =>
    run(reqid, 'fstat', async () => {
      const h = handleOf(handle);
      if (!h) return void sftp.status(reqid, STATUS_CODE.FAILURE, 'bad handle');
      sftp.attrs(reqid, attrsOf(h.kind === 'file' ? await new Promise<fs.Stats>((resolve, reject) => fs.fstat(h.fd, (err, st) => (err ? reject(err) : resolve(st)))) : await fs.promises.stat(h.path)));
    });
  sftp.on('FSTAT', fstat);

  /** Permissions and times only: ownership stays the manifest's uid; size through truncation, within the quota. */
  const setAttrs = async (host: string, attrs: Partial<Attributes>): Promise<void> => {
    if (attrs.size !== undefined) {
      const st = await fs.promises.stat(host);
      if (!o.quota.take(o.appId, attrs.size - st.size)) throw new QuotaExceeded("the app's data folder is over its quota (HEARTH_SFTP_QUOTA_MB)");
      await fs.promises.truncate(host, attrs.size);
    }
    if (attrs.mode !== undefined) await fs.promises.chmod(host, attrs.mode & 0o777);
    if (attrs.atime !== undefined && attrs.mtime !== undefined) await fs.promises.utimes(host, attrs.atime, attrs.mtime);
  };
  sftp.on('SETSTAT', (reqid, p, attrs) =>
    run(reqid, 'setstat', async () => {
      await setAttrs(await chroot.resolve(p, true), attrs);
      ok(reqid);
    }),
  );
  sftp.on('FSETSTAT', (reqid, handle, attrs) =>
    run(reqid, 'fsetstat', async () => {
      const h = handleOf(handle);
      if (!h) return void sftp.status(reqid, STATUS_CODE.FAILURE, 'bad handle');
      await setAttrs(h.path, attrs);
      if (h.kind === 'file' && attrs.size !== undefined) h.size = attrs.size;
      ok(reqid);
    }),
  );

  sftp.on('CLOSE', (reqid, handle) =>
    run(reqid, 'close', async () => {
      const h = handleOf(handle);
      if (!h) return void sftp.status(reqid, STATUS_CODE.FAILURE, 'bad handle');
      handles.delete(handle.readUInt32BE(0));
      if (h.kind === 'file') await new Promise<void>((resolve, reject) => fs.close(h.fd, (err) => (err ? reject(err) : resolve())));
      ok(reqid);
    }),
  );

  sftp.on('OPENDIR', (reqid, p) =>
    run(reqid, 'opendir', async () => {
      if (tooMany(reqid)) return;
      const host = await chroot.resolve(p, true);
      if (!(await fs.promises.stat(host)).isDirectory()) throw Object.assign(new Error('not a folder'), { code: 'ENOTDIR' });
      sftp.handle(reqid, newHandle({ kind: 'dir', path: host, entries: null }));
    }),
  );

  sftp.on('READDIR', (reqid, handle) =>
    run(reqid, 'readdir', async () => {
      const h = handleOf(handle);
      if (h?.kind !== 'dir') return void sftp.status(reqid, STATUS_CODE.FAILURE, 'bad handle');
      h.entries ??= ['.', '..', ...(await fs.promises.readdir(h.path)).sort()];
      if (h.entries.length === 0) return void sftp.status(reqid, STATUS_CODE.EOF);
      const batch = h.entries.splice(0, DIR_BATCH);
      const names: FileEntry[] = [];
      for (const name of batch) {
        const st = await fs.promises.lstat(name === '..' && h.path === chroot.root ? h.path : path.join(h.path, name)).catch(() => null);
        if (st) names.push({ filename: name, longname: longname(name, st), attrs: attrsOf(st) });
      }
      sftp.name(reqid, names);
    }),
  );

  sftp.on('REMOVE', (reqid, p) =>
    run(reqid, 'remove', async () => {
      const host = await chroot.resolve(p, false);
      const st = await fs.promises.lstat(host);
      if (st.isDirectory()) throw Object.assign(new Error('is a folder'), { code: 'EISDIR' });
      await fs.promises.unlink(host);
      if (st.isFile() && st.nlink === 1) o.quota.take(o.appId, -st.size);
      ok(reqid);
    }),
  );

  sftp.on('MKDIR', (reqid, p, attrs) =>
    run(reqid, 'mkdir', async () => {
      const host = await chroot.resolve(p, false);
      if (host === chroot.root) throw Object.assign(new Error('exists'), { code: 'EEXIST' });
      await fs.promises.mkdir(host, (attrs.mode ?? 0o755) & 0o777);
      await own(host);
      ok(reqid);
    }),
  );

  sftp.on('RMDIR', (reqid, p) =>
    run(reqid, 'rmdir', async () => {
      const host = await chroot.resolve(p, false);
      if (host === chroot.root) throw new PathRefused("the data folder itself cannot be removed");
      await fs.promises.rmdir(host);
      ok(reqid);
    }),
  );

  sftp.on('RENAME', (reqid, from, to) =>
    run(reqid, 'rename', async () => {
      const src = await chroot.resolve(from, false);
      const dst = await chroot.resolve(to, false);
      if (src === chroot.root || dst === chroot.root) throw new PathRefused('the data folder itself cannot be renamed');
      // SFTP v3: renaming onto an existing name fails
      if (await fs.promises.lstat(dst).catch(() => null)) throw Object.assign(new Error('exists'), { code: 'EEXIST' });
      await fs.promises.rename(src, dst);
      ok(reqid);
    }),
  );

  sftp.on('READLINK', (reqid, p) =>
    run(reqid, 'readlink', async () => {
      const host = await chroot.resolve(p, false);
      const target = path.resolve(path.dirname(host), await fs.promises.readlink(host));
      const seen = chroot.toClient(target);
      if (seen === null) throw new PathRefused(`${chroot.virtual(p)} points outside the app's data folder`);
      sftp.name(reqid, [{ filename: seen, longname: seen, attrs: {} as Attributes }]);
    }),
  );

  sftp.on('SYMLINK', (reqid) => sftp.status(reqid, STATUS_CODE.OP_UNSUPPORTED, 'symlinks cannot be made over SFTP'));

  return {
    close() {
      for (const h of handles.values()) if (h.kind === 'file') fs.close(h.fd, () => {});
      handles.clear();
    },
  };
}
