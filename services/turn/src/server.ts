import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import dns from 'node:dns/promises';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import type { HearthConfig } from '@hearth/config';
import { connectRedis, type Directory } from '@hearth/directory';
import type { Logger } from '@hearth/log';
import type { TlsMaterial } from '@hearth/tls';
import { Allocation, bindRelaySocket, growBuffers, literalLookup, newCounters, openRelaySocket, RELAY_SOCKET_BUFFER, StreamLink, UdpLink, type ClientLink, type Counters, type RelayOptions, type RelaySockets, type UdpSender } from './allocations.ts';
import { watchTurn } from './metrics.ts';
import { LocalCapacity, LocalQuota, RedisQuota, type AllocationQuota, type Capacity } from './quota.ts';
import { SUPPORTED_ALGORITHMS, TurnAuth } from './auth.ts';
import { PeerPolicy, localAddresses } from './peers.ts';
import { loadTurnSettings, type TurnSettings } from './settings.ts';
import {
  Attr,
  attrUint32,
  attrValue,
  Class,
  encodeMessage,
  errorCodeValue,
  findAttr,
  HEADER_LENGTH,
  Method,
  parseMessage,
  parseXorAddress,
  passwordAlgorithmsValue,
  uint32Value,
  unknownAttributesValue,
  unknownRequired,
  xorAddressValue,
  CHANNEL_MAX,
  CHANNEL_MIN,
  type AddressValue,
  type IntegrityKind,
  type MessageClass,
  type StunMessage,
} from './stun-codec.ts';

const UDP_TRANSPORT = 17;
/** A stream client gets this long to create an allocation before the connection is closed. */
const STREAM_IDLE_MS = 60_000;
/** Open TCP/TLS connections beyond this are refused. */
const MAX_STREAMS = 10_000;
/** Kernel buffer for the socket every client datagram arrives on: absorbs event-loop pauses (GC) at high packet rates. */
const LISTEN_SOCKET_BUFFER = 8 << 20;
/** How long the port reserved by EVEN-PORT's R bit waits for its RESERVATION-TOKEN (RFC 8656 §7.2: about 30 s). */
const RESERVATION_MS = 30_000;

const CREDENTIAL_ATTRS = [Attr.Username, Attr.Realm, Attr.Nonce, Attr.MessageIntegrity, Attr.MessageIntegritySha256, Attr.PasswordAlgorithm];
/** Comprehension-required attributes each method understands (others get 420). */
const KNOWN: Record<number, ReadonlySet<number>> = {
  [Method.Binding]: new Set([...CREDENTIAL_ATTRS, Attr.Priority, Attr.UseCandidate]),
  [Method.Allocate]: new Set([...CREDENTIAL_ATTRS, Attr.RequestedTransport, Attr.Lifetime, Attr.RequestedAddressFamily, Attr.EvenPort, Attr.ReservationToken]),
  [Method.Refresh]: new Set([...CREDENTIAL_ATTRS, Attr.Lifetime, Attr.RequestedAddressFamily]),
  [Method.CreatePermission]: new Set([...CREDENTIAL_ATTRS, Attr.XorPeerAddress]),
  [Method.ChannelBind]: new Set([...CREDENTIAL_ATTRS, Attr.ChannelNumber, Attr.XorPeerAddress]),
  [Method.Send]: new Set([Attr.XorPeerAddress, Attr.Data, Attr.DontFragment]),
};

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  420: 'Unknown Attribute',
  437: 'Allocation Mismatch',
  438: 'Stale Nonce',
  440: 'Address Family not Supported',
  441: 'Wrong Credentials',
  442: 'Unsupported Transport Protocol',
  443: 'Peer Address Family Mismatch',
  486: 'Allocation Quota Reached',
  508: 'Insufficient Capacity',
};

/** How a request reached us: the client side of the 5-tuple and the allocation on it, if any. */
interface Tuple {
  link: ClientLink;
  allocation(): Allocation | undefined;
  attach(a: Allocation): void;
}

interface Signer {
  key: Buffer;
  integrity: IntegrityKind;
}

export interface TurnStats extends Counters {
  allocationsActive: number;
}

export interface TurnServer {
  endpoints: string[];
  udpPort: number;
  tcpPort: number;
  tlsPort: number | null;
  stats(): TurnStats;
  close(): Promise<void>;
}

export interface TurnContext {
  config: HearthConfig;
  directory: Directory;
  logger: Logger;
  /** the TLS port is served only when this is given */
  tls: TlsMaterial | null;
  settings?: TurnSettings;
  /** set in a cluster worker (HEARTH_TURN_WORKERS > 1): the primary holds the UDP listener and the daemon-wide counts */
  worker?: WorkerLink;
}

/**
 * What a cluster worker gets from the primary (cluster.ts). The primary holds the UDP listener and
 * routes each client's datagrams to the one worker that owns that client; the kernel hands the
 * datagrams of a client with an allocation straight to the worker's socket connected to it.
 */
