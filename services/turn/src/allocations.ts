import dgram from 'node:dgram';
import { randomFillSync, randomInt } from 'node:crypto';
import { Attr, Class, encodeMessage, Method, xorAddressValue, type AddressValue, type IntegrityKind } from './stun-codec.ts';

/**
 * TURN allocations (RFC 8656 §5–§12): one relay socket per allocation, its permissions
 * and channel bindings, and the relay hot path in both directions. Lifetimes are
 * checked against timestamps on each packet and swept by the server's timer.
 */

export const PERMISSION_LIFETIME_MS = 300_000;
export const CHANNEL_LIFETIME_MS = 600_000;
/** RFC 8656 §12: a channel number / peer pair stays reserved this long after the binding expires. */
const CHANNEL_REUSE_DELAY_MS = 300_000;
/** Caps per allocation, so one client cannot grow server memory without bound. */
export const MAX_PERMISSIONS = 1000;
export const MAX_CHANNELS = 1000;
/** Bytes queued towards a stream client beyond which relayed data is dropped, as UDP would. */
const MAX_STREAM_BACKLOG = 1 << 20;

export interface Counters {
  allocationsCreated: number;
  allocationsClosed: number;
  authFailures: number;
  staleNonces: number;
  peerDenied: number;
  quotaExceeded: number;
  malformedDropped: number;
  packetsToPeer: number;
  bytesToPeer: number;
  packetsToClient: number;
  bytesToClient: number;
  /** relayed packets dropped for lack of a permission or a channel */
  relayDropped: number;
}

export function newCounters(): Counters {
  return {
    allocationsCreated: 0,
    allocationsClosed: 0,
    authFailures: 0,
    staleNonces: 0,
    peerDenied: 0,
    quotaExceeded: 0,
    malformedDropped: 0,
    packetsToPeer: 0,
    bytesToPeer: 0,
    packetsToClient: 0,
    bytesToClient: 0,
    relayDropped: 0,
  };
}

/** The client side of an allocation's 5-tuple: how to reach the client. */
export interface ClientLink {
  readonly transport: 'udp' | 'tcp' | 'tls';
  readonly address: string;
  readonly port: number;
  /** a STUN message to the client */
  send(buf: Buffer): void;
  /** relayed data to the client in a ChannelData frame */
  sendChannelData(channel: number, data: Buffer): void;
  /** the allocation is gone: let go of what the link holds for it */
  release?(): void;
}

/** Sends datagrams from the listening address and port: the UDP listener, or in a cluster worker the primary's. */
export interface UdpSender {
  send(msg: Buffer, port: number, address: string): void;
}

/**
 * Where a ChannelData frame towards a UDP client is put together: header and data in one buffer, so
 * dgram sends one buffer (a list costs it a copy of the list and a view per element) in one iovec.
 * One per process: a send that the kernel could not take at once keeps it, and the next frame gets a new one.
 */
let frameScratch = Buffer.allocUnsafe(4 + 0xffff);

export class UdpLink implements ClientLink {
  readonly transport = 'udp' as const;
  /** the allocation's own socket connected to the client, once open (Turn.connectClient); else the listener */
  private direct: dgram.Socket | null = null;
  constructor(
    private readonly listener: UdpSender,
    readonly address: string,
    readonly port: number,
  ) {}
  attach(direct: dgram.Socket): void {
    this.direct = direct;
  }
  release(): void {
    this.direct?.close();
    this.direct = null;
  }
  send(buf: Buffer): void {
    if (this.direct) this.direct.send(buf);
    else this.listener.send(buf, this.port, this.address);
  }
  /** The hot path towards the client: no allocation here beyond dgram's own. */
  sendChannelData(channel: number, data: Buffer): void {
    const n = data.length;
    const s = this.direct;
    if (!s) {
      // the listener (or the primary, over IPC) gets a frame of its own
      const frame = Buffer.allocUnsafe(4 + n);
      frame.writeUInt16BE(channel, 0);
      frame.writeUInt16BE(n, 2);
      data.copy(frame, 4);
      this.listener.send(frame, this.port, this.address);
      return;
    }
    const f = frameScratch;
    f[0] = channel >> 8;
    f[1] = channel & 0xff;
    f[2] = n >> 8;
    f[3] = n & 0xff;
    data.copy(f, 4);
    s.send(f, 0, 4 + n);
    // A send the kernel could not take at once is queued and reads the buffer later: leave it that one.
    if (s.getSendQueueCount() > 0) frameScratch = Buffer.allocUnsafe(4 + 0xffff);
  }
}

