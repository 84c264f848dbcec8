import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Attr, Class, Method, requestedTransportValue, uint32Value, xorAddressValue } from '../src/stun-codec.ts';
import { errorOf, login, restCredentials, signed, TestClient, type Session } from './client.ts';
import { startFixture, type Fixture } from './fixture.ts';

/**
 * Issue 12: CreatePermission over raw STUN for addresses in every IANA special-purpose block whose
 * "Globally Reachable" is False (IPv4 and IPv6 registries), and their IPv4-carrying IPv6 forms.
 * The first and last addresses of each block are tried, and globally reachable neighbours must
 * still be granted so the test can fail both ways. No packet is sent to any of these addresses.
 */

const DENIED_V4 = [
  ['0.0.0.1', '0.255.255.255'], // "this network"
  ['10.0.0.1', '10.255.255.254'],
  ['100.64.0.1', '100.100.100.200', '100.127.255.254'], // shared address space, cloud metadata
  ['127.0.0.1', '127.255.255.254'],
  ['169.254.0.1', '169.254.169.254'],
  ['172.16.0.1', '172.31.255.254'],
  ['192.0.0.1', '192.0.0.8', '192.0.0.9', '192.0.0.170', '192.0.0.171', '192.0.0.255'], // IETF protocol assignments
  ['192.0.2.1', '192.0.2.254'],
  ['192.88.99.1'], // deprecated 6to4 relay anycast
  ['192.168.0.1', '192.168.255.254'],
  ['198.18.0.1', '198.19.255.254'], // benchmarking
  ['198.51.100.1', '198.51.100.254'],
  ['203.0.113.1', '203.0.113.254'],
  ['224.0.0.1', '239.255.255.250'], // multicast
  ['240.0.0.1', '255.255.255.254', '255.255.255.255'],
].flat();

// Globally reachable: ordinary unicast next to the denied blocks, and registry entries marked True.
const GRANTED_V4 = ['1.1.1.1', '100.63.255.254', '100.128.0.1', '172.32.0.1', '192.0.3.1', '192.31.196.1', '192.52.193.1', '192.175.48.1', '198.20.0.1', '223.255.255.254'];

const DENIED_V6 = [
  '::', '::1', '::2', // unspecified, loopback, IPv4-compatible
  '::ffff:10.0.0.1', '::ffff:100.100.100.200', '::ffff:127.0.0.1', '::ffff:198.18.0.1', // IPv4-mapped
  '64:ff9b::a00:1', '64:ff9b::6464:64c8', '64:ff9b::c000:a', '64:ff9b::a9fe:a9fe', // NAT64 of 10.0.0.1, 100.100.100.200, 192.0.0.10, 169.254.169.254
  '64:ff9b:1::1', '64:ff9b:1:ffff:ffff:ffff:ffff:ffff', // local-use NAT64
  '100::1', '100::ffff:ffff:ffff:ffff', '100:0:0:1::1', // discard-only, dummy
  '2001::1', '2001:0:4136:e378:8000:63bf:3fff:fdd2', '2001:1::1', '2001:2::1', '2001:10::1', '2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff', // 2001::/23, Teredo
  '2001:db8::1', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff',
  '2002:a00:1::1', '2002:6464:64c8::1', '2002:c0a8:101::1', // 6to4 of 10.0.0.1, 100.100.100.200, 192.168.1.1
  '3fff::1', '3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff', // documentation
  '5f00::1', '5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff', // SRv6 SIDs
  'fc00::1', 'fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
  'fe80::1', 'febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
  'fec0::1',
  'ff02::1', 'ff0e::1',
];

const GRANTED_V6 = ['2606:4700:4700::1111', '2001:200::1', '64:ff9b::808:808', '2002:808:808::1', '::ffff:8.8.8.8', '3fff:1000::1', '2003::1'];

async function openSession(f: Fixture, host: string): Promise<{ c: TestClient; s: Session }> {
  const c = await TestClient.open('udp', f.server.udpPort, host);
  const { username, password } = restCredentials(f.secret, 'special');
  const s = await login(c, username, password);
  const r = await signed(c, s, Method.Allocate, [[Attr.RequestedTransport, requestedTransportValue(17)]]);
  assert.equal(r?.cls, Class.Success, `allocate: ${errorOf(r)}`);
  return { c, s };
}

async function permission(c: TestClient, s: Session, address: string): Promise<number | null> {
  const family = address.includes(':') ? 6 : 4;
  const r = await signed(c, s, Method.CreatePermission, (tid) => [[Attr.XorPeerAddress, xorAddressValue({ family, address, port: 9 }, tid)]]);
  return r?.cls === Class.Success ? 0 : errorOf(r);
}

for (const [family, host, denied, granted] of [
  ['IPv4', '127.0.0.1', DENIED_V4, GRANTED_V4],
  ['IPv6', '::1', DENIED_V6, GRANTED_V6],
] as const) {
  describe(`TURN peers on an ${family} relay: non-global special-purpose addresses are refused`, { timeout: 60_000 }, () => {
    let f: Fixture;
    before(async () => {
      f = await startFixture({ allowLoopback: false, listen: host });
    });
    after(async () => {
      await f?.close();
    });

    it('answers 403 for every denied block and grants globally reachable neighbours', async () => {
      const { c, s } = await openSession(f, host);
      try {
        for (const address of denied) assert.equal(await permission(c, s, address), 403, address);
        for (const address of granted) assert.equal(await permission(c, s, address), 0, address);
      } finally {
        await signed(c, s, Method.Refresh, [[Attr.Lifetime, uint32Value(0)]]);
        c.close();
      }
    });
  });
}
