import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { Directory, generateSecret } from '@hearth/directory';
import { createLogger } from '@hearth/log';
import { freePort, prng, startDaemon, testEnv, waitFor, type Daemon, type TestEnv } from '@hearth/testkit';
import { workerFor } from '../src/cluster.ts';
import { Attr, attrValue, channelNumberValue, Class, encodeMessage, Method, parseXorAddress, requestedTransportValue, uint32Value, xorAddressValue } from '../src/stun-codec.ts';
import { errorOf, login, restCredentials, sendIndication, signed, TestClient, type Session } from './client.ts';
import { turnApp } from './fixture.ts';

/**
 * The daemon with HEARTH_TURN_WORKERS=2: a primary holding the UDP listener and two relay
 * processes, each owning the clients the primary routes to it. Clients are picked by the local
 * port that lands them on one worker or the other, so every check runs against both.
 */

const WORKERS = 2;
const UDP = requestedTransportValue(17);

let env: TestEnv;
let daemon: Daemon;
let port: number;
let secret: string;

before(async () => {
  port = await freePort();
  env = await testEnv({
    env: {
      HEARTH_LOG_LEVEL: 'info',
      HEARTH_TURN_PORT: String(port),
      HEARTH_TURN_TLS_PORT: String(await freePort()),
      HEARTH_TURN_ALLOW_LOOPBACK_PEERS: '1',
      HEARTH_TURN_WORKERS: String(WORKERS),
      HEARTH_TURN_USER_QUOTA: '2',
      HEARTH_TURN_TOTAL_QUOTA: '8',
    },
  });
  const directory = await Directory.open(env.config, { logger: createLogger('turn-test', 'silent') });
  secret = generateSecret(32);
  await directory.putApp(turnApp('meet', secret), []);
  await directory.close();
  daemon = await startDaemon('services/turn/src/main.ts', env.env, (o) => o.split('"msg":"ready"').length - 1 >= WORKERS + 1);
});

after(async () => {
  await daemon?.stop();
  await env?.cleanup();
});

/** A UDP client whose datagrams the primary routes to worker `w`. */
async function clientOn(w: number): Promise<TestClient> {
  for (;;) {
    const c = await TestClient.open('udp', port);
    if (workerFor('127.0.0.1', c.localPort, WORKERS) === w) return c;
    c.close();
  }
}

async function allocate(c: TestClient, user: string, extra: [number, Buffer][] = []): Promise<{ s: Session; r: Awaited<ReturnType<typeof signed>> }> {
  const { username, password } = restCredentials(secret, user);
  const s = await login(c, username, password);
  return { s, r: await signed(c, s, Method.Allocate, [[Attr.RequestedTransport, UDP], ...extra]) };
}

const release = (c: TestClient, s: Session): Promise<unknown> => signed(c, s, Method.Refresh, [[Attr.Lifetime, uint32Value(0)]]);

/** A peer on loopback that records what it receives (permissions go by address: another loopback address is another peer). */
async function peer(address = '127.0.0.1'): Promise<{ socket: dgram.Socket; port: number; got: Buffer[] }> {
  const socket = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  socket.on('message', (m) => got.push(m));
  await new Promise<void>((r) => socket.bind(0, address, () => r()));
  socket.unref();
  return { socket, port: socket.address().port, got };
}

const frame = (channel: number, data: Buffer): Buffer => Buffer.concat([channelNumberValue(channel).subarray(0, 2), Buffer.from([data.length >> 8, data.length & 0xff]), data]);

