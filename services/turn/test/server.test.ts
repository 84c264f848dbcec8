import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import dns from 'node:dns/promises';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { generateSecret } from '@hearth/directory';
import { waitFor } from '@hearth/testkit';
import { NONCE_COOKIE, restPassword } from '../src/auth.ts';
import {
  Attr,
  attrString,
  attrUint32,
  attrValue,
  channelNumberValue,
  checkIntegrity,
  Class,
  encodeMessage,
  integrityKind,
  longTermKey,
  passwordAlgorithmsValue,
  Method,
  parsePasswordAlgorithms,
  parseXorAddress,
  requestedTransportValue,
  uint32Value,
  unknownAttributesValue,
  xorAddressValue,
} from '../src/stun-codec.ts';
import { errorOf, login, restCredentials, sendIndication, signed, TestClient, type Session } from './client.ts';
import { allocated, startFixture, turnApp, type Fixture } from './fixture.ts';

const UDP = requestedTransportValue(17);
const peerAttr = (address: string, port: number, tid: Buffer): Buffer => xorAddressValue({ family: 4, address, port }, tid);

/** A UDP peer on loopback that echoes what it receives back to the sender. */
async function echoPeer(): Promise<{ port: number; got: Buffer[]; sources: number[]; close: () => void }> {
  const s = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  const sources: number[] = [];
  s.on('message', (b, r) => {
    got.push(b);
    sources.push(r.port);
    s.send(b, r.port, r.address);
  });
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  s.unref();
  return { port: s.address().port, got, sources, close: () => s.close() };
}

/** The IPv4 UDP sockets of this network namespace, from /proc/net/udp (remote port 0 = not connected). */
function udpSockets(): { localPort: number; remotePort: number }[] {
  return fs
    .readFileSync('/proc/net/udp', 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols.length > 2)
    .map((cols) => ({ localPort: parseInt(cols[1]!.split(':')[1]!, 16), remotePort: parseInt(cols[2]!.split(':')[1]!, 16) }));
}

/** Sends a ChannelData frame whose first two bytes select the channel. */
function channelFrame(channel: number, data: Buffer, pad: boolean): Buffer {
  const padded = pad ? (data.length + 3) & ~3 : data.length;
  const b = Buffer.alloc(4 + padded);
  b.writeUInt16BE(channel, 0);
  b.writeUInt16BE(data.length, 2);
  data.copy(b, 4);
  return b;
}

