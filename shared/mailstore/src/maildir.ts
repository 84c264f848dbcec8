import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { Account } from './account.ts';
import { Folder, type StagedMessage } from './folder.ts';
import { writeFileAtomic } from './lock.ts';
import { MailStoreError, normalizeFolderName } from './names.ts';
import { NO_QUOTA, type MailQuota } from './quota.ts';
import { uniqueName } from './unique.ts';

export interface IngestOptions {
  /** Maildir++ folder name (default INBOX) */
  folder?: string;
  /** create the folder when missing (Sieve's fileinto :create, restores) */
  create?: boolean;
  flags?: readonly string[];
  internalDate?: Date;
  /** take the UID now (IMAP APPEND answers APPENDUID) */
  assignUid?: boolean;
}

/** One message of an IMAP APPEND. */
export interface AppendedMessage {
  raw: Buffer;
  flags?: readonly string[];
  internalDate?: Date;
}

export interface Ingested {
  folder: string;
  path: string;
  uid: number | null;
  uidValidity: number | null;
}

const MAX_IDLE_FOLDERS = 256;

/**
 * Maildir in Dovecot's layout under $HEARTH_DATA_DIR/mail/<domain>/<local>/:
 * INBOX is the root (cur/new/tmp), other folders are `.Name` subdirectories.
 */
export class MailStore {
  readonly root: string;
  private readonly folders = new Map<string, Folder>();
  private readonly accounts = new Map<string, Promise<Account>>();

  constructor(
    dataDir: string,
    readonly quota: MailQuota = NO_QUOTA,
  ) {
    this.root = path.join(dataDir, 'mail');
  }

  /**
   * The mailbox of an address, created with its special-use folders on first open.
   * Accounts and folders are shared by every caller in this process, so sessions on
   * the same folder see each other's changes at once.
   */
  open(address: string): Promise<Account> {
    const root = this.mailboxPath(address);
    let acc = this.accounts.get(root);
    if (!acc) {
      const account = new Account(
        address.toLowerCase(),
        root,
        (name, dir) => this.folderAt(name, dir),
        (dir) => this.dropFolder(dir),
        (dir) => {
          const f = this.folders.get(dir);
          return f && f.uidValidity !== 0 ? f : undefined;
        },
      );
      acc = account.init().then((complete) => {
        if (!complete) this.accounts.delete(root);
        return account;
      });
      acc.catch(() => this.accounts.delete(root));
      this.accounts.set(root, acc);
    }
    return acc;
  }

  private folderAt(name: string, dir: string): Folder {
    let f = this.folders.get(dir);
    if (!f || f.gone) {
      f = new Folder(name, dir);
      this.folders.set(dir, f);
      if (this.folders.size > MAX_IDLE_FOLDERS) this.evictIdle();
    } else {
      // Map order doubles as recency: re-inserting marks it recently used.
      this.folders.delete(dir);
      this.folders.set(dir, f);
    }
    return f;
  }

  /** Forgets the least recently used folders nobody watches, so a long-running daemon's memory stays bounded. */
  private evictIdle(): void {
    for (const [dir, f] of this.folders) {
      if (this.folders.size <= MAX_IDLE_FOLDERS) break;
      if (!f.watched) this.folders.delete(dir);
    }
  }

  private dropFolder(dir: string): void {
    this.folders.get(dir)?.markGone();
    this.folders.delete(dir);
  }

  /** The Maildir root of a mailbox address. */
  mailboxPath(address: string): string {
    const at = address.lastIndexOf('@');
    const local = address.slice(0, at).toLowerCase();
    const domain = address.slice(at + 1).toLowerCase();
    if (at < 1 || !domain || /[/\\\0]/.test(address) || local.startsWith('.') || domain.startsWith('.')) throw new Error(`not a mailbox address: ${address}`);
    return path.join(this.root, domain, local);
  }

  private readonly knownFolders = new Set<string>();

  private async makeFolder(base: string): Promise<void> {
    for (const sub of ['tmp', 'new', 'cur']) await fs.promises.mkdir(path.join(base, sub), { recursive: true, mode: 0o700 });
    this.knownFolders.add(base);
  }

  /**
   * The one way a message enters a mailbox (SMTP delivery, IMAP APPEND, Sieve, restores):
   * checks the quota, then writes atomically. Without flags or a date it is a Maildir
   * delivery into new/ (tmp → fsync → rename, directory fsync; the UID comes when a reader
   * sees it); with them, or with `assignUid`, it is an append into cur/ that takes its UID now.
   * Throws MailStoreError 'overquota' (nothing written), 'nonexistent' for a missing folder
   * unless `create`, or the file system's error (ENOSPC: nothing left behind).
   */
  async ingest(address: string, raw: Buffer, opts: IngestOptions = {}): Promise<Ingested> {
    return (await this.ingestAll(address, raw, [opts]))[0]!;
  }

