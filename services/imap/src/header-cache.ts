import type { Folder, MessageRecord } from '@hearth/mailstore';
import { parseHeaders, type HeaderField } from '@hearth/message';
import { ADDRESS_FIELDS, foldAddresses, foldHeader } from './search.ts';

/**
 * Top-level header fields by message file. Maildir files never change content (flags live
 * in the name), so an entry stays valid for the life of the file; repeated header SEARCHes
 * then cost no disk reads, as with Dovecot's cache.
 */
export class HeaderCache {
  private readonly map = new Map<string, readonly HeaderField[]>();

  constructor(private readonly maxEntries = 100_000) {}

  /** A cached entry without waiting (the common case once a folder has been searched). */
  peek(folder: Folder, rec: MessageRecord): readonly HeaderField[] | undefined {
    return this.map.get(`${folder.dir}\0${rec.base}`);
  }

  async get(folder: Folder, rec: MessageRecord): Promise<readonly HeaderField[] | null> {
    const key = `${folder.dir}\0${rec.base}`;
    const hit = this.map.get(key);
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
    if (this.map.size >= this.maxEntries) this.map.delete(this.map.keys().next().value!);
    this.map.set(key, headers);
    return headers;
  }
}
