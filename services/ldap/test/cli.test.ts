import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { freePort, hearth, MANIFESTS, parseEnvLines, startDaemon, testEnv, waitFor, type Daemon, type TestEnv } from '@hearth/testkit';
import { parseLdif, run } from './fixture.ts';

/**
 * End to end as an operator and an app see it: users and the app made with the
 * `hearth` CLI, the daemon started alone, and ldap-utils configured only from the
 * CLOUDRON_LDAP_* variables that `hearth app env` prints.
 */

let env: TestEnv;
let daemon: Daemon;
let vars: Record<string, string>;

async function cli(args: string[], input?: string): Promise<string> {
  const r = await hearth(args, { env: env.env, input });
  assert.equal(r.code, 0, `hearth ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  env = await testEnv({ env: { HEARTH_LDAP_PORT: String(await freePort()), HEARTH_LDAPS_PORT: String(await freePort()), HEARTH_LOG_LEVEL: 'info' } });
  await cli(['user', 'add', 'zoe', '--email', 'zoe@example.test', '--display-name', 'Zoe Quinn', '--password-stdin'], 'zoe password 1\n');
  await cli(['user', 'add', 'yan', '--email', 'yan@example.test', '--password-stdin'], 'yan password 1\n');
  await cli(['group', 'add', 'editors']);
  await cli(['group', 'add-member', 'editors', 'zoe']);
  await cli(['app', 'install', `${MANIFESTS}/wiki.json`, '--id', 'wiki', '--domain', 'wiki.example.test', '--access', 'groups:editors']);
  vars = parseEnvLines(await cli(['app', 'env', 'wiki']));
  daemon = await startDaemon('services/ldap/src/main.ts', env.env, (out) => out.includes('"msg":"ready"'));
});

after(async () => {
  await daemon?.stop();
  await env?.cleanup();
});

const login = (uid: string): Promise<Map<string, Map<string, string[]>>> =>
  run('ldapsearch', ['-x', '-LLL', '-H', vars.CLOUDRON_LDAP_URL!, '-D', vars.CLOUDRON_LDAP_BIND_DN!, '-w', vars.CLOUDRON_LDAP_BIND_PASSWORD!, '-b', vars.CLOUDRON_LDAP_USERS_BASE_DN!, `(&(objectclass=user)(|(username=${uid})(mail=${uid})))`]).then((r) => {
    assert.equal(r.code, 0, r.stderr);
    return parseLdif(r.stdout);
  });

const bind = (dn: string, pw: string): Promise<number> => run('ldapwhoami', ['-x', '-H', vars.CLOUDRON_LDAP_URL!, '-D', dn, '-w', pw]).then((r) => r.code);

it('lets an app configured from its CLOUDRON_LDAP_* variables find and authenticate its users', async () => {
  assert.equal(vars.CLOUDRON_LDAP_USERS_BASE_DN, 'ou=users,dc=cloudron');
  assert.equal(vars.CLOUDRON_LDAP_GROUPS_BASE_DN, 'ou=groups,dc=cloudron');
  const zoe = [...(await login('zoe@example.test')).entries()];
  assert.equal(zoe.length, 1);
  const [dn, attrs] = zoe[0]!;
  assert.deepEqual(attrs.get('displayName'), ['Zoe Quinn']);
  assert.deepEqual(attrs.get('memberof'), ['cn=editors,ou=groups,dc=cloudron']);
  assert.equal(await bind(dn, 'zoe password 1'), 0);
  assert.equal((await login('yan')).size, 0, 'yan is not in the access list');
  assert.equal(await bind('cn=yan,ou=users,dc=cloudron', 'yan password 1'), 49);
  const groups = await run('ldapsearch', ['-x', '-LLL', '-H', vars.CLOUDRON_LDAP_URL!, '-D', vars.CLOUDRON_LDAP_BIND_DN!, '-w', vars.CLOUDRON_LDAP_BIND_PASSWORD!, '-b', vars.CLOUDRON_LDAP_GROUPS_BASE_DN!, '(cn=editors)', 'memberuid']);
  assert.deepEqual(parseLdif(groups.stdout).get('cn=editors,ou=groups,dc=cloudron')?.get('memberuid'), [dn.replace(/^cn=([^,]+),.*$/, '$1')]);
});

it('follows CLI changes made while it runs', async () => {
  await cli(['user', 'passwd', 'zoe', '--password-stdin'], 'zoe password 2\n');
  await waitFor(async () => (await bind('cn=zoe,ou=users,dc=cloudron', 'zoe password 2')) === 0, 5000);
  assert.equal(await bind('cn=zoe,ou=users,dc=cloudron', 'zoe password 1'), 49);
  await cli(['group', 'add-member', 'editors', 'yan']);
  await waitFor(async () => (await login('yan')).size === 1, 5000);
  await cli(['user', 'disable', 'yan']);
  await waitFor(async () => (await login('yan')).size === 0, 5000);
  const old = vars.CLOUDRON_LDAP_BIND_PASSWORD!;
  await cli(['app', 'rotate', 'wiki']);
  const fresh = parseEnvLines(await cli(['app', 'env', 'wiki']));
  assert.notEqual(fresh.CLOUDRON_LDAP_BIND_PASSWORD, old);
  await waitFor(async () => (await bind(vars.CLOUDRON_LDAP_BIND_DN!, fresh.CLOUDRON_LDAP_BIND_PASSWORD!)) === 0, 5000);
  assert.equal(await bind(vars.CLOUDRON_LDAP_BIND_DN!, old), 49, 'the rotated-out password no longer binds');
});
