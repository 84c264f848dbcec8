import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { Folder } from './folder.ts';
import { isNoSpace, tryHoldLock, writeFileAtomic, Mutex } from './lock.ts';
import { DELIMITER, MailStoreError, normalizeFolderName, SPECIAL_USE } from './names.ts';

export interface FolderInfo {
  /** wire name (modified UTF-7), "INBOX" for the root */
  name: string;
  /** RFC 6154 attribute, e.g. \Sent */
  specialUse: string | null;
  hasChildren: boolean;
  /** a hierarchy level that exists only because of its children (e.g. `.A.B` without `.A`) */
  noSelect: boolean;
}

export interface Usage {
  bytes: number;
  messages: number;
}

const USAGE_TTL_MS = 10_000;

/**
 * A change to the account's folder names or subscriptions, emitted as 'mailbox' by the Account
 * that made it (IMAP NOTIFY's MailboxName and SubscriptionChange, RFC 5465 §5). `by` is
 * whoever asked for it (a session), so it can leave out what it did itself.
 */
export type MailboxChange =
  | { kind: 'created' | 'deleted' | 'subscribed' | 'unsubscribed'; name: string; by?: object }
  | { kind: 'renamed'; name: string; oldName: string; by?: object };

/**
 * One mailbox address: the INBOX Maildir at `root` and its `.Folder` subfolders, the
 * subscriptions file, and quota usage. Obtained from MailStore.open(), which shares
 * Folder objects between all sessions of the process.
 */
export class Account extends EventEmitter<{ mailbox: [MailboxChange] }> {
  private readonly mutex = new Mutex();
  private usageCache: { at: number; usage: Usage } | null = null;

  constructor(
    readonly address: string,
    readonly root: string,
    private readonly folderAt: (name: string, dir: string) => Folder,
    private readonly dropFolder: (dir: string) => void,
    private readonly cachedFolder: (dir: string) => Folder | undefined,
  ) {
    super();
    // one listener per notifying session of this address
    this.setMaxListeners(0);
  }

  /**
   * Creates the Maildir and the special-use folders on first open. Returns false when the disk
   * was too full for some of it: the mailbox works without them, and the next open tries again.
   */
  async init(): Promise<boolean> {
    try {
      for (const sub of ['cur', 'new', 'tmp']) await fs.promises.mkdir(path.join(this.root, sub), { recursive: true, mode: 0o700 });
      const subs = await this.subscriptions();
      const missing = Object.keys(SPECIAL_USE).filter((n) => !fs.existsSync(this.dirOf(n)));
      for (const name of missing) await this.makeFolderDir(name);
      const unsubscribed = Object.keys(SPECIAL_USE).filter((n) => missing.includes(n) && !subs.includes(n));
      if (unsubscribed.length) await this.writeSubscriptions([...subs, ...unsubscribed]);
      return true;
    } catch (err) {
      if (isNoSpace(err) && fs.existsSync(path.join(this.root, 'cur'))) return false;
      throw err;
    }
  }

  /** The directory of a (normalized) folder name. */
  dirOf(name: string): string {
    return name === 'INBOX' ? this.root : path.join(this.root, `.${name}`);
  }

  private async makeFolderDir(name: string): Promise<void> {
    const dir = this.dirOf(name);
    for (const sub of ['cur', 'new', 'tmp']) await fs.promises.mkdir(path.join(dir, sub), { recursive: true, mode: 0o700 });
    // Dovecot marks Maildir++ subfolders with this empty file.
    await fs.promises.writeFile(path.join(dir, 'maildirfolder'), '', { flag: 'a' });
  }