/** TCP or TLS client connection; ChannelData frames are padded to 4 bytes on streams (RFC 8656 §12.5). */
export class StreamLink implements ClientLink {
  constructor(
    readonly transport: 'tcp' | 'tls',
    private readonly socket: import('node:net').Socket,
    readonly address: string,
    readonly port: number,
  ) {}
  get closed(): boolean {
    return this.socket.destroyed;
  }
  send(buf: Buffer): void {
    if (!this.socket.destroyed && this.socket.writableLength <= MAX_STREAM_BACKLOG) this.socket.write(buf);
  }
  sendChannelData(channel: number, data: Buffer): void {
    if (this.socket.destroyed || this.socket.writableLength > MAX_STREAM_BACKLOG) return;
    const n = data.length;
    const padded = (n + 3) & ~3;
    const out = Buffer.allocUnsafe(4 + padded);
    out[0] = channel >> 8;
    out[1] = channel & 0xff;
    out[2] = n >> 8;
    out[3] = n & 0xff;
    data.copy(out, 4);
    out.fill(0, 4 + n);
    this.socket.write(out);
  }
}

export interface Permission {
  expiresAt: number;
}

export interface Channel {
  number: number;
  address: string;
  port: number;
  expiresAt: number;
  /** the permission of the peer's address, shared with the allocation's permission map */
  permission: Permission;
}

export interface AllocationOwner {
  username: string;
  /** the user part of the REST API username, or the whole username when there is none */
  user: string;
  appId: string;
  key: Buffer;
  integrity: IntegrityKind;
}

export class Allocation {
  readonly permissions = new Map<string, Permission>();
  readonly channels = new Map<number, Channel>();
  /** peer address → peer port → channel */
  private readonly peerChannels = new Map<string, Map<number, Channel>>();
  /**
   * The peer the last datagram came from and what it was allowed by: a stream of datagrams from one
   * peer compares two strings instead of hashing the address into two maps. Forgotten whenever a
   * permission or a channel is added or removed (expiry is checked on the objects themselves).
   */
  private lastPeerAddress = '';
  private lastPeerPort = -1;
  private lastPermission: Permission | undefined;
  private lastChannel: Channel | undefined;
  /** every peer address a permission was installed for, for the audit log */
  readonly peersSeen = new Set<string>();
  expiresAt: number;
  /** the last Allocate transaction and its response, for retransmissions over UDP */
  allocateTxn: Buffer | null = null;
  allocateResponse: Buffer | null = null;
  bytesToPeer = 0;
  bytesToClient = 0;
  closed = false;
  /** quota bucket this allocation counts against */
  userKey = '';
  /** this allocation's slot in the user's quota */
  quotaSlot = '';
  /** called once the allocation is gone (stream clients: close the connection) */
  onClose: (() => void) | null = null;

  constructor(
    readonly client: ClientLink,
    readonly relay: dgram.Socket,
    readonly relayed: AddressValue,
    readonly owner: AllocationOwner,
    lifetimeSeconds: number,
    private readonly counters: Counters,
  ) {
    this.expiresAt = Date.now() + lifetimeSeconds * 1000;
    relay.on('message', (msg, rinfo) => {
      try {
        this.fromPeer(msg, rinfo.address, rinfo.port);
      } catch {
        this.counters.relayDropped++;
      }
    });
    relay.on('error', () => {});
  }

  refresh(lifetimeSeconds: number): void {
    this.expiresAt = Date.now() + lifetimeSeconds * 1000;
  }

  installPermission(address: string): Permission {
    const expiresAt = Date.now() + PERMISSION_LIFETIME_MS;
    let p = this.permissions.get(address);
    if (p) {
      p.expiresAt = expiresAt;
      return p;
    }
    p = { expiresAt };
    this.permissions.set(address, p);
    this.lastPeerPort = -1;
    this.peersSeen.add(address);
    const bound = this.peerChannels.get(address);
    if (bound) for (const ch of bound.values()) ch.permission = p;
    return p;
  }