describe('HEARTH_TURN_WORKERS=2', { timeout: 120_000 }, () => {
  it('relays both ways through allocations owned by each worker, and refuses unpermitted and non-global peers in each', async () => {
    const p = await peer();
    const stranger = await peer('127.0.0.36');
    for (let w = 0; w < WORKERS; w++) {
      const c = await clientOn(w);
      const { s, r } = await allocate(c, `relay-${w}`);
      assert.equal(r?.cls, Class.Success, `worker ${w}: allocate error ${errorOf(r)}`);
      const relayPort = parseXorAddress(attrValue(r!, Attr.XorRelayedAddress)!, r!.transactionId)!.port;
      // a peer outside the private ranges' exceptions is refused whichever worker asks
      assert.equal(errorOf(await signed(c, s, Method.CreatePermission, (tid) => [[Attr.XorPeerAddress, xorAddressValue({ family: 4, address: '10.0.0.1', port: 9 }, tid)]])), 403, `worker ${w}`);
      const bound = await signed(c, s, Method.ChannelBind, (tid) => [
        [Attr.ChannelNumber, channelNumberValue(0x4000 + w)],
        [Attr.XorPeerAddress, xorAddressValue({ family: 4, address: '127.0.0.1', port: p.port }, tid)],
      ]);
      assert.equal(bound?.cls, Class.Success, `worker ${w}: channel bind error ${errorOf(bound)}`);
      const out = Buffer.from(`to the peer through worker ${w}`);
      c.sendRaw(frame(0x4000 + w, out));
      await waitFor(() => p.got.some((m) => m.equals(out)), 10_000);
      const back = Buffer.from(`back through worker ${w}`);
      p.socket.send(back, relayPort, '127.0.0.1');
      await waitFor(() => c.channelData.some((d) => d.channel === 0x4000 + w && d.data.equals(back)), 10_000);
      // no permission for the stranger: what it sends to the relay never reaches the client
      const unasked = Buffer.from(`from a stranger to worker ${w}`);
      stranger.socket.send(unasked, relayPort, '127.0.0.1');
      // a marker from the permitted peer after it: once the marker is in, the stranger's datagram had its chance
      const marker = Buffer.from(`marker ${w}`);
      p.socket.send(marker, relayPort, '127.0.0.1');
      await waitFor(() => c.channelData.some((d) => d.data.equals(marker)), 10_000);
      assert.ok(!c.channelData.some((d) => d.data.equals(unasked)) && c.dataIndications.length === 0, `worker ${w} relayed a peer without permission`);
      await release(c, s);
      c.close();
    }
    p.socket.close();
    stranger.socket.close();
  });

  it('holds the per-user quota over both workers: a third allocation is refused on either, a release frees a slot', async () => {
    const first = await clientOn(0);
    const second = await clientOn(1);
    const a = await allocate(first, 'quota');
    const b = await allocate(second, 'quota');
    assert.equal(a.r?.cls, Class.Success);
    assert.equal(b.r?.cls, Class.Success);
    for (let w = 0; w < WORKERS; w++) {
      const c = await clientOn(w);
      assert.equal(errorOf((await allocate(c, 'quota')).r), 486, `third allocation on worker ${w}`);
      c.close();
    }
    await release(first, a.s);
    const again = await clientOn(1);
    // the release reaches the primary over IPC from worker 0, the next acquire from worker 1: the first try may still be ahead of it
    let third = await allocate(again, 'quota');
    for (let i = 0; i < 20 && errorOf(third.r) === 486; i++) third = { s: third.s, r: await signed(again, third.s, Method.Allocate, [[Attr.RequestedTransport, UDP]]) };
    assert.equal(third.r?.cls, Class.Success, `after a release on worker 0, worker 1 allocates: error ${errorOf(third.r)}`);
    await release(second, b.s);
    await release(again, third.s);
    for (const c of [first, second, again]) c.close();
  });

  it('holds the total quota over both workers (508)', async () => {
    const held: { c: TestClient; s: Session }[] = [];
    // 8 in all: four users with two each, alternating workers
    for (let i = 0; i < 8; i++) {
      const c = await clientOn(i % WORKERS);
      const { s, r } = await allocate(c, `total-${i >> 1}`);
      assert.equal(r?.cls, Class.Success, `allocation ${i}: error ${errorOf(r)}`);
      held.push({ c, s });
    }
    for (let w = 0; w < WORKERS; w++) {
      const c = await clientOn(w);
      assert.equal(errorOf((await allocate(c, `total-extra-${w}`)).r), 508, `ninth allocation on worker ${w}`);
      c.close();
    }
    for (const { c, s } of held) {
      await release(c, s);
      c.close();
    }
  });

  it('gives the port an EVEN-PORT reservation kept to a client whose token reaches the other worker', async () => {
    const c0 = await clientOn(0);
    const even = await allocate(c0, 'even', [[Attr.EvenPort, Buffer.from([0x80, 0, 0, 0])]]);
    assert.equal(even.r?.cls, Class.Success, `error ${errorOf(even.r)}`);
    const evenPort = parseXorAddress(attrValue(even.r!, Attr.XorRelayedAddress)!, even.r!.transactionId)!.port;
    const token = attrValue(even.r!, Attr.ReservationToken)!;
    const c1 = await clientOn(1);
    const odd = await allocate(c1, 'even', [[Attr.ReservationToken, Buffer.from(token)]]);
    assert.equal(odd.r?.cls, Class.Success, `error ${errorOf(odd.r)}`);
    assert.equal(parseXorAddress(attrValue(odd.r!, Attr.XorRelayedAddress)!, odd.r!.transactionId)!.port, evenPort + 1);
    // once only
    const c2 = await clientOn(1);
    assert.equal(errorOf((await allocate(c2, 'other', [[Attr.ReservationToken, Buffer.from(token)]])).r), 508);
    await release(c0, even.s);
    await release(c1, odd.s);
    for (const c of [c0, c1, c2]) c.close();
  });

  it('survives random datagrams from clients of both workers and keeps relaying (fuzz, seed 20)', async () => {
    const rnd = prng(20);
    const int = (n: number): number => Math.floor(rnd() * n);
    const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));
    const clients = await Promise.all(Array.from({ length: 6 }, (_, i) => clientOn(i % WORKERS)));
    // one allocation per worker, so fuzz reaches connected sockets too
    const owners = [clients[0]!, clients[1]!];
    const sessions = await Promise.all(owners.map((c, i) => allocate(c, `fuzz-${i}`)));
    for (const x of sessions) assert.equal(x.r?.cls, Class.Success);
    for (let i = 0; i < 1500; i++) {
      const c = clients[int(clients.length)]!;
      const kind = int(4);
      if (kind === 0) c.sendRaw(bytes(int(120)));
      else if (kind === 1) c.sendRaw(frame(0x4000 + int(0x4000), bytes(int(60))));
      else {
        // STUN-shaped: a real header with random method, class and attributes
        const tid = bytes(12);
        const attrs: [number, Buffer][] = Array.from({ length: int(4) }, () => [[Attr.ReservationToken, Attr.XorPeerAddress, Attr.ChannelNumber, Attr.Lifetime, Attr.Username, Attr.Data, 0x8077][int(7)]!, bytes(int(24))]);
        const raw = encodeMessage({ method: [Method.Allocate, Method.Refresh, Method.CreatePermission, Method.ChannelBind, Method.Send, Method.Binding, 0x00a][int(7)]!, cls: [Class.Request, Class.Indication][int(2)]!, transactionId: tid, attributes: attrs });
        if (kind === 3 && raw.length > 20) {
          const at = 20 + int(raw.length - 20);
          raw[at] = raw[at]! ^ (1 << int(8));
        }
        c.sendRaw(raw);
      }
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 20));
    }
    // every client, whichever worker it lands on, is still answered
    for (const c of clients) assert.equal((await c.request(Method.Binding, [], {}, 5000))?.cls, Class.Success);
    // and both allocations still relay
    const p = await peer();
    for (let w = 0; w < WORKERS; w++) {
      const c = owners[w]!;
      const s = sessions[w]!.s;
      assert.equal((await signed(c, s, Method.CreatePermission, (tid) => [[Attr.XorPeerAddress, xorAddressValue({ family: 4, address: '127.0.0.1', port: p.port }, tid)]]))?.cls, Class.Success);
      const mark = Buffer.from(`still relaying through worker ${w}`);
      sendIndication(c, { address: '127.0.0.1', port: p.port }, mark);
      await waitFor(() => p.got.some((m) => m.equals(mark)), 10_000);
      await release(c, s);
    }
    p.socket.close();
    for (const c of clients) c.close();
  });
});