export interface WorkerLink {
  /** this worker's number, 0…workers-1: the first byte of the RESERVATION-TOKENs it issues, so another worker can ask for the port (claimReservation) */
  index: number;
  /** the UDP listening port the primary has bound (TCP and TLS are listened on here, shared through node:cluster) */
  port: number;
  /** sends from the listening port, through the primary */
  out: UdpSender;
  /** receives the datagrams the primary routes here */
  onDatagram(handler: (buf: Buffer, address: string, port: number) => void): void;
  /** a datagram one of this worker's sockets took that may belong to another worker: the primary routes it */
  reroute(buf: Buffer, address: string, port: number): void;
  /**
   * A RESERVATION-TOKEN another worker issued (clients use it from another port or connection, which
   * may be routed elsewhere): that worker lets the reserved port go and tells which it was, for this
   * worker to bind; null when the token is unknown or expired.
   */
  claimReservation(token: Buffer): Promise<number | null>;
  /** answers other workers' claims on this worker's reservations */
  onClaim(handler: (token: Buffer) => Promise<number | null>): void;
  /** the per-user quota over every worker (null with HEARTH_REDIS_URL: Redis counts) */
  quota: AllocationQuota | null;
  /** HEARTH_TURN_TOTAL_QUOTA over every worker */
  capacity: Capacity;
  /** this worker's TCP/TLS ports are listening: tell the primary */
  ready(tlsPort: number | null): void;
}

export async function startTurn(ctx: TurnContext): Promise<TurnServer> {
  const settings = ctx.settings ?? loadTurnSettings();
  // with Redis a user's allocations count over every replica
  const quota = ctx.config.redisUrl
    ? new RedisQuota(await connectRedis(ctx.config.redisUrl), settings.maxAllocationsPerUser, settings.maxLifetime, ctx.logger)
    : (ctx.worker?.quota ?? new LocalQuota(settings.maxAllocationsPerUser));
  const capacity = ctx.worker?.capacity ?? new LocalCapacity(settings.maxAllocations);
  const server = await new Turn(ctx, settings, quota, capacity).listen();
  ctx.worker?.ready(server.tlsPort);
  const unwatch = watchTurn(server);
  return {
    ...server,
    close: () => {
      unwatch();
      return server.close();
    },
  };
}

/** The client's address as it should see it: IPv4 clients of a dual-stack socket arrive as ::ffff:a.b.c.d. */
function reflexive(link: ClientLink): AddressValue {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(link.address);
  if (v4) return { family: 4, address: v4[1]!, port: link.port };
  return { family: link.address.includes(':') ? 6 : 4, address: link.address, port: link.port };
}

function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

/** The address peers should send to when relay sockets bind to a wildcard. */
function guessPublicAddress(config: HearthConfig, family: 4 | 6): string {
  if (net.isIP(config.hostname) === family) return config.hostname;
  const candidates = Object.values(os.networkInterfaces())
    .flatMap((l) => l ?? [])
    .filter((i) => !i.internal && (family === 4 ? i.family === 'IPv4' : i.family === 'IPv6' && !i.address.startsWith('fe80')));
  return candidates[0]?.address ?? (family === 4 ? '127.0.0.1' : '::1');
}

class Turn {
  private readonly counters = newCounters();
  private readonly auth: TurnAuth;
  private peers!: PeerPolicy;
  private relay!: RelayOptions;
  private relayFamily: 4 | 6 = 4;
  private readonly allocations = new Set<Allocation>();
  /** UDP allocations by client address and port (one UDP listening socket) */
  private readonly udpIndex = new Map<string, Map<number, Allocation>>();
  /** UDP 5-tuples with an Allocate in flight, so retransmissions do not allocate twice */
  private readonly allocating = new Set<string>();
  private readonly streams = new Set<net.Socket>();
  /** RESERVATION-TOKEN (hex) → the relay socket kept for it */
  private readonly reservations = new Map<string, { socket: dgram.Socket; port: number; expiresAt: number }>();
  /** the UDP listener, when this process holds it (not in a cluster worker) */
  private udp: dgram.Socket | null = null;
  /** sends from the listening address and port: the listener, or the cluster primary's */
  private udpOut!: UdpSender;
  /** where the UDP listener is bound; each UDP allocation's connected socket binds there too */
  private udpHost = '';
  private udpPort = 0;
  private tcp: net.Server | null = null;
  private tlsServer: tls.Server | null = null;
  private timers: NodeJS.Timeout[] = [];
  private readonly logger: Logger;

  constructor(
    private readonly ctx: TurnContext,
    private readonly settings: TurnSettings,
    private readonly quota: AllocationQuota,
    private readonly capacity: Capacity,
  ) {
    this.logger = ctx.logger;
    this.auth = new TurnAuth(ctx.directory, { realm: ctx.config.domain, nonceLifetimeSeconds: settings.nonceLifetime });
  }