describe('TURN server with loopback peers allowed', { timeout: 60_000 }, () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture({ allowLoopback: true, settings: { maxAllocationsPerUser: 2 } });
  });
  after(async () => {
    await f?.close();
  });

  it('answers a Binding request over UDP and TCP with the XOR-MAPPED-ADDRESS', async () => {
    for (const transport of ['udp', 'tcp'] as const) {
      const c = await TestClient.open(transport, f.server.udpPort);
      const r = await c.request(Method.Binding, [], { fingerprint: true });
      assert.equal(r?.cls, Class.Success, transport);
      assert.deepEqual(parseXorAddress(attrValue(r!, Attr.XorMappedAddress)!, r!.transactionId), { family: 4, address: '127.0.0.1', port: c.localPort });
      assert.ok(r!.attributes.some((a) => a.type === Attr.Fingerprint), 'FINGERPRINT echoed when the request had one');
      c.close();
    }
  });

  it('challenges an unauthenticated Allocate with 401, REALM, a cookie NONCE and PASSWORD-ALGORITHMS', async () => {
    const c = await TestClient.open('udp', f.server.udpPort);
    const r = await c.request(Method.Allocate, [[Attr.RequestedTransport, UDP]]);
    assert.equal(errorOf(r), 401);
    assert.equal(attrString(r!, Attr.Realm), f.env.config.domain);
    assert.ok(attrString(r!, Attr.Nonce)!.startsWith(NONCE_COOKIE));
    assert.deepEqual(parsePasswordAlgorithms(attrValue(r!, Attr.PasswordAlgorithms)!), [1, 2]);
    assert.equal(r!.attributes.some((a) => a.type === Attr.MessageIntegrity), false);
    c.close();
  });

  it('allocates with REST API credentials: signed response, relayed and mapped addresses, default lifetime', async () => {
    const c = await TestClient.open('udp', f.server.udpPort);
    const { username, password } = restCredentials(f.secret, 'bob');
    const s = await login(c, username, password);
    const r = await signed(c, s, Method.Allocate, [[Attr.RequestedTransport, UDP]]);
    assert.equal(r?.cls, Class.Success);
    assert.equal(checkIntegrity(r!, s.key), true);
    assert.equal(attrUint32(r!, Attr.Lifetime), 600);
    const relay = parseXorAddress(attrValue(r!, Attr.XorRelayedAddress)!, r!.transactionId)!;
    assert.equal(relay.address, '127.0.0.1');
    assert.deepEqual(parseXorAddress(attrValue(r!, Attr.XorMappedAddress)!, r!.transactionId), { family: 4, address: '127.0.0.1', port: c.localPort });
    // Lifetimes: a long request is capped at the maximum, a short one raised to the default.
    assert.equal(attrUint32((await signed(c, s, Method.Refresh, [[Attr.Lifetime, uint32Value(99999)]]))!, Attr.Lifetime), 3600);
    assert.equal(attrUint32((await signed(c, s, Method.Refresh, [[Attr.Lifetime, uint32Value(5)]]))!, Attr.Lifetime), 600);
    // The allocation is in the audit log with the user and app.
    const audit = (await waitFor(async () => (await f.directory.store.listAudit({ protocol: "turn", username: "bob" })).find((e) => e.detail?.startsWith("allocate"))))!;
    assert.equal(audit.appId, 'meet');
    assert.equal(audit.ok, true);
    assert.equal((await signed(c, s, Method.Refresh, [[Attr.Lifetime, uint32Value(0)]]))?.cls, Class.Success);
    c.close();
  });

  it('answers 438 with a fresh nonce to an unknown nonce, and accepts the new one', async () => {
    const c = await TestClient.open('udp', f.server.udpPort);
    const { username, password } = restCredentials(f.secret, 'carol');
    const s = await login(c, username, password);
    const stale: Session = { ...s, nonce: `${NONCE_COOKIE}00000000` };
    const r = await signed(c, stale, Method.Allocate, [[Attr.RequestedTransport, UDP]]);
    assert.equal(errorOf(r), 438);
    const fresh = attrString(r!, Attr.Nonce)!;
    assert.notEqual(fresh, s.nonce);
    const ok = await signed(c, { ...s, nonce: fresh }, Method.Allocate, [[Attr.RequestedTransport, UDP]]);
    assert.equal(ok?.cls, Class.Success);
    await signed(c, { ...s, nonce: fresh }, Method.Refresh, [[Attr.Lifetime, uint32Value(0)]]);
    c.close();
  });

  it('refuses a wrong secret, an expired username and a non-REST username with 401', async () => {
    const before = f.server.stats().authFailures;
    const c = await TestClient.open('udp', f.server.udpPort);
    const wrong = restCredentials(generateSecret(32), 'mallory');
    const expiredName = `${Math.floor(Date.now() / 1000) - 60}:alice`;
    const cases = [
      await login(c, wrong.username, wrong.password),
      await login(c, expiredName, restPassword(f.secret, expiredName)),
      await login(c, 'alice', restPassword(f.secret, 'alice')),
    ];
    for (const s of cases) assert.equal(errorOf(await signed(c, s, Method.Allocate, [[Attr.RequestedTransport, UDP]])), 401, s.username);
    assert.equal(f.server.stats().authFailures, before + 3);
    c.close();
  });

  it('picks up a newly installed app secret through the directory', async () => {
    const secret = generateSecret(32);
    await f.directory.putApp(turnApp('talk', secret), []);
    const c = await TestClient.open('udp', f.server.udpPort);
    const { username, password } = restCredentials(secret, 'dave');
    const s = await login(c, username, password);
    const r = await signed(c, s, Method.Allocate, [[Attr.RequestedTransport, UDP]]);
    assert.equal(r?.cls, Class.Success);
    await signed(c, s, Method.Refresh, [[Attr.Lifetime, uint32Value(0)]]);
    await f.directory.deleteApp('talk');
    const again = await login(c, username, password);
    assert.equal(errorOf(await signed(c, again, Method.Allocate, [[Attr.RequestedTransport, UDP]])), 401, 'secret of a removed app no longer works');
    c.close();
  });

  it('lets the client pick SHA-256 from PASSWORD-ALGORITHMS and refuses a bid-down with 400', async () => {
    const c = await TestClient.open('udp', f.server.udpPort);
    const { username, password } = restCredentials(f.secret, 'sha');
    const s = await login(c, username, password);
    const key = longTermKey(username, s.realm, password, 'sha256');
    const attrs = (offered: number[], chosen: number): [number, Buffer][] => [
      [Attr.RequestedTransport, UDP],
      [Attr.Username, Buffer.from(username)],
      [Attr.Realm, Buffer.from(s.realm)],
      [Attr.Nonce, Buffer.from(s.nonce)],
      [Attr.PasswordAlgorithms, passwordAlgorithmsValue(offered)],
      [Attr.PasswordAlgorithm, passwordAlgorithmsValue([chosen])],
    ];
    const downgraded = await c.request(Method.Allocate, attrs([1], 1), { integrity: { key: longTermKey(username, s.realm, password), kind: 'sha1' } });
    assert.equal(errorOf(downgraded), 400);
    const r = await c.request(Method.Allocate, attrs([1, 2], 2), { integrity: { key, kind: 'sha256' }, fingerprint: true });
    assert.equal(r?.cls, Class.Success);
    assert.equal(integrityKind(r!), 'sha256');
    assert.equal(checkIntegrity(r!, key), true);
    const release = await c.request(Method.Refresh, [...attrs([1, 2], 2).slice(1), [Attr.Lifetime, uint32Value(0)]], { integrity: { key, kind: 'sha256' } });
    assert.equal(release?.cls, Class.Success);
    c.close();
  });

  it('answers 420 listing unknown comprehension-required attributes of an authenticated request', async () => {
    const c = await TestClient.open('udp', f.server.udpPort);
    const { username, password } = restCredentials(f.secret, 'erin');
    const s = await login(c, username, password);
    const r = await signed(c, s, Method.Allocate, [
      [Attr.RequestedTransport, UDP],
      [0x0030, Buffer.alloc(4)],
      [0x8077, Buffer.alloc(4)],
    ]);
    assert.equal(errorOf(r), 420);
    assert.deepEqual(attrValue(r!, Attr.UnknownAttributes), unknownAttributesValue([0x0030]));
    assert.equal(checkIntegrity(r!, s.key), true);
    c.close();
  });

  it('answers 442 to a TCP relay request and 400 without REQUESTED-TRANSPORT', async () => {
    const c = await TestClient.open('udp', f.server.udpPort);
    const { username, password } = restCredentials(f.secret, 'erin');
    const s = await login(c, username, password);
    assert.equal(errorOf(await signed(c, s, Method.Allocate, [[Attr.RequestedTransport, requestedTransportValue(6)]])), 442);
    assert.equal(errorOf(await signed(c, s, Method.Allocate, [])), 400);
    c.close();
  });

  it('answers 437 to a second Allocate on the same 5-tuple and to requests without an allocation', async () => {
    const { c, s } = await allocated(f, 'udp', 'frank');
    assert.equal(errorOf(await signed(c, s, Method.Allocate, [[Attr.RequestedTransport, UDP]])), 437);
    const other = await TestClient.open('udp', f.server.udpPort);
    const s2 = await login(other, s.username, restPassword(f.secret, s.username));
    assert.equal(errorOf(await signed(other, s2, Method.Refresh, [])), 437);
    assert.equal(errorOf(await signed(other, s2, Method.CreatePermission, (tid) => [[Attr.XorPeerAddress, peerAttr('127.0.0.1', 9, tid)]])), 437);
    await signed(c, s, Method.Refresh, [[Attr.Lifetime, uint32Value(0)]]);
    c.close();
    other.close();
  });

  it('answers a retransmitted Allocate with the same response', async () => {
    const c = await TestClient.open('udp', f.server.udpPort);
    const { username, password } = restCredentials(f.secret, 'gina');
    const s = await login(c, username, password);
    const req = encodeMessage(
      {
        method: Method.Allocate,
        cls: Class.Request,
        transactionId: Buffer.alloc(12, 9),
        attributes: [
          [Attr.RequestedTransport, UDP],
          [Attr.Username, Buffer.from(s.username)],
          [Attr.Realm, Buffer.from(s.realm)],
          [Attr.Nonce, Buffer.from(s.nonce)],
        ],
      },
      { integrity: { key: s.key, kind: 'sha1' } },
    );
    const first = await c.requestRaw(req);
    const second = await c.requestRaw(req);
    assert.equal(first?.cls, Class.Success);
    assert.deepEqual(second?.raw, first?.raw);
    await signed(c, s, Method.Refresh, [[Attr.Lifetime, uint32Value(0)]]);
    c.close();
  });

  it('answers 486 once a user holds the allocation quota, while other users still allocate', async () => {
    const a1 = await allocated(f, 'udp', 'quota');
    const a2 = await allocated(f, 'udp', 'quota');
    const c = await TestClient.open('udp', f.server.udpPort);
    const { username, password } = restCredentials(f.secret, 'quota');
    const s = await login(c, username, password);
    assert.equal(errorOf(await signed(c, s, Method.Allocate, [[Attr.RequestedTransport, UDP]])), 486);
    const other = await allocated(f, 'udp', 'someone-else');
    // Releasing one frees a slot.
    await signed(a1.c, a1.s, Method.Refresh, [[Attr.Lifetime, uint32Value(0)]]);
    assert.equal((await signed(c, s, Method.Allocate, [[Attr.RequestedTransport, UDP]]))?.cls, Class.Success);
    for (const x of [a2, other, { c, s }]) {
      await signed(x.c, x.s, Method.Refresh, [[Attr.Lifetime, uint32Value(0)]]);
      x.c.close();
    }
    a1.c.close();
  });

  it('answers 441 when another username uses an allocation', async () => {
    const { c, s } = await allocated(f, 'udp', 'henry');
    const { username, password } = restCredentials(f.secret, 'intruder');
    const s2 = await login(c, username, password);
    assert.equal(errorOf(await signed(c, s2, Method.Refresh, [])), 441);
    await signed(c, s, Method.Refresh, [[Attr.Lifetime, uint32Value(0)]]);
    c.close();
  });

  for (const transport of ['udp', 'tcp'] as const) {
    it(`relays over ${transport}: Send/Data indications, then ChannelData both ways`, async () => {
      const peer = await echoPeer();
      const { c, s, relayPort } = await allocated(f, transport, `relay-${transport}`);
      const target = { address: '127.0.0.1', port: peer.port };
      // Without a permission nothing reaches the peer.
      sendIndication(c, target, Buffer.from('too early'));
      const perm = await signed(c, s, Method.CreatePermission, (tid) => [[Attr.XorPeerAddress, peerAttr('127.0.0.1', peer.port, tid)]]);
      assert.equal(perm?.cls, Class.Success);
      sendIndication(c, target, Buffer.from('hello via send'));
      const ind = (await waitFor(() => c.dataIndications[0]))!;
      assert.equal(attrString(ind, Attr.Data), 'hello via send');
      assert.deepEqual(parseXorAddress(attrValue(ind, Attr.XorPeerAddress)!, ind.transactionId), { family: 4, ...target });
      assert.deepEqual(
        peer.got.map((b) => b.toString()),
        ['hello via send'],
        'the indication sent before the permission was dropped',
      );
      assert.equal(peer.sources[0], relayPort, 'the peer sees the relayed port as the source');
      const bind = await signed(c, s, Method.ChannelBind, (tid) => [
        [Attr.ChannelNumber, channelNumberValue(0x4001)],
        [Attr.XorPeerAddress, peerAttr('127.0.0.1', peer.port, tid)],
      ]);
      assert.equal(bind?.cls, Class.Success);
      // The same peer on another channel, or another peer on this channel, is refused.
      const clash = await signed(c, s, Method.ChannelBind, (tid) => [
        [Attr.ChannelNumber, channelNumberValue(0x4003)],
        [Attr.XorPeerAddress, peerAttr('127.0.0.1', peer.port, tid)],
      ]);
      assert.equal(errorOf(clash), 400);
      const portZero = await signed(c, s, Method.ChannelBind, (tid) => [
        [Attr.ChannelNumber, channelNumberValue(0x4005)],
        [Attr.XorPeerAddress, peerAttr('127.0.0.1', 0, tid)],
      ]);
      assert.equal(errorOf(portZero), 400, 'peer port 0');
      sendIndication(c, { address: '127.0.0.1', port: 0 }, Buffer.from('nowhere'));
      const outOfRange = await signed(c, s, Method.ChannelBind, (tid) => [
        [Attr.ChannelNumber, channelNumberValue(0x3fff)],
        [Attr.XorPeerAddress, peerAttr('127.0.0.1', peer.port + 1, tid)],
      ]);
      assert.equal(errorOf(outOfRange), 400);
      const before = f.server.stats();
      for (const text of ['one', 'three', 'seventeen bytes!!']) c.sendRaw(channelFrame(0x4001, Buffer.from(text), transport === 'tcp'));
      await waitFor(() => c.channelData.length === 3);
      assert.deepEqual(
        c.channelData.map((d) => [d.channel, d.data.toString()]),
        [
          [0x4001, 'one'],
          [0x4001, 'three'],
          [0x4001, 'seventeen bytes!!'],
        ],
      );
      const after = f.server.stats();
      assert.equal(after.packetsToPeer - before.packetsToPeer, 3);
      assert.equal(after.bytesToClient - before.bytesToClient, 3 + 5 + 17);
      // Unbound channel numbers are dropped.
      c.sendRaw(channelFrame(0x4002, Buffer.from('nobody'), transport === 'tcp'));
      await waitFor(() => f.server.stats().relayDropped > after.relayDropped);
      await signed(c, s, Method.Refresh, [[Attr.Lifetime, uint32Value(0)]]);
      c.close();
      peer.close();
    });
  }

  it('gives a UDP allocation a socket connected to its client, relays through it, and closes it on release', async () => {
    const peer = await echoPeer();
    const { c, s } = await allocated(f, 'udp', 'connected');
    // The kernel's UDP table: a socket on the server's port whose remote end is this client.
    const connected = (): boolean => udpSockets().some((x) => x.localPort === f.server.udpPort && x.remotePort === c.localPort);
    await waitFor(connected);
    const bind = await signed(c, s, Method.ChannelBind, (tid) => [
      [Attr.ChannelNumber, channelNumberValue(0x4001)],
      [Attr.XorPeerAddress, peerAttr('127.0.0.1', peer.port, tid)],
    ]);
    assert.equal(bind?.cls, Class.Success);
    c.sendRaw(channelFrame(0x4001, Buffer.from('through the connected socket'), false));
    await waitFor(() => c.channelData.length === 1);
    assert.deepEqual(c.channelData.map((d) => [d.channel, d.data.toString()]), [[0x4001, 'through the connected socket']]);
    // Other clients still reach the listener.
    const other = await TestClient.open('udp', f.server.udpPort);
    assert.equal((await other.request(Method.Binding, []))?.cls, Class.Success);
    other.close();
    assert.equal((await signed(c, s, Method.Refresh, [[Attr.Lifetime, uint32Value(0)]]))?.cls, Class.Success);
    await waitFor(() => !connected());
    c.close();
    peer.close();
  });

  it('closes a TCP connection whose allocation is released', async () => {
    const { c, s } = await allocated(f, 'tcp', 'tcp-release');
    assert.equal((await signed(c, s, Method.Refresh, [[Attr.Lifetime, uint32Value(0)]]))?.cls, Class.Success);
    await waitFor(() => c.closedByServer);
  });
});

