import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import {
  Attr,
  attrString,
  attrValue,
  channelFrameLengthAt,
  Class,
  encodeMessage,
  HEADER_LENGTH,
  longTermKey,
  Method,
  parseErrorCode,
  parseMessage,
  requestedTransportValue,
  stunLengthAt,
  xorAddressValue,
  type EncodeOptions,
  type StunMessage,
} from '../src/stun-codec.ts';
import { restPassword } from '../src/auth.ts';

/** RFC 8489 §6.2.1 defaults: initial RTO, Rc (sends in all), Rm (the last wait, in RTOs). */
const RTO_MS = 500;
const MAX_SENDS = 7;
const LAST_WAIT = 16;

export type Attrs = [number, Buffer][] | ((transactionId: Buffer) => [number, Buffer][]);

/** A small STUN/TURN client over UDP or TCP for the in-process tests, built on the codec. */
export class TestClient {
  private readonly waiting = new Map<string, (m: StunMessage) => void>();
  /** ChannelData frames and Data indications received */
  readonly channelData: { channel: number; data: Buffer }[] = [];
  readonly dataIndications: StunMessage[] = [];
  /** every raw datagram or frame received, for size checks */
  readonly received: Buffer[] = [];
  private udp: dgram.Socket | null = null;
  private tcp: net.Socket | null = null;
  private pending = Buffer.alloc(0);
  closedByServer = false;
  /** called for each ChannelData frame instead of collecting it (the bench's RTT probe) */
  onChannelData: ((channel: number, data: Buffer) => void) | null = null;
  /**
   * Over UDP, retransmit requests as RFC 8489 §6.2.1 asks (RTO 500 ms doubling, 7 sends,
   * then Rm × RTO = 16 × 500 ms more): for clients that must get through a loaded server
   * (the bench), where one lost datagram would otherwise fail the whole run. Off for the tests,
   * which count what the server receives.
   */
  retransmit = false;

  private constructor(
    readonly transport: 'udp' | 'tcp',
    readonly host: string,
    readonly port: number,
  ) {}

  static async open(transport: 'udp' | 'tcp', port: number, host = '127.0.0.1'): Promise<TestClient> {
    const c = new TestClient(transport, host, port);
    if (transport === 'udp') {
      const v6 = host.includes(':');
      const s = dgram.createSocket(v6 ? 'udp6' : 'udp4');
      s.on('message', (b) => c.onFrame(b));
      await new Promise<void>((r) => s.bind(0, v6 ? '::1' : '127.0.0.1', () => r()));
      // A failed assertion must not leave the test process waiting on this socket.
      s.unref();
      c.udp = s;
    } else {
      const s = net.connect(port, host);
      await new Promise<void>((resolve, reject) => {
        s.once('connect', () => resolve());
        s.once('error', reject);
      });
      s.on('error', () => {});
      s.unref();
      s.on('close', () => (c.closedByServer = true));
      s.on('data', (d: Buffer) => {
        c.pending = Buffer.concat([c.pending, d]);
        for (;;) {
          const first = c.pending[0];
          if (first === undefined) break;
          const len = (first & 0xc0) === 0x40 ? channelFrameLengthAt(c.pending) : stunLengthAt(c.pending);
          if (len < 0 || c.pending.length < len) break;
          c.onFrame(c.pending.subarray(0, len));
          c.pending = c.pending.subarray(len);
        }
      });
      c.tcp = s;
    }
    return c;
  }

  get localPort(): number {
    return this.udp ? this.udp.address().port : this.tcp!.localPort!;
  }

  private onFrame(b: Buffer): void {
    if (!this.onChannelData) this.received.push(b);
    if ((b[0]! & 0xc0) === 0x40) {
      const n = b.readUInt16BE(2);
      if (this.onChannelData) return this.onChannelData(b.readUInt16BE(0), b.subarray(4, 4 + n));
      this.channelData.push({ channel: b.readUInt16BE(0), data: Buffer.from(b.subarray(4, 4 + n)) });
      return;
    }
    const m = parseMessage(Buffer.from(b));
    if (!m) return;
    if (m.cls === Class.Indication && m.method === Method.Data) {
      this.dataIndications.push(m);
      return;
    }
    this.waiting.get(m.transactionId.toString('hex'))?.(m);
  }