  async listen(): Promise<TurnServer> {
    const { config } = this.ctx;
    const host = await listenAddress(config);
    const bindAddress = this.settings.relayAddress ?? host;
    this.relayFamily = net.isIPv6(bindAddress) ? 6 : 4;
    const advertisedAddress = this.settings.externalAddress ?? (isWildcard(bindAddress) ? guessPublicAddress(config, this.relayFamily) : bindAddress);
    this.relay = { bindAddress, advertisedAddress, portMin: this.settings.relayPortMin, portMax: this.settings.relayPortMax };
    this.peers = new PeerPolicy({
      allowLoopback: config.turnAllowLoopbackPeers,
      allowedCidrs: this.settings.allowedPeers,
      ownAddresses: [...localAddresses(), advertisedAddress],
    });
    const worker = this.ctx.worker;
    let udpPort: number;
    if (worker) {
      udpPort = worker.port;
      const tcp = net.createServer((s) => this.onStream(s, 'tcp'));
      await listenOn(tcp, udpPort, host);
      tcp.on('error', (err) => this.logger.warn({ err }, 'tcp listener error'));
      this.tcp = tcp;
      this.udpOut = worker.out;
      worker.onDatagram((buf, address, port) => this.onDatagram(buf, address, port));
      worker.onClaim(async (token) => {
        const reserved = this.reservations.get(token.toString('hex'));
        if (!reserved) return null;
        this.reservations.delete(token.toString('hex'));
        await new Promise<void>((r) => reserved.socket.close(() => r()));
        return reserved.port;
      });
    } else {
      const { udp, tcp } = await bindListeners(config.ports.turn, host, (s) => this.onStream(s, 'tcp'));
      udpPort = udp.address().port;
      udp.on('message', (buf, rinfo) => this.onDatagram(buf, rinfo.address, rinfo.port));
      udp.on('error', (err) => this.logger.warn({ err }, 'udp socket error'));
      tcp.on('error', (err) => this.logger.warn({ err }, 'tcp listener error'));
      this.udp = udp;
      this.udpOut = udp;
      this.tcp = tcp;
    }
    this.udpHost = host;
    this.udpPort = udpPort;
    let tlsPort: number | null = null;
    if (this.ctx.tls) {
      const server = tls.createServer({ cert: this.ctx.tls.cert, key: this.ctx.tls.key }, (s) => this.onStream(s, 'tls'));
      server.on('tlsClientError', (err) => this.logger.debug({ err: err.message }, 'tls handshake failed'));
      server.on('error', (err) => this.logger.warn({ err }, 'tls listener error'));
      await listenOn(server, config.ports.turnTls, host);
      this.tlsServer = server;
      tlsPort = (server.address() as net.AddressInfo).port;
    }
    this.timers.push(setInterval(() => this.sweep(), 1000).unref());
    this.timers.push(setInterval(() => this.logStats(), this.settings.statsIntervalSeconds * 1000).unref());
    const shown = host.includes(':') ? `[${host}]` : host;
    const endpoints = [`stun:${shown}:${udpPort}`, `turn:${shown}:${udpPort}?transport=udp`, `turn:${shown}:${udpPort}?transport=tcp`];
    if (tlsPort !== null) endpoints.push(`turns:${shown}:${tlsPort}?transport=tcp`);
    this.logger.info({ relay: this.relay.advertisedAddress, apps: this.auth.secretCount }, 'turn relay ready');
    return {
      endpoints,
      udpPort,
      tcpPort: udpPort,
      tlsPort,
      stats: () => this.stats(),
      close: () => this.close(),
    };
  }

  /**
   * Gives a UDP allocation its own socket on the listening address and port, connected to the
   * client, as coturn does: the kernel hands that client's datagrams straight to it (the more
   * specific match), so relaying them needs no lookup by address, and sends to the client go out
   * on a connected route. Until it is open, or if it cannot be, the listener serves the allocation.
   */
  private connectClient(a: Allocation, link: UdpLink, connected: () => void): void {
    // exclusive: in a cluster worker, a socket of this worker's own, not the primary's shared handle
    const s = dgram.createSocket({ type: net.isIPv6(this.udpHost) ? 'udp6' : 'udp4', reuseAddr: true, lookup: literalLookup as never });
    const fail = (err: Error): void => {
      this.logger.debug({ err: err.message, client: `${link.address}:${link.port}` }, 'no connected socket for a udp client');
      s.close();
      connected();
    };
    s.once('error', fail);
    // Until connect() the socket is one more listener: another client's datagram may land here.
    const early = (buf: Buffer, rinfo: dgram.RemoteInfo): void => {
      if (rinfo.port === link.port && rinfo.address === link.address) this.onDatagram(buf, rinfo.address, rinfo.port);
      else this.stray(buf, rinfo.address, rinfo.port);
    };
    s.on('message', early);
    s.bind({ port: this.udpPort, address: this.udpHost, exclusive: true }, () => {
      if (a.closed) return s.close();
      // connect() reports failure as an 'error' event (fail, above)
      s.connect(link.port, link.address, () => {
        if (a.closed) return s.close();
        s.off('error', fail);
        s.on('error', () => {});
        // Connected: the kernel hands this socket only the client's datagrams. The hot path.
        s.off('message', early);
        s.on('message', (buf) => {
          if (buf.length >= 4 && (buf[0]! & 0xc0) === 0x40) a.fromClientChannel(buf);
          else this.onDatagram(buf, link.address, link.port);
        });
        growBuffers(s, RELAY_SOCKET_BUFFER);
        link.attach(s);
        connected();
      });
    });
  }