describe('relay port range and EVEN-PORT', { timeout: 60_000 }, () => {
  let f: Fixture;
  // Below the ephemeral range (32768+) that port-0 sockets and freePort() draw from.
  const min = 20000 + 2 * Math.floor(Math.random() * 6000);
  before(async () => {
    f = await startFixture({ allowLoopback: true, settings: { relayPortMin: min, relayPortMax: min + 31 } });
  });
  after(async () => {
    await f?.close();
  });

  it('takes relay ports from the configured range, an even one with its successor reserved on request', async () => {
    const plain = await allocated(f, 'udp', 'range');
    assert.ok(plain.relayPort >= min && plain.relayPort <= min + 31, String(plain.relayPort));
    const c = await TestClient.open('udp', f.server.udpPort);
    const { username, password } = restCredentials(f.secret, 'range');
    const s = await login(c, username, password);
    const r = await signed(c, s, Method.Allocate, [
      [Attr.RequestedTransport, UDP],
      [Attr.EvenPort, Buffer.from([0x80, 0, 0, 0])],
    ]);
    assert.equal(r?.cls, Class.Success);
    const even = parseXorAddress(attrValue(r!, Attr.XorRelayedAddress)!, r!.transactionId)!.port;
    assert.equal(even % 2, 0);
    const token = attrValue(r!, Attr.ReservationToken);
    assert.equal(token?.length, 8);
    // The reserved port goes to the allocation that presents the token.
    const c2 = await TestClient.open('udp', f.server.udpPort);
    const s2 = await login(c2, username, password);
    const r2 = await signed(c2, s2, Method.Allocate, [
      [Attr.RequestedTransport, UDP],
      [Attr.ReservationToken, Buffer.from(token!)],
    ]);
    assert.equal(r2?.cls, Class.Success);
    assert.equal(parseXorAddress(attrValue(r2!, Attr.XorRelayedAddress)!, r2!.transactionId)!.port, even + 1);
    // A token works once.
    const c3 = await TestClient.open('udp', f.server.udpPort);
    const s3 = await login(c3, username, password);
    assert.equal(errorOf(await signed(c3, s3, Method.Allocate, [[Attr.RequestedTransport, UDP], [Attr.ReservationToken, Buffer.from(token!)]])), 508);
    for (const [x, y] of [
      [plain.c, plain.s],
      [c, s],
      [c2, s2],
    ] as const) {
      await signed(x, y, Method.Refresh, [[Attr.Lifetime, uint32Value(0)]]);
      x.close();
    }
    c3.close();
  });
});

