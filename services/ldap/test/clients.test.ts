import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Directory } from '@hearth/directory';
import { createLogger } from '@hearth/log';
import { waitFor } from '@hearth/testkit';
import { startLdap } from '../src/server.ts';
import { parseLdif, PASSWORD, run, startFixture, type Fixture, type RunResult } from './fixture.ts';

/** The server as apps see it: OpenLDAP's own command-line clients against a running instance. */

let f: Fixture;
const dn = (id: string): string => `cn=${id},ou=users,dc=cloudron`;

function ldapsearch(args: string[], bind?: [string, string], url = f.url, env: Record<string, string> = {}): Promise<RunResult> {
  const [d, w] = bind ?? [f.appDn, f.appPassword];
  const auth = d ? ['-D', d, '-w', w] : [];
  return run('ldapsearch', ['-x', '-LLL', '-o', 'ldif-wrap=no', '-H', url, ...auth, ...args], env);
}

function whoami(bindDn: string, password: string, url = f.url, extra: string[] = [], env: Record<string, string> = {}): Promise<RunResult> {
  return run('ldapwhoami', ['-x', '-H', url, '-D', bindDn, '-w', password, ...extra], env);
}

before(async () => {
  f = await startFixture();
});
after(async () => {
  await f?.close();
});

describe('root DSE and anonymous access', () => {
  it('publishes naming context, controls, extensions and version to anyone', async () => {
    const r = await ldapsearch(['-b', '', '-s', 'base', '+'], ['', '']);
    assert.equal(r.code, 0, r.stderr);
    const e = parseLdif(r.stdout).get('')!;
    assert.deepEqual(e.get('namingContexts'), ['dc=cloudron']);
    assert.ok(e.get('supportedControl')!.includes('1.2.840.113556.1.4.319'));
    for (const oid of ['1.3.6.1.4.1.4203.1.11.3', '1.3.6.1.4.1.4203.1.11.1', '1.3.6.1.4.1.1466.20037']) assert.ok(e.get('supportedExtension')!.includes(oid), oid);
    assert.deepEqual(e.get('supportedLDAPVersion'), ['3']);
  });

  it('lets an anonymous bind connect but see nothing', async () => {
    const r = await ldapsearch(['-b', 'dc=cloudron'], ['', '']);
    assert.equal(r.code, 50, r.stdout + r.stderr);
    assert.equal(parseLdif(r.stdout).size, 0);
    const who = await run('ldapwhoami', ['-x', '-H', f.url]);
    assert.equal(who.code, 0);
    assert.equal(who.stdout.trim(), 'anonymous');
  });
});

