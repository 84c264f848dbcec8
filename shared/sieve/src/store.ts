import fs from 'node:fs';
import path from 'node:path';

export interface ScriptLimits {
  /** largest script in bytes */
  maxSize: number;
  /** scripts per mailbox */
  maxScripts: number;
}

export class ScriptStoreError extends Error {
  constructor(
    message: string,
    /** RFC 5804 response code */
    readonly code: 'NONEXISTENT' | 'ALREADYEXISTS' | 'ACTIVE' | 'QUOTA/MAXSIZE' | 'QUOTA/MAXSCRIPTS' | 'BADNAME',
  ) {
    super(message);
  }
}

const ACTIVE_LINK = '.dovecot.sieve';
const SCRIPT_DIR = 'sieve';
const SUFFIX = '.sieve';

/**
 * One mailbox's Sieve scripts in Dovecot/Pigeonhole's layout beside its Maildir:
 * `<maildir>/sieve/<name>.sieve`, and `<maildir>/.dovecot.sieve` a symlink to the active one.
 * Writes go through a temp file and a rename, so a reader sees the old script or the new one.
 */
export class ScriptStore {
  private readonly dir: string;
  private readonly link: string;

  constructor(
    mailboxRoot: string,
    readonly limits: ScriptLimits = { maxSize: 64 * 1024, maxScripts: 20 },
  ) {
    this.dir = path.join(mailboxRoot, SCRIPT_DIR);
    this.link = path.join(mailboxRoot, ACTIVE_LINK);
  }

  /** RFC 5804 §1.6 names, narrowed to what is safe as a file name. */
  static checkName(name: string): void {
    if (!name || name.length > 128 || /[\x00-\x1f\x7f/\\]/.test(name) || name.startsWith('.')) throw new ScriptStoreError('invalid script name', 'BADNAME');
  }

  private file(name: string): string {
    ScriptStore.checkName(name);
    return path.join(this.dir, name + SUFFIX);
  }

  async activeName(): Promise<string | null> {
    const target = await fs.promises.readlink(this.link).catch(() => null);
    if (!target || !target.startsWith(`${SCRIPT_DIR}/`) || !target.endsWith(SUFFIX)) return null;
    return target.slice(SCRIPT_DIR.length + 1, -SUFFIX.length);
  }

  async list(): Promise<{ name: string; active: boolean }[]> {
    const active = await this.activeName();
    const files = await fs.promises.readdir(this.dir).catch(() => [] as string[]);
    return files
      .filter((f) => f.endsWith(SUFFIX) && !f.startsWith('.'))
      .map((f) => f.slice(0, -SUFFIX.length))
      .sort()
      .map((name) => ({ name, active: name === active }));
  }

  async get(name: string): Promise<string | null> {
    return fs.promises.readFile(this.file(name), 'utf8').catch(() => null);
  }

  /** The active script's text, or null when none is active. */
  async active(): Promise<string | null> {
    const name = await this.activeName();
    return name === null ? null : this.get(name);
  }

  /** Whether a script of `size` bytes named `name` may be stored (RFC 5804 HAVESPACE). */
  async checkSpace(name: string, size: number): Promise<void> {
    ScriptStore.checkName(name);
    if (size > this.limits.maxSize) throw new ScriptStoreError(`scripts are limited to ${this.limits.maxSize} bytes`, 'QUOTA/MAXSIZE');
    const names = (await this.list()).map((s) => s.name);
    if (!names.includes(name) && names.length >= this.limits.maxScripts) throw new ScriptStoreError(`at most ${this.limits.maxScripts} scripts`, 'QUOTA/MAXSCRIPTS');
  }

  async put(name: string, content: string): Promise<void> {
    await this.checkSpace(name, Buffer.byteLength(content));
    await fs.promises.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = path.join(this.dir, `.tmp-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
    try {
      await fs.promises.writeFile(tmp, content, { mode: 0o600, flush: true });
      await fs.promises.rename(tmp, this.file(name));
    } finally {
      await fs.promises.unlink(tmp).catch(() => {});
    }
  }

  /** Makes `name` the active script; "" deactivates (RFC 5804 §2.8). */
  async setActive(name: string): Promise<void> {
    if (name === '') {
      await fs.promises.unlink(this.link).catch(() => {});
      return;
    }
    if ((await this.get(name)) === null) throw new ScriptStoreError('no such script', 'NONEXISTENT');
    const tmp = `${this.link}.tmp-${process.pid}`;
    await fs.promises.unlink(tmp).catch(() => {});
    await fs.promises.symlink(`${SCRIPT_DIR}/${name}${SUFFIX}`, tmp);
    await fs.promises.rename(tmp, this.link);
  }

  async delete(name: string): Promise<void> {
    const file = this.file(name);
    if ((await this.activeName()) === name) throw new ScriptStoreError('the active script cannot be deleted', 'ACTIVE');
    await fs.promises.unlink(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new ScriptStoreError('no such script', 'NONEXISTENT');
      throw err;
    });
  }

  async rename(from: string, to: string): Promise<void> {
    const src = this.file(from);
    const dest = this.file(to);
    if ((await this.get(from)) === null) throw new ScriptStoreError('no such script', 'NONEXISTENT');
    if ((await this.get(to)) !== null) throw new ScriptStoreError('a script with that name exists', 'ALREADYEXISTS');
    const wasActive = (await this.activeName()) === from;
    await fs.promises.link(src, dest);
    if (wasActive) await this.setActive(to);
    await fs.promises.unlink(src);
  }
}
