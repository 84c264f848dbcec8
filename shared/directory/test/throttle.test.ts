import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '@hearth/config';
import { Directory } from '@hearth/directory';
import { testEnv, type TestEnv } from '@hearth/testkit';

describe('login throttle settings', () => {
  let t: TestEnv;
  before(async () => {
    t = await testEnv({ env: { HEARTH_LOGIN_MAX_FAILURES_PER_USER: '2', HEARTH_LOGIN_KNOWN_ADDRESS_DAYS: '0' } });
  });
  after(() => t.cleanup());

  it('are read from HEARTH_LOGIN_*, and a bad value is refused by name', () => {
    assert.deepEqual(t.config.loginThrottle, { perUser: 2, perAddress: 50, windowSeconds: 900, knownAddressSeconds: 0 });
    assert.equal(loadConfig({}).loginThrottle.knownAddressSeconds, 30 * 86400);
    assert.throws(() => loadConfig({ HEARTH_LOGIN_KNOWN_ADDRESS_DAYS: '-1' }), (e: Error) => e instanceof ConfigError && /HEARTH_LOGIN_KNOWN_ADDRESS_DAYS/.test(e.message));
    assert.throws(() => loadConfig({ HEARTH_LOGIN_MAX_FAILURES_PER_USER: 'ten' }), /HEARTH_LOGIN_MAX_FAILURES_PER_USER/);
  });

  it('with HEARTH_LOGIN_KNOWN_ADDRESS_DAYS=0 failures anywhere lock the account out everywhere (the strict choice)', async () => {
    const d = await Directory.open(t.config);
    try {
      await d.addUser({ username: 'gina', email: 'gina@example.test', password: 'right password' });
      assert.equal((await d.authenticate({ login: 'gina', password: 'right password', protocol: 'imap', remote: '127.0.0.1' })).ok, true);
      for (let i = 0; i < 2; i++) await d.authenticate({ login: 'gina', password: 'nope', protocol: 'ldap', remote: '127.0.0.21' });
      assert.deepEqual(await d.authenticate({ login: 'gina', password: 'right password', protocol: 'imap', remote: '127.0.0.1' }), { ok: false, reason: 'throttled' });
    } finally {
      await d.close();
    }
  });
});
