import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';

// fd-based calls: much cheaper per message than fs.promises' FileHandle objects
const open = promisify(fs.open);
const writev = promisify(fs.writev);
const fdatasync = promisify(fs.fdatasync);
const fsync = promisify(fs.fsync);
const close = promisify(fs.close);
const rename = promisify(fs.rename);
const unlink = promisify(fs.unlink);

/** Unlinks a file; false when it was gone already. */
export async function unlinkIfThere(file: string): Promise<boolean> {
  try {
    await unlink(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return false;
  }
}

/**
 * The on-disk queue. One file per message in msg/: a JSON envelope line, then the raw
 * message. It is written to tmp/, fsync'd, renamed into msg/ and the directory fsync'd
 * before the client gets its 250. Per-recipient progress goes to an append-only log in
 * state/. Admin requests (retry/delete) arrive as files in control/.
 */

export interface RecipientRecord {
  address: string;
  /** decided at acceptance: a local mailbox, or relayed onward */
  local: boolean;
}

export interface QueueEnvelope {
  v: 1;
  id: string;
  /** '' is the null sender (bounces) */
  from: string;
  rcpts: RecipientRecord[];
  /** ms since epoch */
  arrivedAt: number;
  size: number;
  /** DMARC p=quarantine failed: local copies go to the Junk folder */
  quarantine?: boolean;
}

export type StateRecord =
  | { s: 'done'; a: string; t: number }
  | { s: 'failed'; a: string; t: number; st: string; e: string; m?: string | null }
  | { s: 'deferred'; a: string; t: number; n: number; e: string }
  /** a DSN went out for these failed recipients (batch n of this message) */
  | { s: 'bounced'; t: number; a: string[] };

export function newQueueId(): string {
  return `${Date.now().toString(36).toUpperCase()}${randomBytes(6).toString('hex').toUpperCase()}`;
}

const ID_RE = /^[A-Z0-9][A-Z0-9.-]{5,80}$/;

export function isQueueId(id: string): boolean {
  return ID_RE.test(id);
}

/**
 * Shares directory fsyncs between concurrent writers: callers that arrive while a sync
 * runs wait for the next one, which covers all of their renames (group commit).
 */
class DirSyncer {
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;

  constructor(private readonly dir: string) {}

  sync(): Promise<void> {
    if (!this.running) {
      this.running = this.run().finally(() => (this.running = null));
      return this.running;
    }
    if (!this.next) {
      this.next = this.running.then(() => {
        this.next = null;
        return this.sync();
      });
    }
    return this.next;
  }

  private async run(): Promise<void> {
    const fd = await open(this.dir, 'r');
    try {
      await fsync(fd);
    } finally {
      await close(fd);
    }
  }
}

export class Spool {
  readonly tmpDir: string;
  readonly msgDir: string;
  readonly stateDir: string;
  readonly controlDir: string;
  readonly corruptDir: string;
  private readonly msgSync: DirSyncer;

  constructor(readonly root: string) {
    this.tmpDir = path.join(root, 'tmp');
    this.msgDir = path.join(root, 'msg');
    this.stateDir = path.join(root, 'state');
    this.controlDir = path.join(root, 'control');
    this.corruptDir = path.join(root, 'corrupt');
    this.msgSync = new DirSyncer(this.msgDir);
  }

  init(): void {
    for (const d of [this.tmpDir, this.msgDir, this.stateDir, this.controlDir, this.corruptDir]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  }

  /** At daemon start only: a running daemon may be writing into tmp/. */
  cleanTmp(): void {
    // leftovers of writes interrupted by a crash: never acknowledged, so never promised
    for (const f of fs.readdirSync(this.tmpDir)) fs.rmSync(path.join(this.tmpDir, f), { force: true });
  }

  msgPath(id: string): string {
    return path.join(this.msgDir, id);
  }

  statePath(id: string): string {
    return path.join(this.stateDir, id);
  }

  /**
   * Durable once it resolves. With `exclusive` (fixed ids such as bounces) an existing
   * message with that id is kept and false returned; fresh random ids skip that check.
   */
  async write(env: QueueEnvelope, raw: Buffer, exclusive = false): Promise<boolean> {
    const dest = this.msgPath(env.id);
    if (exclusive && fs.existsSync(dest)) return false;
    const tmp = path.join(this.tmpDir, `${env.id}.${randomBytes(4).toString('hex')}`);
    const fd = await open(tmp, 'wx', 0o600);
    try {
      await writev(fd, [Buffer.from(`${JSON.stringify(env)}\n`), raw]);
      await fdatasync(fd);
    } finally {
      await close(fd);
    }
    await rename(tmp, dest);
    await this.msgSync.sync();
    return true;
  }

  /** Reads a spooled message; null when it is gone (delivered or deleted). */
  async read(id: string): Promise<{ env: QueueEnvelope; raw: Buffer } | null> {
    let buf: Buffer;
    try {
      buf = await fs.promises.readFile(this.msgPath(id));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    const nl = buf.indexOf(0x0a);
    if (nl < 0) throw new Error(`corrupt spool file ${id}`);
    return { env: parseEnvelope(buf.subarray(0, nl).toString('utf8')), raw: buf.subarray(nl + 1) };
  }

  /** Only the envelope line (listing a large queue must not read whole messages). */
  readEnvelopeSync(id: string): QueueEnvelope {
    const fd = fs.openSync(this.msgPath(id), 'r');
    try {
      const chunks: Buffer[] = [];
      const buf = Buffer.alloc(65536);
      let pos = 0;
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, pos);
        if (n === 0) throw new Error(`corrupt spool file ${id}`);
        const part = buf.subarray(0, n);
        const nl = part.indexOf(0x0a);
        if (nl >= 0) {
          chunks.push(Buffer.from(part.subarray(0, nl)));
          return parseEnvelope(Buffer.concat(chunks).toString('utf8'));
        }
        chunks.push(Buffer.from(part));
        pos += n;
        if (pos > 16 * 1024 * 1024) throw new Error(`corrupt spool file ${id}`);
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  ids(): string[] {
    return fs.readdirSync(this.msgDir).filter(isQueueId).sort();
  }

  async appendState(id: string, records: StateRecord[], durable: boolean): Promise<void> {
    if (records.length === 0) return;
    const fh = await fs.promises.open(this.statePath(id), 'a', 0o600);
    try {
      await fh.write(records.map((r) => `${JSON.stringify(r)}\n`).join(''));
      if (durable) await fh.datasync();
    } finally {
      await fh.close();
    }
  }

  readStateSync(id: string): StateRecord[] {
    let text: string;
    try {
      text = fs.readFileSync(this.statePath(id), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: StateRecord[] = [];
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        out.push(JSON.parse(line) as StateRecord);
      } catch {
        // a torn last line from a crash mid-append: everything before it stands
      }
    }
    return out;
  }

  /**
   * Forgets a message: the msg file first (its absence is what "done" means), then its log.
   * Not fsync'd, like Postfix: if a crash undoes the unlink, local copies are recognised
   * (Deliverer.deliveredIds) and a remote one goes again, which SMTP allows.
   */
  async remove(id: string): Promise<void> {
    await unlinkIfThere(this.msgPath(id));
    await unlinkIfThere(this.statePath(id));
  }

  quarantine(id: string): void {
    fs.renameSync(this.msgPath(id), path.join(this.corruptDir, id));
    fs.rmSync(this.statePath(id), { force: true });
  }

  /** State logs whose message is gone (removed while a delivery was still running). */
  removeOrphanStates(): void {
    const live = new Set(fs.readdirSync(this.msgDir));
    for (const f of fs.readdirSync(this.stateDir)) if (!live.has(f)) fs.rmSync(path.join(this.stateDir, f), { force: true });
  }

  // ---- admin requests, as files so they work whether or not the daemon runs ----

  requestControl(action: 'retry' | 'delete', id: string): void {
    const name = `${action}.${id}`;
    const tmp = path.join(this.tmpDir, `control.${name}.${randomBytes(4).toString('hex')}`);
    fs.writeFileSync(tmp, '');
    fs.renameSync(tmp, path.join(this.controlDir, name));
  }

  takeControls(): { action: 'retry' | 'delete'; id: string }[] {
    const out: { action: 'retry' | 'delete'; id: string }[] = [];
    for (const f of fs.readdirSync(this.controlDir)) {
      fs.rmSync(path.join(this.controlDir, f), { force: true });
      const m = /^(retry|delete)\.(.+)$/.exec(f);
      if (m && (m[2] === 'ALL' || isQueueId(m[2]!))) out.push({ action: m[1] as 'retry' | 'delete', id: m[2]! });
    }
    return out;
  }
}

function parseEnvelope(line: string): QueueEnvelope {
  const env = JSON.parse(line) as QueueEnvelope;
  if (env.v !== 1 || typeof env.id !== 'string' || typeof env.from !== 'string' || !Array.isArray(env.rcpts)) throw new Error('corrupt spool envelope');
  return env;
}