  /** A datagram that reached an allocation's socket before it was connected: the listener's (or the primary's) to route. */
  private stray(buf: Buffer, address: string, port: number): void {
    if (this.ctx.worker) this.ctx.worker.reroute(buf, address, port);
    else this.onDatagram(buf, address, port);
  }

  stats(): TurnStats {
    return { ...this.counters, allocationsActive: this.allocations.size };
  }

  private logStats(): void {
    this.logger.info({ turn: this.stats() }, 'turn stats');
  }

  private async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const a of [...this.allocations]) this.removeAllocation(a, 'shutdown');
    for (const s of this.streams) s.destroy();
    for (const r of this.reservations.values()) r.socket.close();
    this.reservations.clear();
    this.auth.close();
    this.quota.close();
    await Promise.all([
      new Promise<void>((r) => (this.udp ? this.udp.close(() => r()) : r())),
      new Promise<void>((r) => (this.tcp ? this.tcp.close(() => r()) : r())),
      new Promise<void>((r) => (this.tlsServer ? this.tlsServer.close(() => r()) : r())),
    ]);
  }

  // ---- transports ----

  private onDatagram(buf: Buffer, address: string, port: number): void {
    try {
      this.onClientDatagram(buf, address, port);
    } catch (err) {
      this.logger.warn({ err }, 'failed to handle a datagram');
    }
  }

  private onClientDatagram(buf: Buffer, address: string, port: number): void {
    const kind = buf.length > 0 ? buf[0]! & 0xc0 : 0xc0;
    if (kind === 0x40) {
      // The hot path: ChannelData from a client towards its peer.
      const a = this.udpIndex.get(address)?.get(port);
      if (a && buf.length >= 4) a.fromClientChannel(buf);
      else this.counters.relayDropped++;
      return;
    }
    const msg = kind === 0 ? parseMessage(buf) : null;
    if (!msg) {
      this.counters.malformedDropped++;
      return;
    }
    const tuple: Tuple = {
      // an allocation's own link sends on its connected socket
      link: this.udpIndex.get(address)?.get(port)?.client ?? new UdpLink(this.udpOut, address, port),
      allocation: () => this.udpIndex.get(address)?.get(port),
      attach: (a) => {
        let ports = this.udpIndex.get(address);
        if (!ports) this.udpIndex.set(address, (ports = new Map()));
        ports.set(port, a);
      },
    };
    this.dispatch(msg, tuple);
  }

  private onStream(socket: net.Socket, transport: 'tcp' | 'tls'): void {
    const address = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const port = socket.remotePort ?? 0;
    if (this.streams.size >= MAX_STREAMS) {
      socket.destroy();
      return;
    }
    this.streams.add(socket);
    socket.setNoDelay(true);
    socket.setTimeout(STREAM_IDLE_MS);
    let allocation: Allocation | null = null;
    const tuple: Tuple = {
      link: new StreamLink(transport, socket, address, port),
      allocation: () => (allocation && !allocation.closed ? allocation : undefined),
      attach: (a) => {
        allocation = a;
        // The allocation's lifetime governs the connection from now on.
        socket.setTimeout(0);
        a.onClose = () => socket.end();
      },
    };
    let pending: Buffer | null = null;
    const onData = (chunk: Buffer): void => {
      const buf: Buffer = pending ? Buffer.concat([pending, chunk]) : chunk;
      pending = null;
      let off = 0;
      while (buf.length - off >= 4) {
        const kind = buf[off]! & 0xc0;
        const len = (buf[off + 2]! << 8) | buf[off + 3]!;
        let frameLength: number;
        if (kind === 0x40) frameLength = 4 + ((len + 3) & ~3);
        else if (kind === 0 && len % 4 === 0) frameLength = HEADER_LENGTH + len;
        else {
          // Not a STUN or ChannelData frame: the stream can no longer be delimited.
          this.counters.malformedDropped++;
          socket.destroy();
          return;
        }
        if (buf.length - off < frameLength) break;
        const frame = buf.subarray(off, off + frameLength);
        off += frameLength;
        if (kind === 0x40) {
          if (allocation && !allocation.closed) allocation.fromClientChannel(frame);
          else this.counters.relayDropped++;
          continue;
        }
        const msg = parseMessage(frame);
        if (msg) this.dispatch(msg, tuple);
        else this.counters.malformedDropped++;
      }
      if (off < buf.length) pending = Buffer.from(buf.subarray(off));
    };
    socket.on('data', (chunk: Buffer) => {
      try {
        onData(chunk);
      } catch (err) {
        this.logger.warn({ err }, 'failed to handle stream data');
        socket.destroy();
      }
    });
    socket.on('timeout', () => socket.destroy());
    socket.on('error', () => {});
    socket.on('close', () => {
      this.streams.delete(socket);
      if (allocation) this.removeAllocation(allocation, 'connection closed');
    });
  }

  // ---- STUN/TURN messages ----

  private dispatch(msg: StunMessage, t: Tuple): void {
    try {
      if (msg.cls === Class.Indication) {
        if (msg.method === Method.Send) this.onSend(msg, t);
        return;
      }
      if (msg.cls !== Class.Request) return;
      if (msg.method === Method.Binding) return this.onBinding(msg, t);
      if (msg.method === Method.Allocate || msg.method === Method.Refresh || msg.method === Method.CreatePermission || msg.method === Method.ChannelBind) {
        this.onTurnRequest(msg, t);
        return;
      }
      this.replyError(t, msg, 400, null);
    } catch (err) {
      this.logger.warn({ err }, 'failed to handle a STUN message');
    }
  }

  private onBinding(msg: StunMessage, t: Tuple): void {
    const unknown = unknownRequired(msg, KNOWN[Method.Binding]!);
    if (unknown.length) return this.replyError(t, msg, 420, null, [[Attr.UnknownAttributes, unknownAttributesValue(unknown)]]);
    this.reply(t, msg, Class.Success, [[Attr.XorMappedAddress, xorAddressValue(reflexive(t.link), msg.transactionId)]], null);
  }

  private onSend(msg: StunMessage, t: Tuple): void {
    const a = t.allocation();
    const peerValue = attrValue(msg, Attr.XorPeerAddress);
    const data = attrValue(msg, Attr.Data);
    if (!a || !peerValue || !data || unknownRequired(msg, KNOWN[Method.Send]!).length) {
      this.counters.relayDropped++;
      return;
    }
    const peer = parseXorAddress(peerValue, msg.transactionId);
    if (peer && peer.port !== 0) a.fromClientSend(peer, data);
  }

  private onTurnRequest(msg: StunMessage, t: Tuple): void {
    const outcome = this.auth.check(msg);
    switch (outcome.kind) {
      case 'challenge':
        return this.challenge(t, msg, 401);
      case 'stale':
        this.counters.staleNonces++;
        return this.challenge(t, msg, 438);
      case 'bad':
        return this.replyError(t, msg, 400, null);
      case 'reject':
        this.counters.authFailures++;
        this.logger.info({ protocol: 'turn', login: outcome.username, remote: t.link.address, reason: outcome.reason }, 'login refused');
        return this.challenge(t, msg, 401);
    }
    const signer: Signer = { key: outcome.key, integrity: outcome.integrity };
    const unknown = unknownRequired(msg, KNOWN[msg.method]!);
    if (unknown.length) {
      this.logger.debug({ method: msg.method, unknown }, 'unknown comprehension-required attributes');
      return this.replyError(t, msg, 420, signer, [[Attr.UnknownAttributes, unknownAttributesValue(unknown)]]);
    }
    const existing = t.allocation();
    if (msg.method === Method.Allocate) {
      if (existing) {
        if (existing.allocateTxn?.equals(msg.transactionId) && existing.allocateResponse) return t.link.send(existing.allocateResponse);
        return this.replyError(t, msg, 437, signer);
      }
      void this.allocate(msg, t, signer, outcome).catch((err) => this.logger.warn({ err }, 'allocate failed'));
      return;
    }
    if (!existing) return this.replyError(t, msg, 437, signer);
    if (existing.owner.username !== outcome.username) return this.replyError(t, msg, 441, signer);
    if (msg.method === Method.Refresh) return this.refresh(msg, t, existing, signer);
    if (msg.method === Method.CreatePermission) return this.createPermission(msg, t, existing, signer);
    return this.channelBind(msg, t, existing, signer);
  }

  private lifetimeFor(msg: StunMessage): number {
    const requested = attrUint32(msg, Attr.Lifetime);
    if (requested === undefined) return this.settings.defaultLifetime;
    return Math.max(this.settings.defaultLifetime, Math.min(requested, this.settings.maxLifetime));
  }

  private async allocate(msg: StunMessage, t: Tuple, signer: Signer, who: { username: string; user: string | null; appId: string }): Promise<void> {
    const transport = attrValue(msg, Attr.RequestedTransport);
    if (!transport || transport.length !== 4) return this.replyError(t, msg, 400, signer);
    if (transport[0] !== UDP_TRANSPORT) return this.replyError(t, msg, 442, signer);
    const family = attrValue(msg, Attr.RequestedAddressFamily);
    if (family && (family.length !== 4 || (family[0] !== 1 && family[0] !== 2))) return this.replyError(t, msg, 400, signer);
    if (family && family[0] !== (this.relayFamily === 4 ? 1 : 2)) return this.replyError(t, msg, 440, signer);
    const evenPort = attrValue(msg, Attr.EvenPort);
    const token = attrValue(msg, Attr.ReservationToken);
    if (evenPort && evenPort.length < 1) return this.replyError(t, msg, 400, signer);
    if (token && (token.length !== 8 || evenPort || family)) return this.replyError(t, msg, 400, signer);
    const userKey = `${who.appId}/${who.user ?? who.username}`;
    // One Allocate at a time per 5-tuple: a retransmission while this one is under way is not answered twice.
    const tupleKey = `${t.link.transport}:${t.link.address}:${t.link.port}`;
    if (this.allocating.has(tupleKey)) return;
    this.allocating.add(tupleKey);
    let kept = false;
    let took = false;
    try {
      if (!(took = await this.capacity.take())) return this.replyError(t, msg, 508, signer);
      let relay: RelaySockets | null;
      if (token) {
        relay = await this.reserved(token);
        if (!relay) return this.replyError(t, msg, 508, signer);
      } else {
        relay = await openRelaySocket(this.relay, evenPort !== undefined, evenPort !== undefined && (evenPort[0]! & 0x80) !== 0);
      }
      if (!relay) return this.replyError(t, msg, 508, signer);
      const lifetime = this.lifetimeFor(msg);
      const slot = randomBytes(8).toString('hex');
      // The client may have gone, or a retransmission won the race, while the socket was being bound.
      const gone = t.allocation() !== undefined || (t.link instanceof StreamLink && t.link.closed);
      if (gone || !(await this.quota.acquire(userKey, slot, lifetime))) {
        relay.socket.close();
        relay.next?.close();
        if (!gone) {
          this.counters.quotaExceeded++;
          this.replyError(t, msg, 486, signer);
        }
        return;
      }
      kept = true;
      this.created(msg, t, signer, who, relay, lifetime, userKey, slot);
    } finally {
      this.allocating.delete(tupleKey);
      if (took && !kept) this.capacity.give();
    }
  }

  /** The relay socket an EVEN-PORT reservation kept for `token`: here, or (cluster) in the worker that issued it. */
  private async reserved(token: Buffer): Promise<RelaySockets | null> {
    const here = this.reservations.get(token.toString('hex'));
    if (here) {
      this.reservations.delete(token.toString('hex'));
      return { socket: here.socket, port: here.port, next: null };
    }
    const worker = this.ctx.worker;
    if (!worker || token[0] === worker.index) return null;
    // Let go by the other worker just now; bound here at once (another bind may win the port in between: 508).
    const port = await worker.claimReservation(token);
    const socket = port === null ? null : await bindRelaySocket(this.relay, port);
    return socket && port !== null ? { socket, port, next: null } : null;
  }

  /** An allocation that passed every check: record it and answer (over UDP once its connected socket is open). */
  private created(msg: StunMessage, t: Tuple, signer: Signer, who: { username: string; user: string | null; appId: string }, relay: RelaySockets, lifetime: number, userKey: string, slot: string): void {
    const extra: [number, Buffer][] = [];
    if (relay.next) {
      const reservation = randomBytes(8);
      // the first byte names this worker, for another worker the token's Allocate reaches (claimReservation)
      reservation[0] = this.ctx.worker?.index ?? reservation[0]!;
      this.reservations.set(reservation.toString('hex'), { socket: relay.next, port: relay.port + 1, expiresAt: Date.now() + RESERVATION_MS });
      extra.push([Attr.ReservationToken, reservation]);
    }
    const relayed: AddressValue = { family: this.relayFamily, address: this.relay.advertisedAddress, port: relay.port };
    const a = new Allocation(t.link, relay.socket, relayed, { username: who.username, user: who.user ?? who.username, appId: who.appId, key: signer.key, integrity: signer.integrity }, lifetime, this.counters);
    a.userKey = userKey;
    a.quotaSlot = slot;
    this.allocations.add(a);
    t.attach(a);
    this.counters.allocationsCreated++;
    const response = this.encode(
      msg,
      Class.Success,
      [
        [Attr.XorRelayedAddress, xorAddressValue(relayed, msg.transactionId)],
        [Attr.Lifetime, uint32Value(lifetime)],
        [Attr.XorMappedAddress, xorAddressValue(reflexive(t.link), msg.transactionId)],
        ...extra,
      ],
      signer,
    );
    a.allocateTxn = Buffer.from(msg.transactionId);
    a.allocateResponse = response;
    // The answer waits for the connected socket: what the client sends next then reaches it, in
    // the worker that owns the allocation, instead of the listener.
    if (t.link instanceof UdpLink)
      this.connectClient(a, t.link, () => {
        if (!a.closed) t.link.send(response);
      });
    else t.link.send(response);
    this.logger.info({ user: a.owner.user, app: who.appId, client: `${t.link.transport}:${t.link.address}:${t.link.port}`, relay: `${relayed.address}:${relayed.port}`, lifetime }, 'allocation created');
    void this.ctx.directory.audit({
      username: a.owner.user,
      protocol: 'turn',
      appId: who.appId,
      remote: t.link.address,
      ok: true,
      detail: `allocate ${t.link.transport} relay=${relayed.address}:${relayed.port} lifetime=${lifetime}`,
    });
  }

  private refresh(msg: StunMessage, t: Tuple, a: Allocation, signer: Signer): void {
    const family = attrValue(msg, Attr.RequestedAddressFamily);
    if (family && family[0] !== (this.relayFamily === 4 ? 1 : 2)) return this.replyError(t, msg, 443, signer);
    const requested = attrUint32(msg, Attr.Lifetime);
    if (requested === 0) {
      this.reply(t, msg, Class.Success, [[Attr.Lifetime, uint32Value(0)]], signer);
      return this.removeAllocation(a, 'released');
    }
    const lifetime = this.lifetimeFor(msg);
    a.refresh(lifetime);
    this.quota.extend(a.userKey, a.quotaSlot, lifetime);
    this.reply(t, msg, Class.Success, [[Attr.Lifetime, uint32Value(lifetime)]], signer);
  }

  /** The XOR-PEER-ADDRESS values of a request, or the error code to answer with. */
  private peersOf(msg: StunMessage): AddressValue[] | number {
    const out: AddressValue[] = [];
    for (const ref of msg.attributes) {
      if (ref.type !== Attr.XorPeerAddress) continue;
      const peer = parseXorAddress(msg.raw.subarray(ref.offset, ref.offset + ref.length), msg.transactionId);
      if (!peer) return 400;
      out.push(peer);
    }
    // Port 0 cannot be sent to (and dgram would throw on it).
    if (!out.length || out.some((p) => p.port === 0)) return 400;
    if (out.some((p) => p.family !== this.relayFamily)) return 443;
    if (out.some((p) => !this.peers.allows(p.address))) {
      this.counters.peerDenied++;
      return 403;
    }
    return out;
  }

  private createPermission(msg: StunMessage, t: Tuple, a: Allocation, signer: Signer): void {
    const peers = this.peersOf(msg);
    if (typeof peers === 'number') return this.replyError(t, msg, peers, signer);
    const addresses = peers.map((p) => p.address);
    if (!a.canAddPermissions(addresses)) return this.replyError(t, msg, 508, signer);
    const fresh = addresses.filter((x) => !a.peersSeen.has(x));
    for (const x of addresses) a.installPermission(x);
    if (fresh.length) this.auditPeers(a, fresh);
    this.reply(t, msg, Class.Success, [], signer);
  }

  private channelBind(msg: StunMessage, t: Tuple, a: Allocation, signer: Signer): void {
    const number = attrValue(msg, Attr.ChannelNumber);
    if (!number || number.length !== 4) return this.replyError(t, msg, 400, signer);
    const channel = number.readUInt16BE(0);
    if (channel < CHANNEL_MIN || channel > CHANNEL_MAX) return this.replyError(t, msg, 400, signer);
    const peers = this.peersOf(msg);
    if (typeof peers === 'number') return this.replyError(t, msg, peers, signer);
    if (peers.length !== 1) return this.replyError(t, msg, 400, signer);
    const peer = peers[0]!;
    const fresh = !a.peersSeen.has(peer.address);
    const conflict = a.bindChannel(channel, peer);
    if (conflict) {
      this.logger.debug({ channel, peer, conflict }, 'channel bind refused');
      return this.replyError(t, msg, 400, signer);
    }
    if (fresh) this.auditPeers(a, [peer.address]);
    this.reply(t, msg, Class.Success, [], signer);
  }

  private auditPeers(a: Allocation, addresses: string[]): void {
    void this.ctx.directory.audit({
      username: a.owner.user,
      protocol: 'turn',
      appId: a.owner.appId,
      remote: a.client.address,
      ok: true,
      detail: `permission relay=${a.relayed.address}:${a.relayed.port} peers=${addresses.join(',')}`,
    });
  }

  private removeAllocation(a: Allocation, why: string): void {
    if (!this.allocations.delete(a)) return;
    a.close();
    this.quota.release(a.userKey, a.quotaSlot);
    this.capacity.give();
    this.counters.allocationsClosed++;
    if (a.client instanceof UdpLink) {
      const ports = this.udpIndex.get(a.client.address);
      if (ports?.get(a.client.port) === a) {
        ports.delete(a.client.port);
        if (ports.size === 0) this.udpIndex.delete(a.client.address);
      }
    }
    a.onClose?.();
    this.logger.info({ user: a.owner.user, relay: `${a.relayed.address}:${a.relayed.port}`, why, bytesToPeer: a.bytesToPeer, bytesToClient: a.bytesToClient }, 'allocation closed');
    void this.ctx.directory.audit({
      username: a.owner.user,
      protocol: 'turn',
      appId: a.owner.appId,
      remote: a.client.address,
      ok: true,
      detail: `deallocate (${why}) relay=${a.relayed.address}:${a.relayed.port} peers=${[...a.peersSeen].slice(0, 50).join(',') || '-'} bytes_to_peer=${a.bytesToPeer} bytes_to_client=${a.bytesToClient}`,
    });
  }

  private sweep(): void {
    const now = Date.now();
    for (const a of this.allocations) {
      if (a.expiresAt <= now) this.removeAllocation(a, 'expired');
      else a.sweep(now);
    }
    for (const [token, r] of this.reservations) {
      if (r.expiresAt <= now) {
        r.socket.close();
        this.reservations.delete(token);
      }
    }
    this.auth.sweep();
  }

  // ---- responses ----

  private encode(msg: StunMessage, cls: MessageClass, attributes: [number, Buffer][], signer: Signer | null): Buffer {
    return encodeMessage(
      { method: msg.method, cls, transactionId: msg.transactionId, attributes },
      { integrity: signer ? { key: signer.key, kind: signer.integrity } : undefined, fingerprint: findAttr(msg, Attr.Fingerprint) !== undefined },
    );
  }

  private reply(t: Tuple, msg: StunMessage, cls: MessageClass, attributes: [number, Buffer][], signer: Signer | null): void {
    t.link.send(this.encode(msg, cls, attributes, signer));
  }

  /**
   * An error response. Unsigned ones go to unauthenticated senders, who may be spoofing
   * a victim's address: those are cut to the bare code and dropped when still larger
   * than the request. Binding is the exception STUN needs: its 420 is at most 12 bytes
   * over the request (RFC 5780 probes such as CHANGE-REQUEST rely on getting it).
   */
  private replyError(t: Tuple, msg: StunMessage, code: number, signer: Signer | null, extra: [number, Buffer][] = []): void {
    const out = this.encode(msg, Class.Error, [[Attr.ErrorCode, errorCodeValue(code, REASONS[code] ?? '')], ...extra], signer);
    if (signer || out.length <= msg.raw.length) return t.link.send(out);
    const bare = this.encode(msg, Class.Error, [[Attr.ErrorCode, errorCodeValue(code, '')], ...extra], null);
    if (bare.length <= msg.raw.length || msg.method === Method.Binding) return t.link.send(bare);
    this.counters.malformedDropped++;
  }

  /** 401 or 438 with a fresh nonce: the one reply unauthenticated TURN requests get. */
  private challenge(t: Tuple, msg: StunMessage, code: 401 | 438): void {
    this.reply(
      t,
      msg,
      Class.Error,
      [
        [Attr.ErrorCode, errorCodeValue(code, REASONS[code]!)],
        [Attr.Realm, Buffer.from(this.auth.realm, 'utf8')],
        [Attr.Nonce, Buffer.from(this.auth.newNonce(), 'utf8')],
        [Attr.PasswordAlgorithms, passwordAlgorithmsValue(SUPPORTED_ALGORITHMS)],
      ],
      null,
    );
  }
}

