import fs from 'node:fs';
import path from 'node:path';
import { Account } from './account.ts';
import { Folder } from './folder.ts';
import { uniqueName } from './unique.ts';

const MAX_IDLE_FOLDERS = 256;

/**
 * Maildir in Dovecot's layout under $HEARTH_DATA_DIR/mail/<domain>/<local>/:
 * INBOX is the root (cur/new/tmp), other folders are `.Name` subdirectories.
 */
export class MailStore {
  readonly root: string;
  private readonly folders = new Map<string, Folder>();
  private readonly accounts = new Map<string, Promise<Account>>();

  constructor(dataDir: string) {
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
   * Delivers one message atomically: written and fsync'd in tmp/, then renamed into new/
   * (a reader never sees a partial file), then the directory entry is fsync'd.
   * `folder` is a Maildir++ folder name without the leading dot (default INBOX).
   */
  async deliver(address: string, raw: Buffer, folder?: string): Promise<string> {
    const base = folder ? path.join(this.mailboxPath(address), `.${folder}`) : this.mailboxPath(address);
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
    } catch (err) {
      // a full disk: no half-written message left in tmp/
      await fs.promises.unlink(tmp).catch(() => {});
      throw err;
    }
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