  /**
   * One message into several folders of a mailbox at once (Sieve's keep + fileinto), all or
   * nothing: the quota is checked for every copy, each copy is written to its folder's tmp/
   * first, and only when all are written do they move into place. Any failure (over quota,
   * a full disk, a missing folder) leaves no copy in any folder. Folders made for `create`
   * stay, empty, as Pigeonhole leaves them.
   *
   * A crash can also stop it between the first copy moved into place and the last. So before
   * moving several copies it writes a journal beside the Maildir (`.hearth-ingest.<name>`, the
   * copies' names, fsync'd) and removes it only after the last: `rollBackInterrupted` (run by
   * SMTP's queue before it retries what a crash left pending) removes the copies a journal names,
   * and the retry stores them all once. A journal gone means every copy is in place.
   */
  async ingestAll(address: string, raw: Buffer, targets: readonly IngestOptions[]): Promise<Ingested[]> {
    const account = await this.open(address);
    const plans = targets.map((opts) => ({ opts, folder: normalizeFolderName(opts.folder ?? 'INBOX') }));
    for (const { opts, folder } of plans) {
      if (folder === 'INBOX' || (await account.exists(folder))) continue;
      if (!opts.create) throw new MailStoreError(`no such mailbox: ${folder}`, 'nonexistent');
    }
    await this.checkQuota(account, raw.length * plans.length, plans.length);
    for (const { opts, folder } of plans) {
      if (opts.create && folder !== 'INBOX' && !(await account.exists(folder))) {
        await account.createFolder(folder).catch((err: unknown) => {
          if (!(err instanceof MailStoreError && err.code === 'exists')) throw err;
        });
      }
    }
    const staged: { folder: string; opts: IngestOptions; tmp: string; name: string; box: Folder | null }[] = [];
    const done: Ingested[] = [];
    let journal: string | null = null;
    try {
      for (const { opts, folder } of plans) {
        const box = opts.assignUid || opts.flags?.length || opts.internalDate ? await account.folder(folder) : null;
        const { tmp, name } = await this.stage(box ? box.dir : account.dirOf(folder), raw, opts.internalDate);
        staged.push({ folder, opts, tmp, name, box });
      }
      if (staged.length > 1) {
        journal = path.join(this.mailboxPath(address), `${INGEST_JOURNAL}${staged[0]!.name}`);
        const record: IngestJournal = { pid: process.pid, host: os.hostname(), copies: staged.map((s) => ({ dir: s.box ? s.box.dir : account.dirOf(s.folder), name: s.name })) };
        await writeFileAtomic(journal, JSON.stringify(record));
        await syncDir(path.dirname(journal));
      }
      for (const s of staged) {
        if (s.box) {
          const [rec] = await s.box.commitStaged([{ tmp: s.tmp, name: s.name, size: raw.length, flags: s.opts.flags ?? [] }]);
          done.push({ folder: s.folder, path: path.join(s.box.dir, 'cur', rec!.file), uid: rec!.uid, uidValidity: s.box.uidValidity });
        } else {
          done.push({ folder: s.folder, path: await this.commitNew(account.dirOf(s.folder), s.tmp, s.name), uid: null, uidValidity: null });
        }
        account.added(raw.length, 1);
      }
      if (journal) await fs.promises.unlink(journal);
      return done;
    } catch (err) {
      // undo: copies already moved into place go (a reader sees them vanish as if expunged), temp files too
      for (const d of done) {
        await fs.promises.unlink(d.path).catch(() => {});
        account.added(-raw.length, -1);
      }
      if (journal) await fs.promises.unlink(journal).catch(() => {});
      throw err;
    } finally {
      for (const s of staged) await fs.promises.unlink(s.tmp).catch(() => {});
    }
  }

  /**
   * Undoes the ingestAll calls a crash stopped between their first and last copy (their journal
   * is still there): every copy a journal names is removed from tmp/, new/ and cur/, so the
   * caller's retry stores the message once in each folder. Journals of a process still running
   * on this host are left alone, as are another host's for an hour. Returns how many it undid.
   */
  async rollBackInterrupted(address: string): Promise<number> {
    const root = this.mailboxPath(address);
    const names = (await fs.promises.readdir(root).catch(() => [] as string[])).filter((n) => n.startsWith(INGEST_JOURNAL) && !n.endsWith('.tmp'));
    let undone = 0;
    for (const n of names) {
      const file = path.join(root, n);
      const parsed = ingestJournal.safeParse(await readJson(file));
      if (parsed.success) {
        const j = parsed.data;
        const stat = await fs.promises.stat(file).catch(() => null);
        if (j.host === os.hostname() ? processAlive(j.pid) : stat !== null && Date.now() - stat.mtimeMs < FOREIGN_JOURNAL_MS) continue;
        for (const c of j.copies) {
          // the journal is ours: each copy is a directory of this mailbox and a Maildir base name
          if (path.relative(root, c.dir).startsWith('..') || c.name.includes('/')) continue;
          const cur = await fs.promises.readdir(path.join(c.dir, 'cur')).catch(() => [] as string[]);
          const gone = [path.join(c.dir, 'tmp', c.name), path.join(c.dir, 'new', c.name), ...cur.filter((f) => f === c.name || f.startsWith(`${c.name}:`)).map((f) => path.join(c.dir, 'cur', f))];
          for (const g of gone) await fs.promises.unlink(g).catch(() => {});
        }
        undone++;
      }
      await fs.promises.unlink(file).catch(() => {});
    }
    // the usage an opened account counted included the removed copies
    if (undone > 0) this.accounts.delete(root);
    return undone;
  }