/**
 * The UDP listener and a TCP listener on the same port number, as STUN clients expect both on 3478.
 * The UDP one allows other sockets on its address and port (SO_REUSEADDR) so that each UDP
 * allocation can have one connected to its client (Turn.connectClient), in this process or in a
 * cluster worker; a plain bind first keeps a port already in use an error, and keeps port 0 from
 * landing on another such socket. With port 0 (tests) the number the OS picks for UDP may be taken
 * for TCP: pick again.
 */
export async function bindListeners(port: number, host: string, onStream: (s: net.Socket) => void): Promise<{ udp: dgram.Socket; tcp: net.Server }> {
  const type = net.isIPv6(host) ? 'udp6' : 'udp4';
  for (let attempt = 0; ; attempt++) {
    const probe = await bindSocket(dgram.createSocket({ type, lookup: literalLookup as never }), port, host);
    const chosen = probe.address().port;
    await new Promise<void>((r) => probe.close(() => r()));
    const udp = await bindSocket(dgram.createSocket({ type, reuseAddr: true, lookup: literalLookup as never }), chosen, host);
    const tcp = net.createServer(onStream);
    try {
      await listenOn(tcp, chosen, host);
    } catch (err) {
      udp.close();
      if (port !== 0 || attempt >= 20) throw err;
      continue;
    }
    growBuffers(udp, LISTEN_SOCKET_BUFFER);
    return { udp, tcp };
  }
}

/** HEARTH_LISTEN as an address: sockets here resolve nothing per packet (see literalLookup), so a host name is resolved once, at start. */
export async function listenAddress(config: HearthConfig): Promise<string> {
  return net.isIP(config.listen) ? config.listen : (await dns.lookup(config.listen)).address;
}

function bindSocket(socket: dgram.Socket, port: number, host: string): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

function listenOn(server: net.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