  sendRaw(b: Buffer): void {
    if (this.udp) this.udp.send(b, this.port, this.host);
    else this.tcp!.write(b);
  }

  /**
   * Sends a request and waits for the response with its transaction id (null on timeout).
   * Attributes may depend on the transaction id (the XOR-…-ADDRESS ones do).
   */
  request(method: number, attributes: Attrs, opts: EncodeOptions = {}, timeoutMs = 1500): Promise<StunMessage | null> {
    const transactionId = randomBytes(12);
    const list = typeof attributes === 'function' ? attributes(transactionId) : attributes;
    const buf = encodeMessage({ method, cls: Class.Request, transactionId, attributes: list }, opts);
    return this.requestRaw(buf, timeoutMs);
  }

  requestRaw(buf: Buffer, timeoutMs = 1500): Promise<StunMessage | null> {
    const key = buf.subarray(8, HEADER_LENGTH).toString('hex');
    const retransmit = this.retransmit && this.udp !== null;
    return new Promise((resolve) => {
      let resend: NodeJS.Timeout | undefined;
      const t = setTimeout(
        () => {
          clearTimeout(resend);
          this.waiting.delete(key);
          resolve(null);
        },
        retransmit ? RTO_MS * (2 ** (MAX_SENDS - 1) - 1 + LAST_WAIT) : timeoutMs,
      );
      this.waiting.set(key, (m) => {
        clearTimeout(t);
        clearTimeout(resend);
        this.waiting.delete(key);
        resolve(m);
      });
      const send = (n: number): void => {
        this.sendRaw(buf);
        if (retransmit && n < MAX_SENDS) resend = setTimeout(() => send(n + 1), RTO_MS * 2 ** (n - 1));
      };
      send(1);
    });
  }

  close(): void {
    this.udp?.close();
    this.tcp?.destroy();
  }
}

export function errorOf(m: StunMessage | null): number | null {
  if (!m || m.cls !== Class.Error) return null;
  return parseErrorCode(attrValue(m, Attr.ErrorCode)!)?.code ?? null;
}

/** REST API credentials for a secret: username "<expiry>:<user>" and its password. */
export function restCredentials(secret: string, user: string, ttlSeconds = 3600): { username: string; password: string } {
  const username = `${Math.floor(Date.now() / 1000) + ttlSeconds}:${user}`;
  return { username, password: restPassword(secret, username) };
}

export interface Session {
  username: string;
  realm: string;
  nonce: string;
  key: Buffer;
}

/** Gets a realm and nonce from a 401, then returns what signed requests need. */
export async function login(c: TestClient, username: string, password: string): Promise<Session> {
  const challenge = await c.request(Method.Allocate, [[Attr.RequestedTransport, requestedTransportValue(17)]]);
  if (errorOf(challenge) !== 401) throw new Error(`expected 401, got ${errorOf(challenge)}`);
  const realm = attrString(challenge!, Attr.Realm)!;
  const nonce = attrString(challenge!, Attr.Nonce)!;
  return { username, realm, nonce, key: longTermKey(username, realm, password) };
}

export function credentialAttrs(s: Session): [number, Buffer][] {
  return [
    [Attr.Username, Buffer.from(s.username)],
    [Attr.Realm, Buffer.from(s.realm)],
    [Attr.Nonce, Buffer.from(s.nonce)],
  ];
}

export function signed(c: TestClient, s: Session, method: number, attributes: Attrs, fingerprint = true): Promise<StunMessage | null> {
  const withCredentials = (tid: Buffer): [number, Buffer][] => [...(typeof attributes === 'function' ? attributes(tid) : attributes), ...credentialAttrs(s)];
  return c.request(method, withCredentials, { integrity: { key: s.key, kind: 'sha1' }, fingerprint });
}

export function sendIndication(c: TestClient, peer: { address: string; port: number }, data: Buffer): void {
  const transactionId = randomBytes(12);
  c.sendRaw(
    encodeMessage({
      method: Method.Send,
      cls: Class.Indication,
      transactionId,
      attributes: [
        [Attr.XorPeerAddress, xorAddressValue({ family: peer.address.includes(':') ? 6 : 4, ...peer }, transactionId)],
        [Attr.Data, data],
      ],
    }),
  );
}