describe('TURN server on IPv6', { timeout: 60_000 }, () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture({ allowLoopback: true, listen: '::1' });
  });
  after(async () => {
    await f?.close();
  });

  it('answers Binding and relays to an IPv6 peer through an IPv6 relay', async () => {
    const c = await TestClient.open('udp', f.server.udpPort, '::1');
    const b = await c.request(Method.Binding, []);
    assert.deepEqual(parseXorAddress(attrValue(b!, Attr.XorMappedAddress)!, b!.transactionId), { family: 6, address: '::1', port: c.localPort });
    const { username, password } = restCredentials(f.secret, 'six');
    const s = await login(c, username, password);
    const r = await signed(c, s, Method.Allocate, [[Attr.RequestedTransport, UDP]]);
    assert.equal(r?.cls, Class.Success);
    assert.equal(parseXorAddress(attrValue(r!, Attr.XorRelayedAddress)!, r!.transactionId)?.family, 6);
    const peer = dgram.createSocket('udp6');
    peer.on('message', (m, ri) => peer.send(m, ri.port, ri.address));
    await new Promise<void>((res) => peer.bind(0, '::1', () => res()));
    peer.unref();
    const target = { address: '::1', port: peer.address().port };
    assert.equal(errorOf(await signed(c, s, Method.CreatePermission, (tid) => [[Attr.XorPeerAddress, peerAttr('127.0.0.1', target.port, tid)]])), 443, 'IPv4 peer on an IPv6 relay');
    const perm = await signed(c, s, Method.CreatePermission, (tid) => [[Attr.XorPeerAddress, xorAddressValue({ family: 6, ...target }, tid)]]);
    assert.equal(perm?.cls, Class.Success);
    sendIndication(c, target, Buffer.from('over six'));
    const ind = (await waitFor(() => c.dataIndications[0]))!;
    assert.equal(attrString(ind, Attr.Data), 'over six');
    assert.deepEqual(parseXorAddress(attrValue(ind, Attr.XorPeerAddress)!, ind.transactionId), { family: 6, ...target });
    await signed(c, s, Method.Refresh, [[Attr.Lifetime, uint32Value(0)]]);
    peer.close();
    c.close();
  });
});