  /**
   * Several messages into one existing folder, all or nothing (IMAP APPEND and MULTIAPPEND,
   * RFC 3502 §6.3.11): the quota is checked for all of them together, each is written to tmp/,
   * and they move into cur/ and take their UIDs in one step. Any failure leaves none of them.
   */
  async appendAll(address: string, folder: string, messages: readonly AppendedMessage[]): Promise<Ingested[]> {
    const account = await this.open(address);
    const name = normalizeFolderName(folder);
    if (name !== 'INBOX' && !(await account.exists(name))) throw new MailStoreError(`no such mailbox: ${name}`, 'nonexistent');
    const bytes = messages.reduce((n, m) => n + m.raw.length, 0);
    await this.checkQuota(account, bytes, messages.length);
    const box = await account.folder(name);
    const staged: StagedMessage[] = [];
    try {
      for (const m of messages) {
        const { tmp, name: base } = await this.stage(box.dir, m.raw, m.internalDate);
        staged.push({ tmp, name: base, size: m.raw.length, flags: m.flags ?? [] });
      }
      const added = await box.commitStaged(staged);
      account.added(bytes, added.length);
      return added.map((rec) => ({ folder: name, path: path.join(box.dir, 'cur', rec.file), uid: rec.uid, uidValidity: box.uidValidity }));
    } finally {
      for (const s of staged) await fs.promises.unlink(s.tmp).catch(() => {});
    }
  }

  /** Delivery into a folder (created when missing); the path of the new file. */
  async deliver(address: string, raw: Buffer, folder?: string): Promise<string> {
    return (await this.ingest(address, raw, { folder, create: true })).path;
  }

  /** Throws MailStoreError 'overquota' when `bytes` more in `messages` more messages would not fit. */
  async checkQuota(account: Account, bytes: number, messages: number): Promise<void> {
    if (!this.quota.bytes && !this.quota.messages) return;
    const usage = await account.usage();
    if (this.quota.bytes && usage.bytes + bytes > this.quota.bytes) throw new MailStoreError('mailbox is over its storage quota', 'overquota');
    if (this.quota.messages && usage.messages + messages > this.quota.messages) throw new MailStoreError('mailbox is over its message quota', 'overquota');
  }

  /** Whether a message of `bytes` still fits, `copies` times (SMTP asks at RCPT and DATA, before taking the message). */
  async hasRoom(address: string, bytes: number, copies = 1): Promise<boolean> {
    try {
      await this.checkQuota(await this.open(address), bytes * copies, copies);
      return true;
    } catch (err) {
      if (err instanceof MailStoreError && err.code === 'overquota') return false;
      throw err;
    }
  }

  /** Writes a copy into the folder's tmp/ (fsync'd); on failure nothing is left there. */
  private async stage(base: string, raw: Buffer, internalDate?: Date): Promise<{ tmp: string; name: string }> {
    const name = uniqueName(raw.length);
    const tmp = path.join(base, 'tmp', name);
    let fh: fs.promises.FileHandle;
    try {
      // Folders made once are remembered: three mkdir calls per message cost a quarter of a delivery.
      if (!this.knownFolders.has(base)) await this.makeFolder(base);
      fh = await fs.promises.open(tmp, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      // deleted since we last made it (IMAP DELETE, uninstall): make it again
      await this.makeFolder(base);
      fh = await fs.promises.open(tmp, 'wx', 0o600);
    }
    try {
      try {
        await fh.writeFile(raw);
        await fh.sync();
      } finally {
        await fh.close();
      }
      if (internalDate) await fs.promises.utimes(tmp, internalDate, internalDate);
    } catch (err) {
      // a full disk: no half-written message left in tmp/
      await fs.promises.unlink(tmp).catch(() => {});
      throw err;
    }
    return { tmp, name };
  }

  /** Moves a staged copy into new/ (a Maildir delivery: the UID comes when a reader sees it). */
  private async commitNew(base: string, tmp: string, name: string): Promise<string> {
    const dest = path.join(base, 'new', name);
    await fs.promises.rename(tmp, dest);
    const dir = await fs.promises.open(path.join(base, 'new'), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    return dest;
  }
}

/** ingestAll's journal of a delivery of several copies, beside the Maildir, while they move into place */
const INGEST_JOURNAL = '.hearth-ingest.';
/** how long a journal written on another host (a replica sharing the file system) may be a delivery still running there */
const FOREIGN_JOURNAL_MS = 60 * 60_000;

const ingestJournal = z.object({ pid: z.number().int(), host: z.string(), copies: z.array(z.object({ dir: z.string(), name: z.string() })) });
type IngestJournal = z.infer<typeof ingestJournal>;

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await fs.promises.readFile(file, 'utf8'));
  } catch {
    return null;
  }
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fs.promises.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
