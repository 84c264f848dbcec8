import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { Allocation, CHANNEL_LIFETIME_MS, newCounters, openRelaySocket, PERMISSION_LIFETIME_MS, type ClientLink } from '../src/allocations.ts';

/** A client link that records what the allocation sends. */
class RecordingLink implements ClientLink {
  readonly transport = 'udp' as const;
  readonly address = '127.0.0.1';
  readonly port = 1;
  readonly messages: Buffer[] = [];
  readonly channelData: [number, string][] = [];
  send(buf: Buffer): void {
    this.messages.push(buf);
  }
  sendChannelData(channel: number, data: Buffer): void {
    this.channelData.push([channel, data.toString()]);
  }
}

describe('allocation rules', () => {
  let relay: dgram.Socket;
  let a: Allocation;
  const counters = newCounters();
  before(async () => {
    const r = await openRelaySocket({ bindAddress: '127.0.0.1', advertisedAddress: '127.0.0.1', portMin: null, portMax: null });
    assert.ok(r);
    relay = r.socket;
    a = new Allocation(new RecordingLink(), relay, { family: 4, address: '127.0.0.1', port: r.port }, { username: 'u', user: 'u', appId: 'app', key: Buffer.alloc(16), integrity: 'sha1' }, 600, counters);
  });
  after(() => a.close());

  it('binds channels one-to-one with peers and refreshes them', () => {
    assert.equal(a.bindChannel(0x4000, { family: 4, address: '192.0.2.1', port: 5000 }), null);
    assert.equal(a.bindChannel(0x4000, { family: 4, address: '192.0.2.1', port: 5000 }), null, 'refresh');
    assert.equal(a.bindChannel(0x4000, { family: 4, address: '192.0.2.1', port: 5001 }), 'channel bound to another peer');
    assert.equal(a.bindChannel(0x4001, { family: 4, address: '192.0.2.1', port: 5000 }), 'peer bound to another channel');
    assert.ok(a.permissions.has('192.0.2.1'), 'a channel binding installs a permission for the peer address');
  });

  it('expires permissions after 300 s and channels after 600 s, keeping the channel reserved 5 minutes more', () => {
    const now = Date.now();
    a.installPermission('198.51.100.9');
    a.sweep(now + PERMISSION_LIFETIME_MS + 1000);
    assert.equal(a.permissions.has('198.51.100.9'), false, 'plain permission expired');
    assert.equal(a.permissions.has('192.0.2.1'), true, 'kept while its channel is bound');
    a.sweep(now + CHANNEL_LIFETIME_MS + 1000);
    assert.equal(a.channels.has(0x4000), true, 'expired but not yet reusable');
    a.sweep(now + CHANNEL_LIFETIME_MS + 301_000);
    assert.equal(a.channels.has(0x4000), false);
    assert.equal(a.permissions.has('192.0.2.1'), false);
  });

  it('drops ChannelData for unknown channels and frames shorter than their length', () => {
    const before = counters.relayDropped;
    a.fromClientChannel(Buffer.from('4fff0000', 'hex'));
    a.fromClientChannel(Buffer.from('40000010abcd', 'hex'));
    assert.equal(counters.relayDropped - before, 2);
    assert.equal(counters.packetsToPeer, 0);
  });

  it('finds no relay port when the whole range is taken', async () => {
    const r = await openRelaySocket({ bindAddress: '127.0.0.1', advertisedAddress: '127.0.0.1', portMin: relay.address().port, portMax: relay.address().port });
    assert.equal(r, null);
  });
});
