import fs from 'node:fs';
import path from 'node:path';

/**
 * The client's view of one folder: every path is taken as absolute inside it ("/" is the folder),
 * normalised first, so `..` never climbs above it; and a path whose real location (symlinks
 * followed) is outside the folder is refused. The rules only, no protocol.
 */

export class PathRefused extends Error {}

export class Chroot {
  private constructor(readonly root: string) {}

  static async open(dir: string): Promise<Chroot> {
    return new Chroot(await fs.promises.realpath(dir));
  }

  /** "a/../../b" → "/b": the path the client sees. */
  virtual(clientPath: string): string {
    if (clientPath.includes('\0')) throw new PathRefused('NUL in path');
    return path.posix.normalize(`/${clientPath}`).replace(/(.)\/+$/, '$1');
  }

  private inside(real: string): boolean {
    return real === this.root || real.startsWith(this.root + path.sep);
  }

  /** Where a host path lies, seen by the client; null when outside. */
  toClient(real: string): string | null {
    if (!this.inside(real)) return null;
    return '/' + path.relative(this.root, real).split(path.sep).join('/');
  }

  /**
   * The host path for a client path. The folder holding it must exist and lie inside; with
   * `follow`, an existing entry is resolved through its symlinks and must lie inside too, and a
   * symlink to nowhere is refused (creating through it would write wherever it points).
   */
  async resolve(clientPath: string, follow: boolean): Promise<string> {
    const v = this.virtual(clientPath);
    if (v === '/') return this.root;
    const parent = await fs.promises.realpath(path.join(this.root, path.posix.dirname(v)));
    if (!this.inside(parent)) throw new PathRefused(`${v} is outside the app's data folder`);
    const entry = path.join(parent, path.posix.basename(v));
    if (!follow) return entry;
    try {
      const real = await fs.promises.realpath(entry);
      if (!this.inside(real)) throw new PathRefused(`${v} leads outside the app's data folder`);
      return real;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      const st = await fs.promises.lstat(entry).catch(() => null);
      if (st?.isSymbolicLink()) throw new PathRefused(`${v} is a symlink to nowhere`);
      return entry;
    }
  }
}
