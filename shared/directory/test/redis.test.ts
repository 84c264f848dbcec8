import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { Redis } from 'ioredis';
import { Directory, RedisCounters } from '@hearth/directory';
import { testEnv, waitFor } from '@hearth/testkit';

const REDIS_URL = process.env.HEARTH_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';

it('with HEARTH_REDIS_URL, throttling counters live in Redis and changes are broadcast through it', async () => {
  const t = await testEnv({ backend: 'postgres', env: { HEARTH_REDIS_URL: REDIS_URL } });
  const a = await Directory.open(t.config, { watch: true, throttle: { perUser: 2, perAddress: 100, windowSeconds: 30 } });
  const b = await Directory.open(t.config, { watch: true, throttle: { perUser: 2, perAddress: 100, windowSeconds: 30 } });
  const redis = new Redis(REDIS_URL);
  const name = `r${randomBytes(4).toString('hex')}`;
  let account = '';
  try {
    assert.ok(a.counters instanceof RedisCounters);
    const user = await a.addUser({ username: name, email: `${name}@example.test`, password: 'redis password' });
    account = `user:${user.id}`;
    await waitFor(() => b.findUser(name), 1000);
    await a.authenticate({ login: name, password: 'bad', protocol: 'ldap', remote: '127.0.0.2' });
    await a.authenticate({ login: name, password: 'bad', protocol: 'imap', remote: '127.0.0.2' });
    assert.equal(await redis.get(`hearth:login-failures:u:${account}`), '2');
    // The other replica sees the same counter and refuses even the right password.
    assert.deepEqual(await b.authenticate({ login: name, password: 'redis password', protocol: 'smtp' }), { ok: false, reason: 'throttled' });
  } finally {
    await redis.del(`hearth:login-failures:u:${account}`, 'hearth:login-failures:a:127.0.0.2', `hearth:login-failures:p:${account}|127.0.0.2`);
    redis.disconnect();
    await a.close();
    await b.close();
    await t.cleanup();
  }
});
