import net from 'node:net';
import { BerReader, BerWriter, pduLength } from '../src/ber.ts';
import { OP, OID } from '../src/protocol.ts';

/**
 * A minimal raw-socket LDAP client for the fuzz test and the benchmark: requests are
 * prebuilt BER, responses are split into PDUs and summarized (id, operation, result).
 */

export interface Reply {
  id: number;
  tag: number;
  /** result code for LDAPResult-shaped responses */
  code: number | null;
  pdu: Buffer;
}

export function parseReply(pdu: Buffer): Reply {
  const msg = new BerReader(pdu).enter();
  const id = msg.readInt();
  const [tag, body] = msg.enterAny();
  const code = tag === OP.searchResultEntry ? null : body.readEnum();
  return { id, tag, code, pdu };
}

export function bindRequest(id: number, dn: string, password: string): Buffer {
  return new BerWriter().startSequence().writeInt(id).startSequence(OP.bindRequest).writeInt(3).writeString(dn).writeString(password, 0x80).endSequence().endSequence().toBuffer();
}

/** SearchRequest with an already-encoded filter. */
export function searchRequest(id: number, base: string, scope: number, filter: Buffer, attrs: string[] = [], controls: Buffer | null = null): Buffer {
  const w = new BerWriter().startSequence().writeInt(id).startSequence(OP.searchRequest);
  w.writeString(base).writeEnum(scope).writeEnum(0).writeInt(0).writeInt(0).writeBool(false).writeRaw(filter).startSequence();
  for (const a of attrs) w.writeString(a);
  w.endSequence().endSequence();
  if (controls) w.writeRaw(controls);
  return w.endSequence().toBuffer();
}

/** The seed's filter (&(objectclass=user)(|(username=X)(mail=X))). */
export function seedFilter(login: string): Buffer {
  const w = new BerWriter().startSequence(0xa0);
  w.startSequence(0xa3).writeString('objectclass').writeString('user').endSequence();
  w.startSequence(0xa1);
  w.startSequence(0xa3).writeString('username').writeString(login).endSequence();
  w.startSequence(0xa3).writeString('mail').writeString(login).endSequence();
  return w.endSequence().endSequence().toBuffer();
}

export function whoamiRequest(id: number): Buffer {
  return new BerWriter().startSequence().writeInt(id).startSequence(OP.extendedRequest).writeString(OID.whoAmI, 0x80).endSequence().endSequence().toBuffer();
}

export class WireClient {
  private input: Buffer = Buffer.alloc(0);
  private readonly queue: Reply[] = [];
  private waiter: (() => void) | null = null;
  closed = false;
  /** bytes received that did not parse as LDAP messages */
  garbage = 0;

  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      this.input = this.input.length ? Buffer.concat([this.input, d]) : d;
      for (;;) {
        let len: number;
        try {
          len = pduLength(this.input, 64 * 1024 * 1024);
        } catch {
          this.garbage += this.input.length;
          this.input = Buffer.alloc(0);
          break;
        }
        if (len === 0) break;
        const pdu = this.input.subarray(0, len);
        this.input = this.input.subarray(len);
        try {
          this.queue.push(parseReply(pdu));
        } catch {
          this.garbage += pdu.length;
        }
      }
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** `from`: the local address to connect from (any 127.0.0.0/8 address is this host) */
  static connect(port: number, host = '127.0.0.1', from?: string): Promise<WireClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host, localAddress: from }, () => {
        s.off('error', reject);
        resolve(new WireClient(s));
      });
      s.once('error', reject);
    });
  }

  send(data: Buffer): void {
    if (!this.closed) this.socket.write(data);
  }

  /** The next reply, or null when the connection closed first. */
  async next(): Promise<Reply | null> {
    while (this.queue.length === 0) {
      if (this.closed) return null;
      await new Promise<void>((r) => (this.waiter = r));
    }
    return this.queue.shift()!;
  }

  /** Replies up to and including the first one that is not a search entry. */
  async untilDone(): Promise<Reply[] | null> {
    const out: Reply[] = [];
    for (;;) {
      const r = await this.next();
      if (!r) return null;
      out.push(r);
      if (r.tag !== OP.searchResultEntry) return out;
    }
  }

  /** Resolves when the server has closed the connection (or after ms). */
  waitClosed(ms: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      this.socket.once('close', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}
