import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { flagsToInfo, infoToFlags, splitName } from './flags.ts';
import { isNoSpace, Mutex, withFileLock, writeFileAtomic } from './lock.ts';
import { MailStoreError } from './names.ts';
import { parseUidList, serializeUidList, type UidList } from './uidlist.ts';
import { uniqueName } from './unique.ts';
import { nextUidValidity } from './uidvalidity.ts';

export interface MessageRecord {
  readonly uid: number;
  /** the Maildir base name (file name without `:2,info`), stable across flag changes */
  readonly base: string;
  /** current file name in cur/ */
  readonly file: string;
  readonly info: string;
  readonly flags: readonly string[];
  readonly modseq: number;
}

/** A message written to a folder's tmp/ and not yet in cur/. */
export interface StagedMessage {
  tmp: string;
  /** its Maildir base name */
  name: string;
  size: number;
  flags: readonly string[];
}

export type StoreMode = 'set' | 'add' | 'remove';

const POLL_MS = 500;
const SYNC_READ_MAX = 256 * 1024;
const MAX_KEYWORDS = 26;
/** expunged UIDs kept for QRESYNC; older ones are forgotten and resyncs from before them get every missing UID */
const MAX_VANISHED = 50_000;

/**
 * One Maildir folder (cur/new/tmp) with its dovecot-uidlist. Every process keeps one
 * Folder object per directory; sessions read `messages` and listen to 'change'.
 * Writers take an in-process mutex and Dovecot's dot-lock, so the IMAP and POP3 daemons
 * (and Dovecot itself) can share the files.
 */
export class Folder extends EventEmitter {
  uidValidity = 0;
  uidNext = 1;
  highestModseq = 1;
  /**
   * Messages below this UID were already \Recent in some session (RFC 3501 §2.3.2); kept in
   * the uidlist so that only one session, in whichever process, ever sees a message as recent.
   */
  firstRecentUid = 1;
  /** set when the folder was deleted or renamed away; sessions on it must stop */
  gone = false;
  /** bumped whenever messages disappear, so sessions skip looking for expunges otherwise */
  expunges = 0;
  /** expunged UIDs with the MODSEQ of their expunge, oldest first (QRESYNC's VANISHED, RFC 7162 §3.2.5) */
  private vanished: { modseq: number; uids: number[] }[] = [];
  /** expunges at or below this MODSEQ are forgotten (beyond MAX_VANISHED) */
  private vanishedFloor = 0;
  private vanishedDirty = false;
  private records: MessageRecord[] = [];
  private byUid = new Map<number, MessageRecord>();
  private keywords: string[] = [];
  private readonly mutex = new Mutex();
  private stampNew = '';
  private stampRest = '';
  private watchers = 0;
  private stopWatching: (() => void) | null = null;
  private refreshTimer: NodeJS.Timeout | null = null;
  private readonly sizes = new Map<string, number>();
  private readonly dates = new Map<string, number>();
  private derived: { uids?: number[]; firstUnseen?: number } = {};

  constructor(
    readonly name: string,
    readonly dir: string,
  ) {
    super();
    this.setMaxListeners(0);
  }

  get messages(): readonly MessageRecord[] {
    return this.records;
  }

  get(uid: number): MessageRecord | undefined {
    return this.byUid.get(uid);
  }

  get permanentKeywords(): readonly string[] {
    return this.keywords;
  }

  get canAddKeywords(): boolean {
    return this.keywords.length < MAX_KEYWORDS;
  }

  filePath(rec: MessageRecord): string {
    return path.join(this.dir, 'cur', rec.file);
  }

  private get lockFile(): string {
    return path.join(this.dir, 'dovecot-uidlist.lock');
  }

  private get uidListFile(): string {
    return path.join(this.dir, 'dovecot-uidlist');
  }

  /** Hearth's own file beside Dovecot's (Dovecot keeps expunges in its index log and ignores it) */
  private get vanishedFile(): string {
    return path.join(this.dir, 'hearth-vanished');
  }

