import fs from 'node:fs';
import path from 'node:path';

/**
 * Bytes an app's data folder holds, counted once per app when its first session opens and then
 * kept up to date by the uploads and deletions made over SFTP (the app's own writes are counted
 * at the next first session).
 */
export class QuotaTracker {
  private readonly used = new Map<string, { bytes: number; sessions: number }>();

  constructor(private readonly limit: number) {}

  async open(appId: string, dir: string): Promise<void> {
    const entry = this.used.get(appId);
    if (entry) entry.sessions++;
    else this.used.set(appId, { bytes: await folderBytes(dir), sessions: 1 });
  }

  close(appId: string): void {
    const entry = this.used.get(appId);
    if (entry && --entry.sessions === 0) this.used.delete(appId);
  }

  /** Whether `growth` more bytes fit; takes them when they do. */
  take(appId: string, growth: number): boolean {
    const entry = this.used.get(appId);
    if (!entry || growth <= 0) {
      if (entry) entry.bytes = Math.max(0, entry.bytes + growth);
      return true;
    }
    if (this.limit > 0 && entry.bytes + growth > this.limit) return false;
    entry.bytes += growth;
    return true;
  }
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  const entries = await fs.promises.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += await folderBytes(p);
    else if (e.isFile()) total += (await fs.promises.lstat(p).catch(() => ({ size: 0 }))).size;
  }
  return total;
}
