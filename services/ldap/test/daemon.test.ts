import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { Directory, generateSecret } from '@hearth/directory';
import { freePort, startDaemon, testEnv, type Daemon, type TestEnv } from '@hearth/testkit';
import { run } from './fixture.ts';

/** The daemon as `npm start -w services/ldap` runs it: env ports, generated certificate, clean stop. */

let env: TestEnv;
let daemon: Daemon;
let ports: { ldap: number; ldaps: number };
const password = generateSecret();

before(async () => {
  ports = { ldap: await freePort(), ldaps: await freePort() };
  env = await testEnv({ env: { HEARTH_LDAP_PORT: String(ports.ldap), HEARTH_LDAPS_PORT: String(ports.ldaps), HEARTH_LOG_LEVEL: 'info' } });
  const dir = await Directory.open(env.config);
  await dir.addUser({ username: 'alice', email: 'alice@example.test', password: 'correct horse battery' });
  await dir.putApp(
    { id: 'chat', domain: 'chat.example.test', manifest: { addons: { ldap: {} } }, access: null, upstream: null, credentials: { ldap: { bindDn: 'cn=chat,ou=apps,dc=cloudron', bindPassword: password } }, createdAt: new Date().toISOString() },
    [],
  );
  await dir.close();
  daemon = await startDaemon('services/ldap/src/main.ts', env.env, (out) => out.includes('"msg":"ready"'));
});

after(async () => {
  await daemon?.stop();
  await env?.cleanup();
});

it('serves LDAP and LDAPS on the configured ports and stops on SIGTERM', async () => {
  assert.match(daemon.output(), new RegExp(`ldap://127.0.0.1:${ports.ldap}`));
  const search = await run('ldapsearch', ['-x', '-LLL', '-H', `ldap://127.0.0.1:${ports.ldap}`, '-D', 'cn=chat,ou=apps,dc=cloudron', '-w', password, '-b', 'ou=users,dc=cloudron', '(username=alice)', 'mail']);
  assert.equal(search.code, 0, search.stderr);
  assert.match(search.stdout, /mail: alice@example.test/);
  const secure = await run('ldapwhoami', ['-x', '-H', `ldaps://127.0.0.1:${ports.ldaps}`, '-D', 'cn=alice,ou=users,dc=cloudron', '-w', 'correct horse battery'], {
    LDAPTLS_CACERT: `${env.dataDir}/tls/cert.pem`,
  });
  assert.equal(secure.code, 0, secure.stderr);
  assert.equal(await daemon.stop('SIGTERM'), 0);
});