  async listFolders(): Promise<FolderInfo[]> {
    const names = ['INBOX'];
    for (const e of await fs.promises.readdir(this.root, { withFileTypes: true })) {
      if (e.isDirectory() && e.name.startsWith('.') && !e.name.startsWith('..') && e.name.length > 1) names.push(e.name.slice(1));
    }
    const real = new Set(names);
    for (const n of [...real]) {
      const levels = n.split(DELIMITER);
      for (let i = 1; i < levels.length; i++) {
        const parent = levels.slice(0, i).join(DELIMITER);
        if (!names.includes(parent)) names.push(parent);
      }
    }
    names.sort((a, b) => (a === 'INBOX' ? -1 : b === 'INBOX' ? 1 : a < b ? -1 : a > b ? 1 : 0));
    return names.map((name) => ({
      name,
      specialUse: SPECIAL_USE[name] ?? null,
      hasChildren: names.some((n) => n.startsWith(name + DELIMITER)),
      noSelect: !real.has(name),
    }));
  }

  async exists(name: string): Promise<boolean> {
    const n = normalizeFolderName(name);
    return fs.promises.stat(path.join(this.dirOf(n), 'cur')).then(
      (s) => s.isDirectory(),
      () => false,
    );
  }

  /** An existing folder, loaded. */
  async folder(name: string): Promise<Folder> {
    const n = normalizeFolderName(name);
    const known = this.cachedFolder(this.dirOf(n));
    if (known && !known.gone) return known;
    if (!(await this.exists(n))) throw new MailStoreError(`no such mailbox: ${name}`, 'nonexistent');
    const f = this.folderAt(n, this.dirOf(n));
    await f.open();
    return f;
  }

  async createFolder(name: string, by?: object): Promise<void> {
    const n = normalizeFolderName(name);
    const created: string[] = [];
    await this.mutex.run(async () => {
      if (n === 'INBOX' || (await this.exists(n))) throw new MailStoreError('mailbox already exists', 'exists');
      // Superior levels are created too (RFC 3501 §6.3.3), so hierarchy browsing finds the new folder.
      const levels = n.split(DELIMITER);
      for (let i = 1; i < levels.length; i++) {
        const parent = levels.slice(0, i).join(DELIMITER);
        if (!(await this.exists(parent))) {
          await this.makeFolderDir(parent);
          created.push(parent);
        }
      }
      await this.makeFolderDir(n);
      created.push(n);
    });
    for (const c of created) this.emit('mailbox', { kind: 'created', name: c, by });
  }

  async deleteFolder(name: string, by?: object): Promise<void> {
    const n = normalizeFolderName(name);
    if (n === 'INBOX') throw new MailStoreError('INBOX cannot be deleted', 'cannot');
    await this.mutex.run(async () => {
      if (!(await this.exists(n))) throw new MailStoreError(`no such mailbox: ${name}`, 'nonexistent');
      const dir = this.dirOf(n);
      // Rename away first so no reader sees a half-deleted folder.
      const trash = path.join(this.root, `..DOVECOT-TRASHED.${process.pid}.${Date.now()}`);
      await fs.promises.rename(dir, trash);
      this.dropFolder(dir);
      await fs.promises.rm(trash, { recursive: true, force: true });
      this.usageCache = null;
    });
    this.emit('mailbox', { kind: 'deleted', name: n, by });
  }

  /** Renames a folder and its children (Maildir++ keeps each level as its own directory). */
  async renameFolder(from: string, to: string, by?: object): Promise<void> {
    const a = normalizeFolderName(from);
    const b = normalizeFolderName(to);
    if (b === 'INBOX') throw new MailStoreError('INBOX already exists', 'exists');
    if (a === 'INBOX') return this.renameInbox(b, by);
    const renamed: string[] = [];
    await this.mutex.run(async () => {
      if (!(await this.exists(a))) throw new MailStoreError(`no such mailbox: ${from}`, 'nonexistent');
      if (await this.exists(b)) throw new MailStoreError('target mailbox already exists', 'exists');
      if (b.startsWith(a + DELIMITER)) throw new MailStoreError('cannot move a mailbox into itself', 'cannot');
      const all = (await this.listFolders()).filter((f) => !f.noSelect).map((f) => f.name).filter((n) => n === a || n.startsWith(a + DELIMITER));
      for (const n of all) {
        const target = b + n.slice(a.length);
        normalizeFolderName(target);
        await fs.promises.rename(this.dirOf(n), this.dirOf(target));
        this.dropFolder(this.dirOf(n));
        renamed.push(n);
      }
      const subs = await this.subscriptions();
      if (subs.some((s) => all.includes(s))) await this.writeSubscriptions(subs.map((s) => (all.includes(s) ? b + s.slice(a.length) : s)));
    });
    for (const n of renamed) this.emit('mailbox', { kind: 'renamed', name: b + n.slice(a.length), oldName: n, by });
  }