  /**
   * UIDs expunged after `modseq` (some perhaps earlier: never fewer), or null when the history
   * does not reach back that far (the caller then treats every UID it cannot find as vanished).
   */
  vanishedSince(modseq: number): number[] | null {
    if (modseq < this.vanishedFloor) return null;
    const out: number[] = [];
    for (const v of this.vanished) if (v.modseq > modseq) out.push(...v.uids);
    return out.sort((a, b) => a - b);
  }

  private recordVanished(modseq: number, uids: number[]): void {
    if (uids.length === 0) return;
    this.vanished.push({ modseq, uids });
    let total = this.vanished.reduce((n, v) => n + v.uids.length, 0);
    while (total > MAX_VANISHED && this.vanished.length > 1) {
      const dropped = this.vanished.shift()!;
      this.vanishedFloor = dropped.modseq;
      total -= dropped.uids.length;
    }
    this.vanishedDirty = true;
  }

  private async readVanished(): Promise<void> {
    const text = await fs.promises.readFile(this.vanishedFile, 'utf8').catch(() => '');
    const lines = text.split('\n');
    this.vanishedFloor = Number(/^F(\d+)$/.exec(lines[0] ?? '')?.[1] ?? 0);
    this.vanished = [];
    for (const line of lines.slice(1)) {
      const [m, ...uids] = line.split(' ').map(Number);
      if (m && uids.length && uids.every(Number.isSafeInteger)) this.vanished.push({ modseq: m, uids });
    }
  }

  private get keywordsFile(): string {
    return path.join(this.dir, 'dovecot-keywords');
  }

