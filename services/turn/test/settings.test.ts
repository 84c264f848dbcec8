import assert from 'node:assert/strict';
import os from 'node:os';
import { describe, it } from 'node:test';
import { ConfigError } from '@hearth/config';
import { parseRestUsername, restPassword } from '../src/auth.ts';
import { PeerPolicy } from '../src/peers.ts';
import { loadTurnSettings } from '../src/settings.ts';

describe('peer policy', () => {
  const strict = new PeerPolicy({ allowLoopback: false, allowedCidrs: [], ownAddresses: ['198.51.100.7'] });

  it('denies loopback, private, link-local, multicast, unspecified and own addresses, IPv4 and IPv6', () => {
    for (const a of ['127.0.0.1', '10.1.2.3', '172.31.255.255', '192.168.0.1', '169.254.9.9', '239.1.1.1', '0.0.0.0', '198.51.100.7', '::1', '::', 'fc00::1', 'fdff::2', 'fe80::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', 'not-an-ip']) {
      assert.equal(strict.allows(a), false, a);
    }
    for (const a of ['192.31.196.5', '172.32.0.1', '2606:4700::1', '8.8.8.8', '64:ff9b::8.8.8.8', '::ffff:8.8.8.8']) assert.equal(strict.allows(a), true, a);
    // IPv4 inside IPv6 is judged as IPv4, in dotted or hex form
    for (const a of ['64:ff9b::10.0.0.1', '64:ff9b::a00:1', '::ffff:a9fe:a9fe', '2002:a00:1::1', '64:ff9b::198.51.100.7']) assert.equal(strict.allows(a), false, a);
  });

  it('lets loopback through only when asked, and allow-listed CIDRs always', () => {
    const loose = new PeerPolicy({ allowLoopback: true, allowedCidrs: ['10.20.0.0/16', 'fd00::/8'], ownAddresses: [] });
    assert.equal(loose.allows('127.0.0.1'), true);
    assert.equal(loose.allows('::1'), true);
    assert.equal(loose.allows('10.20.3.4'), true);
    assert.equal(loose.allows('10.21.3.4'), false);
    assert.equal(loose.allows('fd12::1'), true);
    assert.equal(loose.allows('fc00::1'), false);
  });
});

describe('REST API credentials', () => {
  it('splits "<expiry>[:<user>]" and derives the coturn-compatible password', () => {
    assert.deepEqual(parseRestUsername('1700000000:alice'), { expiry: 1700000000, user: 'alice' });
    assert.deepEqual(parseRestUsername('1700000000'), { expiry: 1700000000, user: null });
    assert.deepEqual(parseRestUsername('1700000000:a:b'), { expiry: 1700000000, user: 'a:b' });
    assert.equal(parseRestUsername('alice'), null);
    assert.equal(parseRestUsername('-5:alice'), null);
    // base64(HMAC-SHA1("secret", "1700000000:alice")), as `openssl dgst -sha1 -hmac secret -binary | base64` computes it.
    assert.equal(restPassword('secret', '1700000000:alice'), 'd8soP47RbdIKLDUOpnJPVQyq5Ts=');
  });
});

describe('settings', () => {
  it('has defaults and reads the relay range, allow-list and quotas', () => {
    const d = loadTurnSettings({});
    assert.equal(d.relayPortMin, null);
    assert.equal(d.maxAllocationsPerUser, 10);
    assert.equal(d.maxLifetime, 3600);
    assert.equal(d.workers, os.availableParallelism());
    assert.equal(loadTurnSettings({ HEARTH_TURN_WORKERS: '1' }).workers, 1);
    assert.equal(loadTurnSettings({ HEARTH_TURN_WORKERS: '' }).workers, os.availableParallelism());
    const s = loadTurnSettings({ HEARTH_TURN_RELAY_PORT_MIN: '40000', HEARTH_TURN_RELAY_PORT_MAX: '40100', HEARTH_TURN_ALLOWED_PEERS: '10.0.0.0/8, fd00::/8', HEARTH_TURN_USER_QUOTA: '3' });
    assert.deepEqual([s.relayPortMin, s.relayPortMax, s.allowedPeers, s.maxAllocationsPerUser], [40000, 40100, ['10.0.0.0/8', 'fd00::/8'], 3]);
  });

  it('rejects bad values with the setting name', () => {
    const bad: Record<string, string>[] = [
      { HEARTH_TURN_RELAY_PORT_MIN: '70000', HEARTH_TURN_RELAY_PORT_MAX: '70001' },
      { HEARTH_TURN_RELAY_PORT_MIN: '5000' },
      { HEARTH_TURN_RELAY_PORT_MIN: '6000', HEARTH_TURN_RELAY_PORT_MAX: '5000' },
      { HEARTH_TURN_ALLOWED_PEERS: '10.0.0.0/33' },
      { HEARTH_TURN_ALLOWED_PEERS: 'example.com' },
      { HEARTH_TURN_USER_QUOTA: '0' },
      { HEARTH_TURN_WORKERS: '0' },
      { HEARTH_TURN_WORKERS: 'two' },
      { HEARTH_TURN_WORKERS: '65' },
    ];
    for (const env of bad) assert.throws(() => loadTurnSettings(env), (e: unknown) => e instanceof ConfigError && /HEARTH_TURN_/.test(e.message), JSON.stringify(env));
  });
});