  canAddPermissions(addresses: string[]): boolean {
    const fresh = new Set(addresses.filter((a) => !this.permissions.has(a)));
    return this.permissions.size + fresh.size <= MAX_PERMISSIONS;
  }

  /** Binds or refreshes a channel; returns an error reason when the binding conflicts with another. */
  bindChannel(number: number, peer: AddressValue): string | null {
    const existing = this.channels.get(number);
    const byPeer = this.peerChannels.get(peer.address)?.get(peer.port);
    if (existing && (existing.address !== peer.address || existing.port !== peer.port)) return 'channel bound to another peer';
    if (byPeer && byPeer.number !== number) return 'peer bound to another channel';
    if (!existing && this.channels.size >= MAX_CHANNELS) return 'too many channels';
    const permission = this.installPermission(peer.address);
    const expiresAt = Date.now() + CHANNEL_LIFETIME_MS;
    if (existing) {
      existing.expiresAt = expiresAt;
      existing.permission = permission;
      return null;
    }
    const ch: Channel = { number, address: peer.address, port: peer.port, expiresAt, permission };
    this.channels.set(number, ch);
    this.lastPeerPort = -1;
    let ports = this.peerChannels.get(peer.address);
    if (!ports) this.peerChannels.set(peer.address, (ports = new Map()));
    ports.set(peer.port, ch);
    return null;
  }

  /** Client → peer through a channel. `frame` is one ChannelData message (header + data, maybe padded). */
  fromClientChannel(frame: Buffer): void {
    const number = (frame[0]! << 8) | frame[1]!;
    const length = (frame[2]! << 8) | frame[3]!;
    const ch = this.channels.get(number);
    const now = Date.now();
    if (length > frame.length - 4 || !ch || ch.expiresAt <= now || ch.permission.expiresAt <= now) {
      this.counters.relayDropped++;
      return;
    }
    this.relay.send(frame, 4, length, ch.port, ch.address);
    this.counters.packetsToPeer++;
    this.counters.bytesToPeer += length;
    this.bytesToPeer += length;
  }

  /** Client → peer through a Send indication (already parsed). */
  fromClientSend(peer: AddressValue, data: Buffer): void {
    const p = this.permissions.get(peer.address);
    if (!p || p.expiresAt <= Date.now()) {
      this.counters.relayDropped++;
      return;
    }
    this.relay.send(data, peer.port, peer.address);
    this.counters.packetsToPeer++;
    this.counters.bytesToPeer += data.length;
    this.bytesToPeer += data.length;
  }

  /** Peer → client: ChannelData when a channel is bound, else a Data indication. */
  private fromPeer(msg: Buffer, address: string, port: number): void {
    const now = Date.now();
    if (port !== this.lastPeerPort || address !== this.lastPeerAddress) {
      this.lastPeerAddress = address;
      this.lastPeerPort = port;
      this.lastPermission = this.permissions.get(address);
      this.lastChannel = this.peerChannels.get(address)?.get(port);
    }
    const p = this.lastPermission;
    if (!p || p.expiresAt <= now) {
      this.counters.relayDropped++;
      return;
    }
    const ch = this.lastChannel;
    if (ch && ch.expiresAt > now) {
      this.client.sendChannelData(ch.number, msg);
    } else {
      const family = address.includes(':') ? 6 : 4;
      const tid = randomFillSync(Buffer.allocUnsafe(12));
      this.client.send(
        encodeMessage({
          method: Method.Data,
          cls: Class.Indication,
          transactionId: tid,
          attributes: [
            [Attr.XorPeerAddress, xorAddressValue({ family, address, port }, tid)],
            [Attr.Data, msg],
          ],
        }),
      );
    }
    this.counters.packetsToClient++;
    this.counters.bytesToClient += msg.length;
    this.bytesToClient += msg.length;
  }