describe('app binds', () => {
  it('list only the users allowed to use the app, with every attribute', async () => {
    const r = await ldapsearch(['-b', 'ou=users,dc=cloudron']);
    assert.equal(r.code, 0, r.stderr);
    const entries = parseLdif(r.stdout);
    const { alice, bob, carol, dave, erin } = f.users;
    assert.deepEqual([...entries.keys()].sort(), ['ou=users,dc=cloudron', dn(alice.id), dn(carol.id), dn(dave.id)].sort());
    assert.ok(!entries.has(dn(bob.id)) && !entries.has(dn(erin.id)));
    const a = entries.get(dn(alice.id))!;
    for (const c of ['user', 'inetOrgPerson', 'person', 'organizationalPerson', 'top']) assert.ok(a.get('objectclass')!.includes(c), c);
    assert.deepEqual(a.get('objectcategory'), ['person']);
    assert.deepEqual(a.get('cn'), [alice.id]);
    assert.deepEqual(a.get('uid'), [alice.id]);
    assert.deepEqual(a.get('entryuuid'), [alice.id]);
    assert.deepEqual(a.get('mail'), ['alice@example.test']);
    assert.deepEqual(a.get('displayName'), ['Alice Liddell']);
    assert.deepEqual(a.get('mailAlternateAddress'), ['alice@fallback.test']);
    assert.deepEqual(a.get('givenName'), ['Alice']);
    assert.deepEqual(a.get('sn'), ['Liddell']);
    assert.deepEqual(a.get('username'), ['alice']);
    assert.deepEqual(a.get('samaccountname'), ['alice']);
    assert.deepEqual(a.get('memberof'), ['cn=others,ou=groups,dc=cloudron']);
    assert.deepEqual(entries.get(dn(carol.id))!.get('memberof'), ['cn=staff,ou=groups,dc=cloudron']);
    assert.deepEqual(entries.get(dn(carol.id))!.get('sn'), ['Ann Smith']);
  });

  it('answer the seed filter verbatim, by username or email, in any case', async () => {
    for (const login of ['alice', 'alice@example.test', 'ALICE@Example.TEST']) {
      const r = await ldapsearch(['-b', 'ou=users,dc=cloudron', `(&(objectclass=user)(|(username=${login})(mail=${login})))`, 'username']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual([...parseLdif(r.stdout).keys()], [dn(f.users.alice.id)], login);
    }
    const hidden = await ldapsearch(['-b', 'ou=users,dc=cloudron', '(&(objectclass=user)(|(username=bob)(mail=bob)))']);
    assert.equal(hidden.code, 0);
    assert.equal(parseLdif(hidden.stdout).size, 0, 'bob is not allowed to use the app');
  });

  it('evaluate substring, presence, ordering, approx and negation filters', async () => {
    const keys = async (filter: string, base = 'dc=cloudron'): Promise<string[]> => {
      const r = await ldapsearch(['-b', base, filter, '1.1']);
      assert.equal(r.code, 0, r.stderr);
      return [...parseLdif(r.stdout).keys()].sort();
    };
    const { alice, carol, dave } = f.users;
    assert.deepEqual(await keys('(mail=*@EXAMPLE.test)'), [dn(alice.id), dn(carol.id), dn(dave.id)].sort());
    assert.deepEqual(await keys('(DisplayName=car*smi*)'), [dn(carol.id)]);
    assert.deepEqual(await keys('(&(objectClass=user)(!(memberOf=cn=staff,ou=groups,dc=cloudron)))'), [dn(alice.id)]);
    assert.deepEqual(await keys('(&(objectclass=group)(gidnumber>=5001))'), ['cn=others,ou=groups,dc=cloudron']);
    assert.deepEqual(await keys('(&(objectclass=group)(gidnumber<=5000))'), ['cn=staff,ou=groups,dc=cloudron']);
    assert.deepEqual(await keys('(sn~=annsmith)'), [dn(carol.id)]);
    assert.deepEqual(await keys('(nosuchattribute=x)'), []);
  });

  it('honour scopes, attribute selection, typesOnly and size limits', async () => {
    const one = await ldapsearch(['-b', 'dc=cloudron', '-s', 'one', '1.1']);
    assert.deepEqual([...parseLdif(one.stdout).keys()].sort(), ['ou=groups,dc=cloudron', 'ou=users,dc=cloudron']);
    const base = await ldapsearch(['-b', 'cn=alice,ou=users,dc=cloudron', '-s', 'base', 'mail', 'USERNAME']);
    assert.equal(base.code, 0, base.stderr);
    const a = parseLdif(base.stdout).get(dn(f.users.alice.id))!;
    assert.deepEqual([...a.keys()].sort(), ['mail', 'username']);
    const oper = await ldapsearch(['-b', dn(f.users.alice.id), '-s', 'base', '+']);
    const o = parseLdif(oper.stdout).get(dn(f.users.alice.id))!;
    assert.deepEqual(o.get('entryDN'), [dn(f.users.alice.id)]);
    assert.ok(!o.has('mail'));
    const types = await ldapsearch(['-A', '-b', dn(f.users.alice.id), '-s', 'base', 'mail', 'sn']);
    assert.match(types.stdout, /^mail:$/m);
    assert.doesNotMatch(types.stdout, /alice@example/);
    const limited = await ldapsearch(['-z', '1', '-b', 'ou=users,dc=cloudron', '(objectclass=user)', '1.1']);
    assert.equal(limited.code, 4, 'sizeLimitExceeded');
    assert.equal(parseLdif(limited.stdout).size, 1);
    const missing = await ldapsearch(['-b', 'cn=bob,ou=users,dc=cloudron', '-s', 'base']);
    assert.equal(missing.code, 32, 'a user the app may not see does not exist for it');
    const badBase = await ldapsearch(['-b', 'ou=elsewhere,dc=example', '-s', 'base']);
    assert.equal(badBase.code, 32);
  });

  it('see groups with members limited to the users they may see', async () => {
    const r = await ldapsearch(['-b', 'ou=groups,dc=cloudron', '(objectclass=group)']);
    assert.equal(r.code, 0, r.stderr);
    const g = parseLdif(r.stdout);
    const staff = g.get('cn=staff,ou=groups,dc=cloudron')!;
    assert.deepEqual(staff.get('cn'), ['staff']);
    assert.ok(staff.get('objectclass')!.includes('group'));
    assert.match(staff.get('gidnumber')![0]!, /^\d+$/);
    assert.deepEqual(staff.get('memberuid')!.sort(), [f.users.carol.id, f.users.dave.id].sort(), 'erin is disabled');
    assert.deepEqual(g.get('cn=others,ou=groups,dc=cloudron')!.get('memberuid'), [f.users.alice.id], 'bob may not use the app');
  });

  it('page results with the Simple Paged Results control', async () => {
    const r = await run('ldapsearch', ['-x', '-o', 'ldif-wrap=no', '-H', f.url, '-D', f.appDn, '-w', f.appPassword, '-b', 'ou=users,dc=cloudron', '-E', 'pr=2/noprompt', '(objectclass=user)', 'username']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.stdout.match(/^username: .*$/gm)!.sort(),
      ['username: alice', 'username: carol', 'username: dave'],
    );
    assert.equal(r.stdout.match(/^pagedresults: estimate=3 cookie=/gm)?.length, 2, r.stdout);
  });

  it('refuse a wrong app password with invalidCredentials', async () => {
    const r = await ldapsearch(['-b', 'dc=cloudron'], [f.appDn, 'not-the-password']);
    assert.equal(r.code, 49);
    const unknownApp = await ldapsearch(['-b', 'dc=cloudron'], ['cn=nosuchapp,ou=apps,dc=cloudron', f.appPassword]);
    assert.equal(unknownApp.code, 49);
  });

  it('answer WhoAmI and compare', async () => {
    const who = await whoami(f.appDn, f.appPassword);
    assert.equal(who.stdout.trim(), 'dn:cn=wiki,ou=apps,dc=cloudron');
    const cmp = (target: string, ava: string): Promise<RunResult> => run('ldapcompare', ['-x', '-H', f.url, '-D', f.appDn, '-w', f.appPassword, target, ava]);
    assert.equal((await cmp(dn(f.users.alice.id), 'mail:ALICE@example.test')).code, 6, 'compareTrue');
    assert.equal((await cmp(dn(f.users.alice.id), 'mail:bob@example.test')).code, 5, 'compareFalse');
    assert.equal((await cmp('cn=staff,ou=groups,dc=cloudron', `memberuid:${f.users.carol.id}`)).code, 6);
    assert.equal((await cmp(dn(f.users.carol.id), 'memberOf:CN=Staff, OU=Groups, DC=Cloudron')).code, 6, 'DN values compare as DNs');
    assert.equal((await cmp(dn(f.users.bob.id), 'mail:bob@example.test')).code, 32, 'bob is hidden from the app');
    assert.equal((await cmp(dn(f.users.alice.id), 'nosuchattr:x')).code, 16);
  });

  it('refuse add, modify, delete and modrdn with unwillingToPerform', async () => {
    const auth = ['-x', '-H', f.url, '-D', f.appDn, '-w', f.appPassword];
    const target = dn(f.users.alice.id);
    const add = await run('ldapadd', auth, {}, 'dn: cn=x,ou=users,dc=cloudron\nobjectclass: top\ncn: x\n');
    assert.equal(add.code, 53, add.stderr);
    const mod = await run('ldapmodify', auth, {}, `dn: ${target}\nchangetype: modify\nreplace: mail\nmail: evil@example.test\n`);
    assert.equal(mod.code, 53, mod.stderr);
    assert.equal((await run('ldapdelete', [...auth, target])).code, 53);
    assert.equal((await run('ldapmodrdn', [...auth, target, 'cn=renamed'])).code, 53);
    const still = await ldapsearch(['-b', target, '-s', 'base', 'mail']);
    assert.match(still.stdout, /mail: alice@example.test/);
  });
});

describe('user binds', () => {
  it('accept every DN form for an allowed user', async () => {
    const { alice } = f.users;
    for (const bindDn of ['cn=alice,ou=users,dc=cloudron', `cn=${alice.id},ou=users,dc=cloudron`, 'cn=alice@example.test,ou=users,dc=cloudron', 'mail=alice@example.test,ou=users,dc=cloudron', 'CN=Alice, OU=Users, DC=Cloudron']) {
      const r = await whoami(bindDn, PASSWORD);
      assert.equal(r.code, 0, `${bindDn}: ${r.stderr}`);
      assert.equal(r.stdout.trim(), `dn:${dn(alice.id)}`);
    }
  });

  it('refuse a wrong password, an unknown user, a disabled user and a user outside the app with 49', async () => {
    await whoami(f.appDn, f.appPassword); // this address now speaks for the app
    for (const [bindDn, pw] of [
      ['cn=alice,ou=users,dc=cloudron', 'wrong password'],
      ['cn=nobody,ou=users,dc=cloudron', PASSWORD],
      ['cn=erin,ou=users,dc=cloudron', PASSWORD],
      ['cn=bob,ou=users,dc=cloudron', PASSWORD],
      ['uid=alice,ou=people,dc=example', PASSWORD],
    ] as const) {
      const r = await whoami(bindDn, pw);
      assert.equal(r.code, 49, bindDn);
      assert.match(r.stderr, /Invalid credentials \(49\)/);
    }
    const unauthenticated = await whoami('cn=alice,ou=users,dc=cloudron', '');
    assert.equal(unauthenticated.code, 53, 'a DN without a password is not an anonymous bind');
  });

  it('scope user binds to the apps that bound from the same address', async () => {
    const logger = createLogger('ldap-test', 'warn');
    const fresh = await startLdap({ directory: f.directory, logger, host: '127.0.0.1', port: 0, tls: null });
    try {
      const url = `ldap://127.0.0.1:${fresh.port}`;
      const before = await whoami('cn=bob,ou=users,dc=cloudron', PASSWORD, url);
      assert.equal(before.code, 0, 'no app has bound from here: any active user may bind');
      assert.equal((await whoami(f.appDn, f.appPassword, url)).code, 0);
      const afterApp = await whoami('cn=bob,ou=users,dc=cloudron', PASSWORD, url);
      assert.equal(afterApp.code, 49, 'bob is outside the app that uses this address');
      assert.equal((await whoami('cn=alice,ou=users,dc=cloudron', PASSWORD, url)).code, 0);
      const own = await ldapsearch(['-b', 'dc=cloudron', '(objectclass=*)', 'username', 'memberuid'], ['cn=alice,ou=users,dc=cloudron', PASSWORD], url);
      assert.equal(own.code, 0, own.stderr);
      const seen = parseLdif(own.stdout);
      assert.ok(seen.has(dn(f.users.alice.id)));
      assert.ok(!seen.has(dn(f.users.carol.id)), 'a user sees only itself');
      assert.deepEqual(seen.get('cn=others,ou=groups,dc=cloudron')?.get('memberuid'), [f.users.alice.id]);
      assert.ok(!seen.has('cn=staff,ou=groups,dc=cloudron'));
    } finally {
      await fresh.close();
    }
  });

  it('land in the audit log', async () => {
    const events = await f.directory.store.listAudit({ protocol: 'ldap', limit: 500 });
    assert.ok(events.some((e) => e.username === 'alice' && e.ok && e.appId === 'wiki'));
    assert.ok(events.some((e) => e.username === 'bob' && !e.ok && e.detail === 'not_allowed'));
    assert.ok(events.some((e) => e.username === 'erin' && !e.ok && e.detail === 'disabled'));
    assert.ok(events.some((e) => e.username === 'wiki' && e.ok));
  });
});

describe('TLS', () => {
  it('upgrades with StartTLS (-ZZ) against the generated certificate', async () => {
    const env = { LDAPTLS_CACERT: f.tls.certFile };
    const url = f.url;
    const r = await whoami('cn=alice,ou=users,dc=cloudron', PASSWORD, url, ['-ZZ'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `dn:${dn(f.users.alice.id)}`);
    const s = await ldapsearch(['-ZZ', '-b', 'ou=users,dc=cloudron', '(username=carol)', 'mail'], undefined, url, env);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /mail: carol@example.test/);
    const untrusted = await whoami('cn=alice,ou=users,dc=cloudron', PASSWORD, url, ['-ZZ'], { LDAPTLS_REQCERT: 'demand', LDAPTLS_CACERT: '/etc/ssl/certs/ca-certificates.crt' });
    assert.notEqual(untrusted.code, 0, 'the client really verifies the certificate');
  });

  it('serves LDAPS with the generated certificate', async () => {
    const env = { LDAPTLS_CACERT: f.tls.certFile };
    const r = await whoami(f.appDn, f.appPassword, f.ldapsUrl, [], env);
    assert.equal(r.code, 0, r.stderr);
    const s = await ldapsearch(['-b', 'ou=users,dc=cloudron', '(username=alice)', 'username'], undefined, f.ldapsUrl, env);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /username: alice/);
  });
});