  /** RENAME INBOX moves its messages into a new folder and leaves INBOX empty (RFC 3501 §6.3.5). */
  private async renameInbox(to: string, by?: object): Promise<void> {
    await this.createFolder(to, by);
    const inbox = await this.folder('INBOX');
    const dest = await this.folder(to);
    await inbox.moveTo(inbox.uids, dest);
  }

  /**
   * The POP3 maildrop lock (RFC 1939 §8: one session at a time may change the maildrop), in the
   * file Dovecot's pop3_lock_session uses. Null while another session holds it.
   */
  lockMaildrop(): Promise<(() => Promise<void>) | null> {
    return tryHoldLock(path.join(this.root, 'dovecot-pop3-session.lock'));
  }

  async subscriptions(): Promise<string[]> {
    const text = await fs.promises.readFile(path.join(this.root, 'subscriptions'), 'utf8').catch(() => '');
    return text.split('\n').filter((l) => l && l !== 'V\t2');
  }

  private async writeSubscriptions(names: string[]): Promise<void> {
    await writeFileAtomic(path.join(this.root, 'subscriptions'), [...new Set(names)].map((n) => `${n}\n`).join(''));
  }

  async subscribe(name: string, by?: object): Promise<void> {
    const n = normalizeFolderName(name);
    const changed = await this.mutex.run(async () => {
      const subs = await this.subscriptions();
      if (subs.includes(n)) return false;
      await this.writeSubscriptions([...subs, n]);
      return true;
    });
    if (changed) this.emit('mailbox', { kind: 'subscribed', name: n, by });
  }

  async unsubscribe(name: string, by?: object): Promise<void> {
    const n = normalizeFolderName(name);
    const changed = await this.mutex.run(async () => {
      const subs = await this.subscriptions();
      if (!subs.includes(n)) return false;
      await this.writeSubscriptions(subs.filter((s) => s !== n));
      return true;
    });
    if (changed) this.emit('mailbox', { kind: 'unsubscribed', name: n, by });
  }

  /** Bytes and messages over all folders (cached briefly; `added` keeps it current between scans). */
  async usage(): Promise<Usage> {
    if (this.usageCache && Date.now() - this.usageCache.at < USAGE_TTL_MS) return { ...this.usageCache.usage };
    const usage: Usage = { bytes: 0, messages: 0 };
    for (const f of await this.listFolders()) {
      for (const sub of ['cur', 'new']) {
        const dir = path.join(this.dirOf(f.name), sub);
        const files = await fs.promises.readdir(dir).catch(() => [] as string[]);
        for (const file of files) {
          if (file.startsWith('.')) continue;
          const m = /,S=(\d+)/.exec(file);
          const size = m ? Number(m[1]) : ((await fs.promises.stat(path.join(dir, file)).catch(() => null))?.size ?? 0);
          usage.bytes += size;
          usage.messages++;
        }
      }
    }
    this.usageCache = { at: Date.now(), usage };
    return { ...usage };
  }

  /** Tells the usage cache about bytes this process just added (negative: removed). */
  added(bytes: number, messages: number): void {
    if (this.usageCache) {
      this.usageCache.usage.bytes += bytes;
      this.usageCache.usage.messages += messages;
    }
  }
}
