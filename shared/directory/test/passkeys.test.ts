import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Directory, type Passkey } from '@hearth/directory';
import { testEnv } from '@hearth/testkit';

/** Passkey storage (schema version 3) behaves the same on both backends. */
for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`passkeys on ${backend}`, () => {
    it('stores, finds, counts uses, refuses a counter that does not grow, deletes, and goes with its user', async () => {
      const t = await testEnv({ backend });
      const d = await Directory.open(t.config);
      try {
        const alice = await d.addUser({ username: 'alice', email: 'alice@example.test', password: 'correct horse battery' });
        const bob = await d.addUser({ username: 'bob', email: 'bob@example.test', password: 'correct horse battery' });
        const seq = await d.store.changeSeq();
        const key: Passkey = { id: 'cred-1', userId: alice.id, publicKey: 'pk', counter: 0, transports: ['internal'], name: 'Laptop', createdAt: '2026-01-01T00:00:00Z', lastUsedAt: null };
        await d.store.addPasskey(key);
        await d.store.addPasskey({ ...key, id: 'cred-2', name: 'Phone', createdAt: '2026-01-02T00:00:00Z' });
        await d.store.addPasskey({ ...key, id: 'cred-3', userId: bob.id });
        assert.equal(await d.store.changeSeq(), seq, 'passkey writes do not reload every daemon');
        await assert.rejects(d.store.addPasskey(key), /already|exists|conflict|UNIQUE/i);
        assert.deepEqual((await d.store.passkeysOf(alice.id)).map((p) => p.name), ['Laptop', 'Phone']);
        assert.deepEqual(await d.store.findPasskey('cred-1'), key);
        assert.equal(await d.store.findPasskey('nope'), null);

        assert.equal(await d.store.usePasskey('cred-1', 5, '2026-01-03T00:00:00Z'), true);
        assert.equal(await d.store.usePasskey('cred-1', 5, '2026-01-04T00:00:00Z'), false, 'the same counter again is a replay or a clone');
        assert.equal(await d.store.usePasskey('cred-1', 4, '2026-01-04T00:00:00Z'), false);
        assert.equal((await d.store.findPasskey('cred-1'))!.lastUsedAt, '2026-01-03T00:00:00Z');
        assert.equal(await d.store.usePasskey('cred-2', 0, '2026-01-03T00:00:00Z'), true, 'authenticators without a counter stay at 0');

        await assert.rejects(d.store.deletePasskey(bob.id, 'cred-1'), /no such passkey/);
        await d.store.deletePasskey(alice.id, 'cred-1');
        assert.deepEqual((await d.store.passkeysOf(alice.id)).map((p) => p.id), ['cred-2']);
        await d.deleteUser('alice');
        assert.equal(await d.store.findPasskey('cred-2'), null, 'deleted with the user');
        await d.store.deletePasskeysOf(bob.id);
        assert.deepEqual(await d.store.passkeysOf(bob.id), []);
      } finally {
        await d.close();
        await t.cleanup();
      }
    });
  });
}
