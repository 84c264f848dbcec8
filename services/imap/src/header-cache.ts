import type { Folder, MessageRecord } from '@hearth/mailstore';
import { parseHeaders, type HeaderField } from '@hearth/message';
import { ADDRESS_FIELDS, foldAddresses, foldHeader } from './search.ts';

/**
 * Top-level header fields by message file. Maildir files never change content (flags live
 * in the name), so an entry stays valid for the life of the file; repeated header SEARCHes
 * then cost no disk reads, as with Dovecot's cache.
 */
export class HeaderCache {
  /** by folder directory, then by file base name (the record's own string: no key is built per lookup) */
  private readonly map = new Map<string, Map<string, readonly HeaderField[]>>();
  private size = 0;

  constructor(private readonly maxEntries = 100_000) {}

  /** A cached entry without waiting (the common case once a folder has been searched). */
  peek(folder: Folder, rec: MessageRecord): readonly HeaderField[] | undefined {
    return this.map.get(folder.dir)?.get(rec.base);
  }

  async get(folder: Folder, rec: MessageRecord): Promise<readonly HeaderField[] | null> {
    const hit = this.peek(folder, rec);
    if (hit) return hit;
    const raw = await folder.readHead(rec).catch(() => null);
    if (!raw) return null;
    const headers = parseHeaders(raw, 0, raw.length).headers.map((h) => ({
      name: h.name,
      value: h.value,
      start: 0,
      end: 0,
      folded: foldHeader(h.value),
      addresses: ADDRESS_FIELDS.has(h.name) ? foldAddresses(h.value) : undefined,
    }));
    let inFolder = this.map.get(folder.dir);
    if (!inFolder) this.map.set(folder.dir, (inFolder = new Map()));
    if (this.size >= this.maxEntries) {
      // the oldest folder's oldest entry goes
      const [dir, oldest] = this.map.entries().next().value!;
      oldest.delete(oldest.keys().next().value!);
      this.size--;
      if (oldest.size === 0 && oldest !== inFolder) this.map.delete(dir);
    }
    if (!inFolder.has(rec.base)) this.size++;
    inFolder.set(rec.base, headers);
    return headers;
  }
}