  /** Drops expired permissions and channels past their reuse delay. */
  sweep(now: number): void {
    this.lastPeerPort = -1;
    for (const [n, ch] of this.channels) {
      if (ch.expiresAt + CHANNEL_REUSE_DELAY_MS <= now) {
        this.channels.delete(n);
        const ports = this.peerChannels.get(ch.address);
        ports?.delete(ch.port);
        if (ports?.size === 0) this.peerChannels.delete(ch.address);
      }
    }
    for (const [addr, p] of this.permissions) {
      if (p.expiresAt <= now && !this.peerChannels.has(addr)) this.permissions.delete(addr);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.release?.();
    try {
      this.relay.close();
    } catch {
      // already closed
    }
  }
}

export interface RelayOptions {
  /** address relay sockets bind to */
  bindAddress: string;
  /** address advertised in XOR-RELAYED-ADDRESS */
  advertisedAddress: string;
  portMin: number | null;
  portMax: number | null;
}

export interface RelaySockets {
  socket: dgram.Socket;
  port: number;
  /** the socket on port + 1, when EVEN-PORT asked for it to be reserved */
  next: dgram.Socket | null;
}

/**
 * Opens a relay socket, within the configured port range when there is one (random
 * start, then linear probing), or on any port the OS picks. With `even`, the port is
 * even; with `reserveNext`, port + 1 is bound too (EVEN-PORT with the R bit, RFC 8656
 * §14.6). Null when no port is free.
 */
export async function openRelaySocket(opts: RelayOptions, even = false, reserveNext = false): Promise<RelaySockets | null> {
  const tryBind = (port: number): Promise<dgram.Socket | null> => bindRelaySocket(opts, port);
  const withNext = async (s: dgram.Socket, port: number): Promise<RelaySockets | null> => {
    if (!reserveNext) return { socket: s, port, next: null };
    const next = port < 65535 && (opts.portMax === null || port + 1 <= opts.portMax) ? await tryBind(port + 1) : null;
    if (next) return { socket: s, port, next };
    s.close();
    return null;
  };
  if (opts.portMin === null || opts.portMax === null) {
    for (let i = 0; i < (even ? 32 : 1); i++) {
      const s = await tryBind(0);
      if (!s) return null;
      const port = s.address().port;
      if (even && port % 2 !== 0) {
        s.close();
        continue;
      }
      const r = await withNext(s, port);
      if (r) return r;
    }
    return null;
  }
  const span = opts.portMax - opts.portMin + 1;
  const start = randomInt(span);
  for (let i = 0; i < Math.min(span, 64); i++) {
    const port = opts.portMin + ((start + i) % span);
    if (even && port % 2 !== 0) continue;
    const s = await tryBind(port);
    if (!s) continue;
    const r = await withNext(s, port);
    if (r) return r;
  }
  return null;
}

/** A relay socket on `port` (0: any), or null when it cannot be bound there. */
export function bindRelaySocket(opts: RelayOptions, port: number): Promise<dgram.Socket | null> {
  return new Promise((resolve) => {
    const s = dgram.createSocket({ type: opts.bindAddress.includes(':') ? 'udp6' : 'udp4', lookup: literalLookup as never });
    s.once('error', () => {
      s.close();
      resolve(null);
    });
    s.bind({ port, address: opts.bindAddress, exclusive: true }, () => {
      s.removeAllListeners('error');
      growBuffers(s, RELAY_SOCKET_BUFFER);
      resolve(s);
    });
  });
}

/** Kernel buffers for each allocation's sockets (relay, and the one connected to its UDP client). */
export const RELAY_SOCKET_BUFFER = 1 << 20;

/** Asks for larger kernel socket buffers; the kernel caps them at net.core.[rw]mem_max. */
export function growBuffers(s: dgram.Socket, bytes: number): void {
  try {
    s.setRecvBufferSize(bytes);
    s.setSendBufferSize(bytes);
  } catch {
    // keep the defaults
  }
}

/**
 * dgram resolves every destination through dns.lookup, which defers even IP literals
 * to the next tick; peers and clients are always IP literals, so answer synchronously.
 */
export function literalLookup(address: string, family: number, cb: (err: Error | null, address: string, family: number) => void): void {
  // dgram passes the socket's family (4 or 6)
  cb(null, address, family);
}
