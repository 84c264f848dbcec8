import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { Directory } from '@hearth/directory';
import { waitFor } from '@hearth/testkit';
import { parseLdif, PASSWORD, run, startFixture, type Fixture } from './fixture.ts';

/** The same server over the PostgreSQL backend, where changes arrive by notification from other processes. */

let f: Fixture;
before(async () => {
  f = await startFixture({ backend: 'postgres' });
});
after(async () => {
  await f?.close();
});

it('serves the app its users and picks up another process’s changes', async () => {
  const search = (filter: string): Promise<string[]> =>
    run('ldapsearch', ['-x', '-LLL', '-H', f.url, '-D', f.appDn, '-w', f.appPassword, '-b', 'ou=users,dc=cloudron', filter, 'username']).then((r) => {
      assert.equal(r.code, 0, r.stderr);
      return [...parseLdif(r.stdout).values()].map((e) => e.get('username')![0]!).sort();
    });
  assert.deepEqual(await search('(objectclass=user)'), ['alice', 'carol', 'dave']);
  const writer = await Directory.open(f.env.config, { watch: false });
  try {
    await writer.addUser({ username: 'gina', email: 'gina@example.test', password: PASSWORD });
    await writer.addMember('staff', 'gina');
  } finally {
    await writer.close();
  }
  await waitFor(async () => (await search('(username=gina)')).length === 1, 5000);
  const bind = await run('ldapwhoami', ['-x', '-H', f.url, '-D', 'mail=gina@example.test,ou=users,dc=cloudron', '-w', PASSWORD]);
  assert.equal(bind.code, 0, bind.stderr);
});