describe('listen address', { timeout: 60_000 }, () => {
  it('resolves a host name in HEARTH_LISTEN once at start', async () => {
    const f = await startFixture({ listen: 'localhost' });
    try {
      const { address } = await dns.lookup('localhost');
      const c = await TestClient.open('udp', f.server.udpPort, address);
      const r = await c.request(Method.Binding, []);
      assert.equal(r?.cls, Class.Success);
      c.close();
    } finally {
      await f.close();
    }
  });
});

describe('TURN server peer policy', { timeout: 60_000 }, () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture({ allowLoopback: false, settings: { allowedPeers: ['10.9.0.0/16'] } });
  });
  after(async () => {
    await f?.close();
  });

  async function permission(c: TestClient, s: Session, address: string): Promise<number | null> {
    const family = address.includes(':') ? 6 : 4;
    const r = await signed(c, s, Method.CreatePermission, (tid) => [[Attr.XorPeerAddress, xorAddressValue({ family, address, port: 9 }, tid)]]);
    return r?.cls === Class.Success ? 0 : errorOf(r);
  }

  it('refuses loopback, private, link-local, multicast, unspecified and own addresses with 403', async () => {
    const { c, s } = await allocated(f, 'udp', 'policy');
    for (const address of ['127.0.0.1', '127.8.8.8', '10.0.0.1', '172.16.5.5', '192.168.1.1', '169.254.1.1', '224.0.0.1', '0.0.0.0', '255.255.255.255']) {
      assert.equal(await permission(c, s, address), 403, address);
    }
    assert.equal(await permission(c, s, '10.9.3.4'), 0, 'allow-listed CIDR');
    assert.equal(await permission(c, s, '192.31.196.7'), 0, 'a public address');
    assert.equal(await permission(c, s, '2001:db8::1'), 443, 'IPv6 peer on an IPv4 relay');
    assert.ok(f.server.stats().peerDenied >= 9);
    await signed(c, s, Method.Refresh, [[Attr.Lifetime, uint32Value(0)]]);
    c.close();
  });
});

