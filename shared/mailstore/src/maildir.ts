import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Maildir in Dovecot's layout under $HEARTH_DATA_DIR/mail/<domain>/<local>/:
 * INBOX is the root (cur/new/tmp), other folders are `.Name` subdirectories.
 */
export class MailStore {
  readonly root: string;

  constructor(dataDir: string) {
    this.root = path.join(dataDir, 'mail');
  }

  /** The Maildir root of a mailbox address. */
  mailboxPath(address: string): string {
    const at = address.lastIndexOf('@');
    const local = address.slice(0, at).toLowerCase();
    const domain = address.slice(at + 1).toLowerCase();
    if (at < 1 || !domain || /[/\\\0]/.test(address) || local.startsWith('.') || domain.startsWith('.')) throw new Error(`not a mailbox address: ${address}`);
    return path.join(this.root, domain, local);
  }

  /**
   * Delivers one message atomically: written and fsync'd in tmp/, then renamed into new/
   * (a reader never sees a partial file), then the directory entry is fsync'd.
   * `folder` is a Maildir++ folder name without the leading dot (default INBOX).
   */
  async deliver(address: string, raw: Buffer, folder?: string): Promise<string> {
    const base = folder ? path.join(this.mailboxPath(address), `.${folder}`) : this.mailboxPath(address);
    for (const sub of ['tmp', 'new', 'cur']) await fs.promises.mkdir(path.join(base, sub), { recursive: true });
    const name = `${Math.floor(Date.now() / 1000)}.M${process.hrtime.bigint() % 1000000n}P${process.pid}R${randomBytes(6).toString('hex')}.${os.hostname().replace(/[/:]/g, '_')},S=${raw.length}`;
    const tmp = path.join(base, 'tmp', name);
    const fh = await fs.promises.open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(raw);
      await fh.sync();
    } finally {
      await fh.close();
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
