import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { auditInstant, Directory, DirectoryError, LATEST_SCHEMA_VERSION, ValidationError, totpCode, type App, type AuditQuery } from '@hearth/directory';
import { testEnv, waitFor, type TestEnv } from '@hearth/testkit';

/** The same suite against both backends: the store interface is the contract. */
for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`directory on ${backend}`, () => {
    let t: TestEnv;
    let d: Directory;
    before(async () => {
      t = await testEnv({ backend, env: { HEARTH_LOGIN_MAX_FAILURES_PER_USER: '3' } });
      d = await Directory.open(t.config, { watch: true, throttle: { perUser: 3, perAddress: 1000, windowSeconds: 60 } });
    });
    after(async () => {
      await d.close();
      await t.cleanup();
    });

    it('adds users with argon2id hashes and finds them by username, email and id', async () => {
      const u = await d.addUser({ username: 'alice', email: 'Alice@Example.test', password: 'correct horse', displayName: 'Alice Liddell' });
      assert.match(u.id, /^uid-[0-9a-f-]{36}$/);
      assert.match(u.passwordHash, /^\$argon2id\$/);
      assert.equal(d.findUser('alice')?.id, u.id);
      assert.equal(d.findUser('ALICE@example.test')?.id, u.id);
      assert.equal(d.findUser(u.id)?.username, 'alice');
      assert.equal(d.findUser('nobody'), undefined);
    });

    it('refuses duplicates, reserved and invalid names and short passwords, leaving the store unchanged', async () => {
      const before = (await d.store.loadSnapshot()).users.length;
      await assert.rejects(d.addUser({ username: 'alice', email: 'other@example.test', password: 'long enough' }), DirectoryError);
      await assert.rejects(d.addUser({ username: 'alice2', email: 'alice@example.test', password: 'long enough' }), /email already in use/);
      await assert.rejects(d.addUser({ username: 'postmaster', email: 'p@example.test', password: 'long enough' }), /reserved/);
      await assert.rejects(d.addUser({ username: 'Bad Name', email: 'b@example.test', password: 'long enough' }), ValidationError);
      await assert.rejects(d.addUser({ username: 'bob', email: 'b@example.test', password: 'short' }), /at least 8/);
      await assert.rejects(d.addUser({ username: 'bob', email: 'not-an-email', password: 'long enough' }), /email/);
      assert.equal((await d.store.loadSnapshot()).users.length, before);
    });

    it('authenticates by username or email, audits, and treats unknown users like wrong passwords', async () => {
      assert.equal((await d.authenticate({ login: 'alice', password: 'correct horse', protocol: 'ldap', remote: '127.0.0.9' })).ok, true);
      assert.equal((await d.authenticate({ login: 'alice@example.test', password: 'correct horse', protocol: 'imap' })).ok, true);
      assert.deepEqual(await d.authenticate({ login: 'alice', password: 'wrong', protocol: 'smtp' }), { ok: false, reason: 'invalid_credentials' });
      assert.deepEqual(await d.authenticate({ login: 'ghost', password: 'whatever', protocol: 'smtp' }), { ok: false, reason: 'invalid_credentials' });
      const events = await d.store.listAudit({ username: 'alice' });
      assert.ok(events.some((e) => e.protocol === 'ldap' && e.ok && e.remote === '127.0.0.9'));
      assert.ok(events.some((e) => e.protocol === 'smtp' && !e.ok));
    });

    it('filters the audit log by time and by result', async () => {
      for (const [at, ok] of [['2026-01-01T10:00:00.000Z', true], ['2026-01-02T10:00:00.000Z', false], ['2026-01-03T10:00:00.000Z', true]] as const) {
        await d.store.appendAudit({ at, username: 'timed', protocol: 'cli', appId: null, remote: null, ok, detail: null });
      }
      const ats = async (q: Omit<AuditQuery, 'username'>): Promise<string[]> => (await d.store.listAudit({ username: 'timed', ...q })).map((e) => e.at.slice(0, 10));
      assert.deepEqual(await ats({ since: auditInstant('2026-01-02')! }), ['2026-01-03', '2026-01-02']);
      assert.deepEqual(await ats({ until: auditInstant('2026-01-02 10:00')! }), ['2026-01-01']);
      assert.deepEqual(await ats({ since: auditInstant('2026-01-02T11:00:00+01:00')!, until: '2026-01-03T00:00:00.000Z' }), ['2026-01-02']);
      assert.deepEqual(await ats({ ok: true }), ['2026-01-03', '2026-01-01']);
      assert.deepEqual(await ats({ ok: false }), ['2026-01-02']);
      for (const notATime of ['yesterday', '2026-13-45', '2026-01-02T25:00', '']) assert.equal(auditInstant(notATime), null, notATime);
    });

    it('throttles repeated failures for an account across protocols, then lets the right password in after reset', async () => {
      const mallory = await d.addUser({ username: 'mallory', email: 'mallory@example.test', password: 'right password' });
      for (const protocol of ['ldap', 'imap', 'oidc'] as const) await d.authenticate({ login: 'mallory', password: 'nope', protocol });
      const blocked = await d.authenticate({ login: 'mallory', password: 'right password', protocol: 'smtp' });
      assert.deepEqual(blocked, { ok: false, reason: 'throttled' });
      await d.counters.reset('login-failures', `u:user:${mallory.id}`);
      assert.equal((await d.authenticate({ login: 'mallory', password: 'right password', protocol: 'smtp' })).ok, true);
    });

    it('disabled users cannot log in; enabling restores access', async () => {
      await d.addUser({ username: 'dora', email: 'dora@example.test', password: 'dora password' });
      await d.setActive('dora', false);
      assert.deepEqual(await d.authenticate({ login: 'dora', password: 'dora password', protocol: 'ldap' }), { ok: false, reason: 'disabled' });
      await d.setActive('dora', true);
      assert.equal((await d.authenticate({ login: 'dora', password: 'dora password', protocol: 'ldap' })).ok, true);
    });

    it('changes passwords', async () => {
      await d.setPassword('dora', 'new dora password');
      assert.equal((await d.authenticate({ login: 'dora', password: 'dora password', protocol: 'cli' })).ok, false);
      assert.equal((await d.authenticate({ login: 'dora', password: 'new dora password', protocol: 'cli' })).ok, true);
    });

    it('manages groups and members with unique gidnumbers', async () => {
      const staff = await d.addGroup('staff');
      const ops = await d.addGroup('ops');
      assert.notEqual(staff.gidNumber, ops.gidNumber);
      await d.addMember('staff', 'alice');
      await d.addMember('staff', 'dora');
      await d.addMember('ops', 'alice');
      assert.deepEqual(d.groupsOf(d.findUser('alice')!.id).map((g) => g.name).sort(), ['ops', 'staff']);
      await d.removeMember('ops', 'alice');
      assert.deepEqual(d.groupsOf(d.findUser('alice')!.id).map((g) => g.name), ['staff']);
      await assert.rejects(d.addGroup('staff'), /already exists/);
      await assert.rejects(d.addMember('nogroup', 'alice'), /no such group/);
      await assert.rejects(d.removeMember('ops', 'alice'), /not a member/);
    });

    it('checks app access lists by user and by group', async () => {
      const app: App = {
        id: 'wiki',
        domain: 'wiki.example.test',
        manifest: { addons: { ldap: {} } },
        access: { userIds: [d.findUser('mallory')!.id], groupIds: [d.groupByName('staff')!.id] },
        upstream: null,
        credentials: { ldap: { bindDn: 'cn=wiki,ou=apps,dc=cloudron', bindPassword: 'app-secret' } },
        createdAt: new Date().toISOString(),
      };
      await d.putApp(app, ['wiki.app@example.test']);
      const wiki = d.app('wiki')!;
      assert.equal(d.canUseApp(wiki, d.findUser('alice')!), true); // via group
      assert.equal(d.canUseApp(wiki, d.findUser('mallory')!), true); // by name
      await d.addUser({ username: 'eve', email: 'eve@example.test', password: 'eve password' });
      assert.equal(d.canUseApp(wiki, d.findUser('eve')!), false);
      assert.deepEqual(await d.authenticate({ login: 'eve', password: 'eve password', protocol: 'ldap', appId: 'wiki' }), { ok: false, reason: 'not_allowed' });
      assert.equal((await d.authenticate({ login: 'alice', password: 'correct horse', protocol: 'ldap', appId: 'wiki' })).ok, true);
      assert.equal(d.mailbox('WIKI.app@example.test')?.ownerId, 'wiki');
      assert.equal(d.appByDomain('Wiki.Example.Test')?.id, 'wiki');
    });

    it('authenticates apps by their addon credentials', async () => {
      assert.equal((await d.authenticateApp({ addon: 'ldap', login: 'wiki', password: 'app-secret', protocol: 'ldap' }))?.id, 'wiki');
      assert.equal(await d.authenticateApp({ addon: 'ldap', login: 'wiki', password: 'app-secreT', protocol: 'ldap' }), null);
      assert.equal(await d.authenticateApp({ addon: 'ldap', login: 'nope', password: 'app-secret', protocol: 'ldap' }), null);
    });

    it('deleting an app removes its mailboxes; deleting a user removes theirs', async () => {
      await d.addMailbox('eve@example.test', 'eve');
      await d.deleteUser('eve');
      assert.equal(d.mailbox('eve@example.test'), undefined);
      await d.deleteApp('wiki');
      assert.equal(d.app('wiki'), undefined);
      assert.equal(d.mailbox('wiki.app@example.test'), undefined);
      await assert.rejects(d.deleteApp('wiki'), /no such app/);
    });

    it('TOTP secrets verify the current code only', async () => {
      const { secret, uri } = await d.enableTotp('alice');
      assert.match(uri, /^otpauth:\/\/totp\//);
      const alice = d.findUser('alice')!;
      assert.equal(d.verifyTotp(alice, totpCode(secret)), true);
      assert.equal(d.verifyTotp(alice, totpCode(secret, Date.now() - 10 * 60_000)), false);
      assert.equal(d.verifyTotp(alice, 'abcdef'), false);
    });

    it('expiring key/value space', async () => {
      await d.store.kvSet('sessions', 'a', JSON.stringify({ grantId: 'g1' }), 60);
      await d.store.kvSet('sessions', 'b', JSON.stringify({ grantId: 'g1' }), 60);
      await d.store.kvSet('sessions', 'c', JSON.stringify({ grantId: 'g2' }), 0.05);
      assert.equal(JSON.parse((await d.store.kvGet('sessions', 'a'))!).grantId, 'g1');
      assert.equal((await d.store.kvFindWhere('sessions', 'grantId', 'g1')).length, 2);
      await new Promise((r) => setTimeout(r, 80));
      assert.equal(await d.store.kvGet('sessions', 'c'), null);
      assert.ok((await d.store.purgeExpired()) >= 1, 'expired row purged');
      assert.equal(await d.store.purgeExpired(), 0);
      await d.store.kvDeleteWhere('sessions', 'grantId', 'g1');
      assert.equal(await d.store.kvGet('sessions', 'a'), null);
      assert.equal(await d.store.kvIncr('n', 'x', 1, 60), 1);
      assert.equal(await d.store.kvIncr('n', 'x', 2, 60), 3);
    });

    it('a change made by another process reaches a watching view within 1 s', async () => {
      const other = await Directory.open(t.config);
      try {
        let notified = false;
        const off = d.onChange((dir) => {
          if (dir.findUser('zed')) notified = true;
        });
        const start = Date.now();
        await other.addUser({ username: 'zed', email: 'zed@example.test', password: 'zed password' });
        await waitFor(() => notified, 1000);
        off();
        assert.ok(d.findUser('zed'), `seen after ${Date.now() - start} ms`);
        await other.setActive('zed', false);
        await waitFor(() => d.findUser('zed')?.active === false, 1000);
      } finally {
        await other.close();
      }
    });

    it('migrations are recorded and a newer store is refused without damage', async () => {
      if (t.config.databaseUrl) {
        const { PostgresStore } = await import('../src/postgres.ts');
        const s = new PostgresStore(t.config.databaseUrl);
        await (s as unknown as { pool: { query: (q: string) => Promise<unknown> } }).pool.query(`UPDATE meta SET value = '${LATEST_SCHEMA_VERSION + 1}' WHERE key = 'schema_version'`);
        await assert.rejects(s.migrate(), /newer Hearth/);
        await (s as unknown as { pool: { query: (q: string) => Promise<unknown> } }).pool.query(`UPDATE meta SET value = '${LATEST_SCHEMA_VERSION}' WHERE key = 'schema_version'`);
        await s.close();
      }
      assert.ok(d.findUser('alice'), 'data still readable');
    });
  });
}