describe('password modify', () => {
  it('lets a user change their own password, and nobody else’s', async () => {
    const daveDn = 'cn=dave,ou=users,dc=cloudron';
    const next = 'a brand new password';
    const passwd = (args: string[]): Promise<RunResult> => run('ldappasswd', ['-x', '-H', f.url, ...args]);
    // ldappasswd exits 1 on any failure; the result code is in its message.
    const refused = (r: RunResult, code: number): void => {
      assert.equal(r.code, 1);
      assert.match(r.stderr + r.stdout, new RegExp(`\\(${code}\\)`));
    };
    refused(await passwd(['-D', f.appDn, '-w', f.appPassword, '-s', next, dn(f.users.dave.id)]), 50);
    refused(await passwd(['-D', daveDn, '-w', PASSWORD, '-s', next, dn(f.users.alice.id)]), 50);
    refused(await passwd(['-D', daveDn, '-w', PASSWORD, '-s', 'short']), 19);
    refused(await passwd(['-D', daveDn, '-w', PASSWORD, '-a', 'not the old one', '-s', next]), 49);
    const ok = await run('ldappasswd', ['-x', '-H', f.url, '-D', daveDn, '-w', PASSWORD, '-a', PASSWORD, '-s', next]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((await whoami(daveDn, next)).code, 0);
    assert.equal((await whoami(daveDn, PASSWORD)).code, 49);
  });
});

describe('directory changes', () => {
  it('are visible to the next request without a restart', async () => {
    // Another process (the CLI) writes; this server only hears about it through the store.
    const writer = await Directory.open(f.env.config, { watch: false });
    try {
      const seen = async (username: string): Promise<boolean> => {
        const r = await ldapsearch(['-b', 'ou=users,dc=cloudron', `(username=${username})`, '1.1']);
        return parseLdif(r.stdout).size === 1;
      };
      const t0 = Date.now();
      const frank = await writer.addUser({ username: 'frank', email: 'frank@example.test', password: PASSWORD });
      await writer.addMember('staff', 'frank');
      await waitFor(() => seen('frank'), 5000);
      const lag = Date.now() - t0;
      assert.equal((await whoami('cn=frank,ou=users,dc=cloudron', PASSWORD)).code, 0);

      await writer.setPassword('frank', 'frank changed it');
      await waitFor(async () => (await whoami('cn=frank,ou=users,dc=cloudron', 'frank changed it')).code === 0, 5000);
      assert.equal((await whoami('cn=frank,ou=users,dc=cloudron', PASSWORD)).code, 49);

      await writer.removeMember('staff', 'frank');
      await waitFor(async () => !(await seen('frank')), 5000);
      assert.equal((await whoami('cn=frank,ou=users,dc=cloudron', PASSWORD)).code, 49);

      await writer.addMember('staff', 'bob');
      await waitFor(() => seen('bob'), 5000);
      const groups = await ldapsearch(['-b', 'cn=staff,ou=groups,dc=cloudron', '-s', 'base', 'memberuid']);
      assert.ok(parseLdif(groups.stdout).get('cn=staff,ou=groups,dc=cloudron')!.get('memberuid')!.includes(f.users.bob.id));
      await writer.removeMember('staff', 'bob');
      await waitFor(async () => !(await seen('bob')), 5000);

      // The access list itself: opening the app to everyone shows bob and lets him bind.
      await writer.putApp({ ...f.app, access: null }, []);
      await waitFor(() => seen('bob'), 5000);
      assert.equal((await whoami('cn=bob,ou=users,dc=cloudron', PASSWORD)).code, 0);
      await writer.putApp(f.app, []);
      await waitFor(async () => !(await seen('bob')), 5000);
      assert.equal((await whoami('cn=bob,ou=users,dc=cloudron', PASSWORD)).code, 49);

      // Disabling a user hides them and refuses their binds.
      await writer.setActive('carol', false);
      await waitFor(async () => !(await seen('carol')), 5000);
      assert.equal((await whoami('cn=carol,ou=users,dc=cloudron', PASSWORD)).code, 49);
      await writer.setActive('carol', true);
      await waitFor(() => seen('carol'), 5000);
      assert.ok(frank.id);
      // Informational: the requirement is "within 1 s"; the SQLite watcher polls every 200 ms.
      console.log(`# new user visible over LDAP after ${lag} ms`);
    } finally {
      await writer.close();
    }
  });
});