  /** Runs fn with both locks held and the in-memory view synced with the disk. */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    if (this.gone) return Promise.reject(new MailStoreError('mailbox no longer exists', 'nonexistent'));
    return this.mutex.run(() =>
      withFileLock(this.lockFile, async () => {
        if (this.stamps().join('|') !== `${this.stampNew}|${this.stampRest}`) await this.syncLocked();
        return fn();
      }),
    );
  }

  /** Cheap change check: the mtimes of new/, cur/ and the uidlist/keywords files. */
  private stamps(): [string, string] {
    // stat() of four hot inodes: synchronous is far cheaper than four thread-pool round trips, and
    // plain Stats than BigIntStats (mtimeMs keeps well under a microsecond, finer than the kernel's clock)
    const p = (this.stampPaths ??= [path.join(this.dir, 'new'), path.join(this.dir, 'cur'), this.uidListFile, this.keywordsFile]);
    return [stamp(p[0]!), `${stamp(p[1]!)}|${stamp(p[2]!)}|${stamp(p[3]!)}`];
  }
  private stampPaths: string[] | null = null;

  /** Brings the view up to date if anything changed on disk; emits 'change' when it did. */
  async refresh(): Promise<void> {
    if (this.gone) return;
    const [n, rest] = this.stamps();
    if (n === this.stampNew && rest === this.stampRest) return;
    await this.mutex.run(() => withFileLock(this.lockFile, () => this.syncLocked()));
  }

  /** The stored uidlist, or a new one with the account's next UIDVALIDITY (also when it is unreadable). */
  private async readUidList(): Promise<{ list: UidList; fresh: boolean }> {
    const text = await fs.promises.readFile(this.uidListFile, 'utf8').catch(() => '');
    const list = parseUidList(text);
    if (list) return { list, fresh: false };
    // Maildir++: INBOX is the account root, every other folder a `.Name` directory in it.
    const root = this.name === 'INBOX' ? this.dir : path.dirname(this.dir);
    return { list: { uidValidity: await nextUidValidity(root), nextUid: 1, highestModseq: 1, firstRecentUid: 1, records: [] }, fresh: true };
  }

  private async readKeywords(): Promise<string[]> {
    const text = await fs.promises.readFile(this.keywordsFile, 'utf8').catch(() => '');
    const out: string[] = [];
    for (const line of text.split('\n')) {
      const m = /^(\d+) (\S+)$/.exec(line);
      if (m && Number(m[1]) < MAX_KEYWORDS) out[Number(m[1])] = m[2]!;
    }
    return out;
  }

  private keywordIndex = (k: string): number => {
    const i = this.keywords.findIndex((x) => x?.toLowerCase() === k.toLowerCase());
    if (i >= 0) return i;
    if (this.keywords.length >= MAX_KEYWORDS) return -1;
    this.keywords.push(k);
    this.keywordsDirty = true;
    return this.keywords.length - 1;
  };
  private keywordsDirty = false;

  /** Full scan: new/ → cur/, new files get UIDs, vanished files are dropped. */
  private async syncLocked(): Promise<void> {
    for (const sub of ['cur', 'new', 'tmp']) await fs.promises.mkdir(path.join(this.dir, sub), { recursive: true, mode: 0o700 });
    // new/ is seen as of a stamp taken just before a listing that found it empty.
    let stampNew = '';
    for (let round = 0; round < 5; round++) {
      stampNew = this.stamps()[0];
      const fresh = (await fs.promises.readdir(path.join(this.dir, 'new'))).filter((f) => !f.startsWith('.'));
      if (fresh.length === 0) break;
      for (const f of fresh) {
        const target = f.includes(':2,') ? f : `${f}:2,`;
        await fs.promises.rename(path.join(this.dir, 'new', f), path.join(this.dir, 'cur', target)).catch(() => {});
      }
      stampNew = '';
    }
    const { list, fresh } = await this.readUidList();
    if (!this.vanishedDirty) await this.readVanished();
    const dropped: number[] = [];
    this.keywords = await this.readKeywords();
    let listChanged = fresh;
    const files = new Map<string, string>();
    for (const f of await fs.promises.readdir(path.join(this.dir, 'cur'))) {
      if (f.startsWith('.')) continue;
      files.set(splitName(f).base, f);
    }
    const records: MessageRecord[] = [];
    const known = new Set<string>();
    for (const r of list.records) {
      const file = files.get(r.base);
      if (file === undefined) {
        listChanged = true;
        dropped.push(r.uid);
        continue;
      }
      known.add(r.base);
      let modseq = r.modseq;
      const info = splitName(file).info;
      const prev = this.byUid.get(r.uid);
      // A flag change made by a process that does not keep MODSEQs (e.g. Dovecot).
      if (prev && prev.base === r.base && prev.info !== info && prev.modseq >= modseq) {
        modseq = ++list.highestModseq;
        listChanged = true;
      }
      records.push({ uid: r.uid, base: r.base, file, info, flags: infoToFlags(info, this.keywords), modseq });
    }
    // removed by another process (or Dovecot): they vanished at a new MODSEQ
    if (records.length !== list.records.length) this.recordVanished(++list.highestModseq, dropped);
    if (this.records.some((r) => !known.has(r.base))) this.expunges++;
    const added = [...files.keys()].filter((b) => !known.has(b)).sort(compareBase);
    for (const base of added) {
      const file = files.get(base)!;
      const info = splitName(file).info;
      records.push({ uid: list.nextUid++, base, file, info, flags: infoToFlags(info, this.keywords), modseq: ++list.highestModseq });
      listChanged = true;
    }
    const changed =
      this.uidValidity !== list.uidValidity ||
      records.length !== this.records.length ||
      records.some((r, i) => this.records[i]?.uid !== r.uid || this.records[i]?.modseq !== r.modseq || this.records[i]?.file !== r.file);
    this.uidValidity = list.uidValidity;
    this.uidNext = list.nextUid;
    this.highestModseq = list.highestModseq;
    this.firstRecentUid = list.firstRecentUid;
    this.setRecords(records);
    const saved = !listChanged || (await this.saveUidList());
    this.stampNew = stampNew;
    // not saved (disk full): the next locked operation syncs again and retries the write
    this.stampRest = saved ? this.stamps()[1] : '';
    if (changed) this.emit('change');
  }

  /**
   * Writes the uidlist, unless the disk is full (returns false). The view stays usable: UIDs are
   * handed out in arrival order from the saved next UID, so every process (and this one, on its
   * next sync) arrives at the same ones, and modseqs only move forward.
   */
  private async saveUidList(): Promise<boolean> {
    try {
      await this.writeUidList();
      return true;
    } catch (err) {
      if (!isNoSpace(err)) throw err;
      return false;
    }
  }

  private async writeUidList(): Promise<void> {
    const list: UidList = {
      uidValidity: this.uidValidity,
      nextUid: this.uidNext,
      highestModseq: this.highestModseq,
      firstRecentUid: this.firstRecentUid,
      records: this.records.map((r) => ({ uid: r.uid, base: r.base, modseq: r.modseq })),
    };
    if (this.vanishedDirty) {
      await writeFileAtomic(this.vanishedFile, [`F${this.vanishedFloor}`, ...this.vanished.map((v) => `${v.modseq} ${v.uids.join(' ')}`)].join('\n') + '\n');
      this.vanishedDirty = false;
    }
    if (this.keywordsDirty) {
      await writeFileAtomic(this.keywordsFile, this.keywords.map((k, i) => `${i} ${k}\n`).join(''));
      this.keywordsDirty = false;
    }
    await writeFileAtomic(this.uidListFile, serializeUidList(list));
  }

  /**
   * After our own change: remember cur/ and the uidlist as seen, but not new/ (deliveries). The
   * change itself is in the file names already; with the disk full the uidlist waits for a later sync.
   */
  private async commit(): Promise<void> {
    this.stampRest = (await this.saveUidList()) ? this.stamps()[1] : '';
    this.emit('change');
  }

  private setRecords(records: MessageRecord[]): void {
    this.records = records;
    this.byUid = new Map(records.map((r) => [r.uid, r]));
    this.derived = {};
  }

  /** UIDs in order (shared; copy before changing). Cached until the messages change. */
  get uids(): readonly number[] {
    return (this.derived.uids ??= this.records.map((r) => r.uid));
  }

  /** Index of the first message without \Seen, or -1. Cached until the messages change. */
  get firstUnseen(): number {
    return (this.derived.firstUnseen ??= this.records.findIndex((r) => !r.flags.includes('\\Seen')));
  }

  /** UIDs of the messages no session has seen as \Recent yet (STATUS RECENT, EXAMINE). */
  unclaimedRecent(): number[] {
    let lo = 0;
    let hi = this.records.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.records[mid]!.uid < this.firstRecentUid) lo = mid + 1;
      else hi = mid;
    }
    return this.records.slice(lo).map((r) => r.uid);
  }

  /**
   * Claims the messages no session has seen as \Recent yet, for the caller alone (a
   * read-write SELECT, or new mail in a selected folder): returns their UIDs and persists
   * the mark under the lock, so no other session sees them as recent.
   */
  async claimRecent(): Promise<number[]> {
    return this.locked(async () => {
      const uids = this.unclaimedRecent();
      if (uids.length) {
        this.firstRecentUid = this.uidNext;
        // A full disk: the messages stay recent for the next session too, a lesser evil than no SELECT.
        this.stampRest = (await this.saveUidList()) ? this.stamps()[1] : '';
      }
      return uids;
    });
  }

  /** Makes sure the folder is loaded (first use). */
  async open(): Promise<void> {
    if (this.uidValidity === 0) await this.mutex.run(() => withFileLock(this.lockFile, () => this.syncLocked()));
  }

  /** Adds a message (already validated by the caller); returns its record. */
  async append(raw: Buffer, flags: readonly string[] = [], internalDate?: Date): Promise<MessageRecord> {
    await fs.promises.mkdir(path.join(this.dir, 'tmp'), { recursive: true });
    const name = uniqueName(raw.length);
    const tmp = path.join(this.dir, 'tmp', name);
    const fh = await fs.promises.open(tmp, 'wx', 0o600);
    try {
      try {
        await fh.writeFile(raw);
        await fh.sync();
      } finally {
        await fh.close();
      }
      if (internalDate) await fs.promises.utimes(tmp, internalDate, internalDate);
      return (await this.commitStaged([{ tmp, name, size: raw.length, flags }]))[0]!;
    } finally {
      await fs.promises.unlink(tmp).catch(() => {});
    }
  }

  /**
   * Moves messages already written to tmp/ into cur/ with their flags and gives them UIDs, all
   * under one hold of the uidlist lock and in one uidlist write: readers see all of them or none.
   */
  async commitStaged(staged: readonly StagedMessage[]): Promise<MessageRecord[]> {
    return this.locked(async () => {
      const before = this.records;
      const added: MessageRecord[] = [];
      const moved: string[] = [];
      try {
        for (const s of staged) {
          const info = flagsToInfo(s.flags, this.keywordIndex);
          const file = `${s.name}:2,${info}`;
          const dest = path.join(this.dir, 'cur', file);
          await fs.promises.rename(s.tmp, dest);
          moved.push(dest);
          added.push({ uid: this.uidNext++, base: s.name, file, info, flags: infoToFlags(info, this.keywords), modseq: ++this.highestModseq });
          this.sizes.set(s.name, s.size);
        }
        this.setRecords([...before, ...added]);
        await this.commit();
      } catch (err) {
        // a rename or the uidlist write failed (a full disk): none of them is there, as if never appended
        for (const dest of moved) await fs.promises.unlink(dest).catch(() => {});
        this.setRecords(before);
        throw err;
      }
      return added;
    });
  }

  /**
   * Copies messages into another folder (hard links, as Dovecot does); returns
   * [source uid, new uid] pairs in order. Messages that vanished meanwhile are skipped.
   */
  async copyTo(uids: readonly number[], dest: Folder): Promise<[number, number][]> {
    const staged: { src: MessageRecord; tmp: string; name: string; size: number }[] = [];
    await fs.promises.mkdir(path.join(dest.dir, 'tmp'), { recursive: true });
    try {
      for (const uid of uids) {
        const src = this.byUid.get(uid);
        if (!src) continue;
        const size = await this.size(src).catch(() => -1);
        if (size < 0) continue;
        const name = uniqueName(size);
        const tmp = path.join(dest.dir, 'tmp', name);
        try {
          await fs.promises.link(this.filePath(src), tmp);
        } catch {
          try {
            await fs.promises.copyFile(this.filePath(src), tmp);
          } catch {
            continue;
          }
        }
        staged.push({ src, tmp, name, size });
      }
      return await dest.locked(async () => {
        const pairs: [number, number][] = [];
        const added: MessageRecord[] = [];
        for (const s of staged) {
          const info = flagsToInfo(s.src.flags, dest.keywordIndex, s.src.info);
          const file = `${s.name}:2,${info}`;
          await fs.promises.rename(s.tmp, path.join(dest.dir, 'cur', file));
          const rec: MessageRecord = { uid: dest.uidNext++, base: s.name, file, info, flags: infoToFlags(info, dest.keywords), modseq: ++dest.highestModseq };
          dest.sizes.set(s.name, s.size);
          added.push(rec);
          pairs.push([s.src.uid, rec.uid]);
        }
        if (added.length) {
          dest.setRecords([...dest.records, ...added]);
          await dest.commit();
        }
        return pairs;
      });
    } finally {
      for (const s of staged) await fs.promises.unlink(s.tmp).catch(() => {});
    }
  }

  /** Moves messages (copy, then remove the originals); returns [old uid, new uid] pairs. */
  async moveTo(uids: readonly number[], dest: Folder): Promise<[number, number][]> {
    const pairs = await this.copyTo(uids, dest);
    if (pairs.length)
      await this.expunge(
        pairs.map((p) => p[0]),
        true,
      );
    return pairs;
  }

  /**
   * Changes flags. With `unchangedSince` (CONDSTORE), messages modified after that MODSEQ
   * are left alone and returned in `failed`.
   */
  async store(uids: readonly number[], mode: StoreMode, flags: readonly string[], unchangedSince?: number): Promise<{ changed: MessageRecord[]; failed: number[] }> {
    return this.locked(async () => {
      const changed: MessageRecord[] = [];
      const failed: number[] = [];
      const wanted = new Set(uids);
      const lower = new Set(flags.map((f) => f.toLowerCase()));
      const next = [...this.records];
      for (let i = 0; i < next.length; i++) {
        const rec = next[i]!;
        if (!wanted.has(rec.uid)) continue;
        if (unchangedSince !== undefined && rec.modseq > unchangedSince) {
          failed.push(rec.uid);
          continue;
        }
        let set: string[];
        if (mode === 'set') set = [...flags];
        else if (mode === 'add') set = [...rec.flags, ...flags];
        else set = rec.flags.filter((f) => !lower.has(f.toLowerCase()));
        const info = flagsToInfo(set, this.keywordIndex, rec.info);
        if (info === rec.info) continue;
        const file = `${rec.base}:2,${info}`;
        try {
          await fs.promises.rename(path.join(this.dir, 'cur', rec.file), path.join(this.dir, 'cur', file));
        } catch {
          continue;
        }
        const updated: MessageRecord = { ...rec, file, info, flags: infoToFlags(info, this.keywords), modseq: ++this.highestModseq };
        next[i] = updated;
        changed.push(updated);
      }
      if (changed.length || this.keywordsDirty) {
        this.setRecords(next);
        await this.commit();
      }
      return { changed, failed };
    });
  }

  /** Removes messages: those flagged \Deleted (optionally only among `uids`), or exactly `uids` when `force`. */
  async expunge(uids?: readonly number[], force = false): Promise<number[]> {
    return this.locked(async () => {
      const only = uids ? new Set(uids) : null;
      const gone: number[] = [];
      const keep: MessageRecord[] = [];
      for (const rec of this.records) {
        const hit = (only === null || only.has(rec.uid)) && (force || rec.flags.includes('\\Deleted'));
        if (!hit) {
          keep.push(rec);
          continue;
        }
        await fs.promises.unlink(path.join(this.dir, 'cur', rec.file)).catch(() => {});
        this.sizes.delete(rec.base);
        this.dates.delete(rec.base);
        gone.push(rec.uid);
      }
      if (gone.length) {
        this.expunges++;
        this.recordVanished(++this.highestModseq, gone);
        this.setRecords(keep);
        await this.commit();
      }
      return gone;
    });
  }

  /**
   * The message bytes; follows a rename done by another process meanwhile. Small files
   * are read synchronously: from the page cache that costs microseconds, far less than
   * the four thread-pool round trips of an async readFile.
   */
  async read(rec: MessageRecord): Promise<Buffer> {
    try {
      const size = this.knownSize(rec);
      if (size !== undefined && size <= SYNC_READ_MAX) return fs.readFileSync(this.filePath(rec));
      return await fs.promises.readFile(this.filePath(rec));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await this.refresh();
      const now = this.byUid.get(rec.uid);
      if (!now) throw new MailStoreError('message was expunged', 'nonexistent');
      return fs.promises.readFile(this.filePath(now));
    }
  }

  /** The first bytes of a message, enough for its header in all but odd cases. */
  async readHead(rec: MessageRecord, max = 32 * 1024): Promise<Buffer> {
    const open = async (r: MessageRecord): Promise<Buffer> => {
      const fh = await fs.promises.open(this.filePath(r), 'r');
      try {
        const buf = Buffer.alloc(max);
        const { bytesRead } = await fh.read(buf, 0, max, 0);
        return buf.subarray(0, bytesRead);
      } finally {
        await fh.close();
      }
    };
    try {
      return await open(rec);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await this.refresh();
      const now = this.byUid.get(rec.uid);
      if (!now) throw new MailStoreError('message was expunged', 'nonexistent');
      return open(now);
    }
  }

  /**
   * The size when it is known without I/O: `W=` (the size with CRLF line endings, which
   * Dovecot adds when it stores LF-only files), else `S=`, else an earlier stat.
   */
  knownSize(rec: MessageRecord): number | undefined {
    const known = this.sizes.get(rec.base);
    if (known !== undefined) return known;
    for (const key of [',W=', ',S=']) {
      const i = rec.base.indexOf(key);
      if (i >= 0) {
        const n = parseInt(rec.base.slice(i + 3), 10);
        if (Number.isFinite(n)) {
          this.sizes.set(rec.base, n);
          return n;
        }
      }
    }
    return undefined;
  }

  /** RFC822.SIZE: from the `W=`/`S=` fields of the name, else from the file. */
  async size(rec: MessageRecord): Promise<number> {
    const known = this.knownSize(rec);
    if (known !== undefined) return known;
    const st = await this.statOf(rec);
    return st.size;
  }

  /** INTERNALDATE (ms) when this process has already read it, without waiting. */
  knownInternalDate(rec: MessageRecord): number | undefined {
    return this.dates.get(rec.base);
  }

  /** INTERNALDATE: the file's mtime (Dovecot's convention). */
  async internalDate(rec: MessageRecord): Promise<Date> {
    const known = this.dates.get(rec.base);
    if (known !== undefined) return new Date(known);
    return new Date((await this.statOf(rec)).mtimeMs);
  }

  private async statOf(rec: MessageRecord): Promise<fs.Stats> {
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(this.filePath(rec));
    } catch {
      await this.refresh();
      const now = this.byUid.get(rec.uid);
      if (!now) throw new MailStoreError('message was expunged', 'nonexistent');
      st = await fs.promises.stat(this.filePath(now));
    }
    // the name's W= (CRLF size of an LF-only file) wins over the file's size
    if (this.knownSize(rec) === undefined) this.sizes.set(rec.base, st.size);
    this.dates.set(rec.base, st.mtimeMs);
    return st;
  }

  /** Whether a session is watching (an evicted Folder would lose its listeners). */
  get watched(): boolean {
    return this.watchers > 0;
  }

  /**
   * Starts watching for changes by other processes (inotify on new/ and cur/, plus a
   * stat poll in case events are lost or unavailable). Returns the matching stop.
   */
  watch(): () => void {
    if (this.watchers++ === 0) this.startWatching();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--this.watchers === 0) {
        this.stopWatching?.();
        this.stopWatching = null;
      }
    };
  }

  private scheduleRefresh = (): void => {
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      this.refresh().catch((err) => this.emit('warning', err));
    }, 15);
  };

  private startWatching(): void {
    const handles: fs.FSWatcher[] = [];
    for (const sub of ['new', 'cur']) {
      try {
        const w = fs.watch(path.join(this.dir, sub), { persistent: false }, this.scheduleRefresh);
        w.on('error', () => {});
        handles.push(w);
      } catch {
        // inotify unavailable or out of watches: the poll below still notices changes
      }
    }
    const poll = setInterval(this.scheduleRefresh, POLL_MS);
    poll.unref();
    this.stopWatching = () => {
      clearInterval(poll);
      for (const h of handles) h.close();
    };
  }

  /** Called by the account when the folder is deleted or renamed. */
  markGone(): void {
    this.gone = true;
    this.stopWatching?.();
    this.stopWatching = null;
    this.emit('change');
  }
}

function stamp(file: string): string {
  const s = fs.statSync(file, { throwIfNoEntry: false });
  return s ? `${s.ino}.${s.size}.${s.mtimeMs}` : '-';
}

/** Maildir names start with the delivery time (`<seconds>.M<microseconds>`): order by that, then by name. */
function compareBase(a: string, b: string): number {
  const ta = /^(\d+)(?:\.M(\d+))?/.exec(a);
  const tb = /^(\d+)(?:\.M(\d+))?/.exec(b);
  if (ta && tb) {
    const d = Number(ta[1]) - Number(tb[1]) || Number(ta[2] ?? 0) - Number(tb[2] ?? 0);
    if (d) return d;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}
