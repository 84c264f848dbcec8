import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Attr, Class, Method, requestedTransportValue, uint32Value } from '../src/stun-codec.ts';
import { errorOf, login, restCredentials, signed, TestClient } from './client.ts';
import { allocated, startFixture, type Fixture } from './fixture.ts';

/** Two TURN servers (two replicas' worth: own sockets, own Redis connection) counting one user's allocations in one Redis. */
let a: Fixture;
let b: Fixture;

before(async () => {
  const shared = { env: { HEARTH_REDIS_URL: 'redis://127.0.0.1:6379' }, settings: { maxAllocationsPerUser: 2 } };
  a = await startFixture(shared);
  b = await startFixture(shared);
});
after(async () => {
  await a.close();
  await b.close();
});

describe('TURN user quota with HEARTH_REDIS_URL', () => {
  it('holds across servers: the third allocation is refused with 486 on the other one, and a release frees it', async () => {
    // a user of its own, so earlier runs' slots in the same Redis do not count
    const user = `quota-${randomBytes(4).toString('hex')}`;
    const first = await allocated(a, 'udp', user);
    const second = await allocated(b, 'udp', user);
    const c = await TestClient.open('udp', b.server.udpPort);
    const { username, password } = restCredentials(b.secret, user);
    const s = await login(c, username, password);
    const allocate = () => signed(c, s, Method.Allocate, [[Attr.RequestedTransport, requestedTransportValue(17)]]);
    assert.equal(errorOf(await allocate()), 486, 'third allocation, second server');
    await signed(first.c, first.s, Method.Refresh, [[Attr.Lifetime, uint32Value(0)]]);
    // the release is one Redis round trip behind the Refresh reply
    let again = await allocate();
    for (let i = 0; i < 20 && errorOf(again) === 486; i++) again = await allocate();
    assert.equal(again?.cls, Class.Success);
    for (const x of [second, { c, s }]) {
      await signed(x.c, x.s, Method.Refresh, [[Attr.Lifetime, uint32Value(0)]]);
      x.c.close();
    }
    first.c.close();
  });
});
