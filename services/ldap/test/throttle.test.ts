import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { PASSWORD, run, startFixture, type Fixture } from './fixture.ts';

/** Failed binds count toward the directory's shared throttle, and the lock-out answers like a wrong password. */

let f: Fixture;
before(async () => {
  f = await startFixture({ throttle: { perUser: 3, perAddress: 1000, windowSeconds: 60 } });
});
after(async () => {
  await f?.close();
});

const whoami = (dn: string, pw: string): Promise<number> => run('ldapwhoami', ['-x', '-H', f.url, '-D', dn, '-w', pw]).then((r) => r.code);

it('locks an account out after repeated failures, whatever DN spelling was used', async () => {
  assert.equal(await whoami('cn=carol,ou=users,dc=cloudron', PASSWORD), 0);
  assert.equal(await whoami('cn=alice,ou=users,dc=cloudron', 'wrong 1'), 49);
  assert.equal(await whoami('mail=alice@example.test,ou=users,dc=cloudron', 'wrong 2'), 49);
  assert.equal(await whoami(`cn=${f.users.alice.id},ou=users,dc=cloudron`, 'wrong 3'), 49);
  assert.equal(await whoami('cn=alice,ou=users,dc=cloudron', PASSWORD), 49, 'locked out despite the right password');
  assert.equal(await whoami('cn=carol,ou=users,dc=cloudron', PASSWORD), 0, 'other accounts are unaffected');
  const events = await f.directory.store.listAudit({ username: 'alice', protocol: 'ldap', limit: 10 });
  assert.equal(events[0]?.detail, 'throttled');
});