describe('bad input', { timeout: 60_000 }, () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture({ allowLoopback: true });
  });
  after(async () => {
    await f?.close();
  });

  it('never answers unauthenticated traffic with more bytes than it sent, except the 401 challenge', async () => {
    const c = await TestClient.open('udp', f.server.udpPort);
    // Binding with an unknown comprehension-required attribute: a bare 420, at most 12 bytes over the request.
    const r = await c.request(Method.Binding, [[0x0003, Buffer.alloc(4)]]);
    assert.equal(errorOf(r), 420);
    assert.ok(r!.raw.length <= 20 + 8 + 12, `${r!.raw.length}`);
    // Binding with several unknown attributes: never larger than the request.
    const many = await c.request(Method.Binding, [0x0003, 0x0004, 0x0005, 0x0007, 0x000b, 0x0040].map((t): [number, Buffer] => [t, Buffer.alloc(4)]));
    assert.equal(errorOf(many), 420);
    assert.ok(many!.raw.length <= 20 + 6 * 8);
    // An unknown method: 400 within the same bound, or nothing.
    const unknown = encodeMessage({ method: 0x0fe, cls: Class.Request, transactionId: Buffer.alloc(12, 1), attributes: [] });
    const u = await c.requestRaw(unknown, 500);
    assert.ok(u === null || u.raw.length <= unknown.length);
    // Credentials without integrity are a 400, kept small as well.
    const half = encodeMessage({ method: Method.Allocate, cls: Class.Request, transactionId: Buffer.alloc(12, 2), attributes: [[Attr.Username, Buffer.from('1:x')]] });
    const h = await c.requestRaw(half, 500);
    assert.ok(h === null || h.raw.length <= half.length);
    c.close();
  });

  it('drops random, truncated, bad-cookie, bad-CRC and oversized datagrams and keeps answering', async () => {
    const c = await TestClient.open('udp', f.server.udpPort);
    const good = encodeMessage({ method: Method.Binding, cls: Class.Request, transactionId: Buffer.alloc(12, 5), attributes: [[Attr.Software, Buffer.from('fuzz')]] }, { fingerprint: true });
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const before = f.server.stats().malformedDropped;
    for (let i = 0; i < 2000; i++) {
      let b: Buffer;
      switch (i % 6) {
        case 0:
          b = Buffer.from(Array.from({ length: rnd(200) }, () => rnd(256)));
          break;
        case 1:
          b = good.subarray(0, rnd(good.length));
          break;
        case 2:
          b = Buffer.from(good);
          b.writeUInt32BE(0xdeadbeef, 4);
          break;
        case 3:
          b = Buffer.from(good);
          b[b.length - 1]! ^= 0xff;
          break;
        case 4:
          b = Buffer.concat([good, Buffer.alloc(60000)]);
          break;
        default:
          b = Buffer.from(good);
          b[rnd(b.length)] = rnd(256);
      }
      c.sendRaw(b);
      // Pace a little so the kernel's receive buffer does not drop most of it before the server sees it.
      if (i % 20 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    await waitFor(() => f.server.stats().malformedDropped - before > 500);
    const r = await c.request(Method.Binding, []);
    assert.equal(r?.cls, Class.Success);
    c.close();
  });

  it('survives authenticated requests, indications and ChannelData with random attribute values', async () => {
    const peer = await echoPeer();
    const { c, s } = await allocated(f, 'udp', 'fuzzer');
    let seed = 99;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const types = [Attr.XorPeerAddress, Attr.ChannelNumber, Attr.Lifetime, Attr.RequestedTransport, Attr.RequestedAddressFamily, Attr.EvenPort, Attr.ReservationToken, Attr.Data, Attr.DontFragment, Attr.PasswordAlgorithm, 0x0030, 0x8077];
    const methods = [Method.Allocate, Method.Refresh, Method.CreatePermission, Method.ChannelBind, 0x00a];
    const randomValue = (type: number, tid: Buffer): Buffer => {
      // Half the peer addresses are well-formed (random port, loopback or not) to reach deeper code.
      if (type === Attr.XorPeerAddress && rnd(2)) return peerAttr(rnd(2) ? '127.0.0.1' : '10.0.0.1', rnd(3) ? peer.port : rnd(65536), tid);
      return Buffer.from(Array.from({ length: rnd(25) }, () => rnd(256)));
    };
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < 300; i++) {
      const method = methods[rnd(methods.length)]!;
      const pick = Array.from({ length: rnd(4) }, () => types[rnd(types.length)]!);
      if (method === Method.Refresh) pick.push(Attr.Lifetime);
      const attrs = (tid: Buffer): [number, Buffer][] =>
        pick.map((t): [number, Buffer] => [t, t === Attr.Lifetime ? uint32Value(rnd(2) ? 3600 : rnd(100000)) : randomValue(t, tid)]).filter(([t, v]) => !(t === Attr.Lifetime && v.readUInt32BE(0) === 0));
      pending.push(signed(c, s, method, attrs, rnd(2) === 0));
      const tid = Buffer.alloc(12, i & 0xff);
      c.sendRaw(
        encodeMessage({
          method: Method.Send,
          cls: Class.Indication,
          transactionId: tid,
          attributes: [
            [Attr.XorPeerAddress, randomValue(Attr.XorPeerAddress, tid)],
            [Attr.Data, randomValue(Attr.Data, tid)],
          ],
        }),
      );
      c.sendRaw(channelFrame(0x4000 + rnd(0x4000), Buffer.from(Array.from({ length: rnd(40) }, () => rnd(256))), false));
      if (i % 20 === 0) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
    const r = await c.request(Method.Binding, []);
    assert.equal(r?.cls, Class.Success);
    // The allocation still works: a fresh permission and a relayed Send indication.
    assert.equal((await signed(c, s, Method.CreatePermission, (tid) => [[Attr.XorPeerAddress, peerAttr('127.0.0.1', peer.port, tid)]]))?.cls, Class.Success);
    const mark = Buffer.from('still relaying');
    sendIndication(c, { address: '127.0.0.1', port: peer.port }, mark);
    await waitFor(() => c.dataIndications.some((m) => attrValue(m, Attr.Data)?.equals(mark)));
    await signed(c, s, Method.Refresh, [[Attr.Lifetime, uint32Value(0)]]);
    c.close();
    peer.close();
  });

  it('closes TCP streams that lose framing and survives garbage streams', async () => {
    for (let i = 0; i < 20; i++) {
      const s = net.connect(f.server.tcpPort, '127.0.0.1');
      s.on('error', () => {});
      await new Promise<void>((r) => s.once('connect', () => r()));
      const garbage = Buffer.from(Array.from({ length: 500 + i * 97 }, (_, k) => (k * 31 + i * 7) & 0xff));
      garbage[0] = 0x80 | i; // first frame has the top bit set: not STUN, not ChannelData
      s.write(garbage);
      await new Promise<void>((r) => s.once('close', () => r()));
    }
    // A frame that claims 64 KB and never finishes, then a half header: the server just waits, and the idle timer bounds it.
    const hang = net.connect(f.server.tcpPort, '127.0.0.1');
    hang.on('error', () => {});
    await new Promise<void>((r) => hang.once('connect', () => r()));
    hang.write(Buffer.from('0001fffc2112a442', 'hex'));
    // Valid framing with bad contents, back to back, then a real Binding on the same stream.
    const c = await TestClient.open('tcp', f.server.tcpPort);
    const badCookie = encodeMessage({ method: Method.Binding, cls: Class.Request, transactionId: Buffer.alloc(12, 1), attributes: [] });
    badCookie.writeUInt32BE(1, 4);
    const badCrc = encodeMessage({ method: Method.Binding, cls: Class.Request, transactionId: Buffer.alloc(12, 2), attributes: [] }, { fingerprint: true });
    badCrc[badCrc.length - 1]! ^= 1;
    c.sendRaw(Buffer.concat([badCookie, badCrc, channelFrame(0x4000, Buffer.from('no allocation'), true)]));
    const r = await c.request(Method.Binding, []);
    assert.equal(r?.cls, Class.Success);
    c.close();
    hang.destroy();
  });
});
