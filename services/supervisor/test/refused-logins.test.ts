import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { portEnvName, DEFAULT_PORTS, type PortName } from '@hearth/config';
import { Directory } from '@hearth/directory';
import { freePort, runCommand, startDaemon, testEnv, waitFor, type Daemon, type TestEnv } from '@hearth/testkit';

/**
 * Issue 12: every protocol's refused login is one info line in its daemon's JSON log with the
 * protocol, the login, the client address and the reason, and never the password. Each daemon
 * runs as `npm start` would run it; each client is a real one.
 */

const WRONG = 'Wrong-Pass-7731';
let env: TestEnv;
const daemons = new Map<string, Daemon>();

function refusals(name: string): Record<string, unknown>[] {
  return daemons
    .get(name)!
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === 'login refused' && l.level === 30);
}

async function refusal(name: string, login: string): Promise<Record<string, unknown>> {
  const line = await waitFor(() => refusals(name).find((l) => l.login === login), 15000);
  assert.ok(line, daemons.get(name)!.output());
  return line;
}

before(async () => {
  const ports: Record<string, string> = {};
  for (const name of Object.keys(DEFAULT_PORTS) as PortName[]) ports[portEnvName(name)] = String(await freePort());
  env = await testEnv({ env: { ...ports, HEARTH_OIDC_ISSUER: `http://127.0.0.1:${ports.HEARTH_OIDC_PORT}`, HEARTH_LOG_LEVEL: 'info' } });
  const directory = await Directory.open(env.config);
  await directory.addUser({ username: 'alice', email: 'alice@example.test', password: 'alice-password-1' });
  await directory.addMailbox('alice@example.test', 'alice');
  await directory.putApp(
    { id: 'gated', domain: 'gated.example.test', manifest: { addons: { proxyAuth: { basicAuth: true } } }, access: null, upstream: 'http://127.0.0.1:9', credentials: {}, createdAt: new Date().toISOString() },
    [],
  );
  await directory.close();
  await Promise.all(
    ['ldap', 'imap', 'pop3', 'oidc', 'proxyauth', 'turn'].map(async (name) => {
      daemons.set(name, await startDaemon(`services/${name}/src/main.ts`, env.env, (o) => o.includes('"msg":"ready"'), 60_000));
    }),
  );
});

after(async () => {
  await Promise.all([...daemons.values()].map((d) => d.stop()));
  await env?.cleanup();
});

describe('refused logins in the daemon logs', { timeout: 120_000 }, () => {
  it('LDAP simple bind (ldapwhoami)', async () => {
    const r = await runCommand('ldapwhoami', ['-x', '-H', `ldap://127.0.0.1:${env.config.ports.ldap}`, '-D', 'cn=alice,ou=users,dc=cloudron', '-w', WRONG]);
    assert.notEqual(r.code, 0);
    const line = await refusal('ldap', 'alice');
    assert.equal(line.protocol, 'ldap');
    assert.equal(line.remote, '127.0.0.1');
    assert.equal(line.reason, 'invalid_credentials');
  });

  it('IMAP LOGIN and POP3 USER/PASS (Python imaplib, poplib)', async () => {
    const script = `
import imaplib, poplib
try:
    imaplib.IMAP4('127.0.0.1', ${env.config.ports.imap}).login('alice', '${WRONG}')
except imaplib.IMAP4.error as e:
    print('imap refused', e)
p = poplib.POP3('127.0.0.1', ${env.config.ports.pop3})
p.user('alice')
try:
    p.pass_('${WRONG}')
except poplib.error_proto as e:
    print('pop3 refused', e)
`;
    const r = await runCommand('python3', ['-c', script], { timeoutMs: 30_000 });
    assert.match(r.out, /imap refused/);
    assert.match(r.out, /pop3 refused/);
    for (const name of ['imap', 'pop3']) {
      const line = await refusal(name, 'alice');
      assert.equal(line.protocol, name);
      assert.match(String(line.remote), /127\.0\.0\.1$/);
      assert.equal(line.reason, 'invalid_credentials');
    }
  });

  it('proxyAuth Basic (curl)', async () => {
    const r = await runCommand('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-u', `alice:${WRONG}`, '-H', 'Host: gated.example.test', `http://127.0.0.1:${env.config.ports.proxyauth}/`]);
    assert.equal(r.stdout.trim(), '401');
    const line = await refusal('proxyauth', 'alice');
    assert.equal(line.protocol, 'proxyauth');
    assert.equal(line.remote, '127.0.0.1');
    assert.equal(line.appId, 'gated');
  });

  it('OIDC token endpoint with a wrong client secret (curl)', async () => {
    const r = await runCommand('curl', ['-s', '-u', `no-such-client:${WRONG}`, '-d', 'grant_type=client_credentials', `http://127.0.0.1:${env.config.ports.oidc}/token`]);
    assert.match(r.stdout, /invalid_client/);
    const line = await waitFor(() => refusals('oidc').find((l) => l.protocol === 'oidc'), 15000);
    assert.ok(line, daemons.get('oidc')!.output());
    assert.equal(line.remote, '127.0.0.1');
    assert.match(String(line.reason), /invalid_client/);
  });

  it('TURN long-term credentials (turnutils_uclient)', async () => {
    const user = `${Math.floor(Date.now() / 1000) + 3600}:alice`;
    await runCommand('turnutils_uclient', ['-u', user, '-w', WRONG, '-p', String(env.config.ports.turn), '-e', '127.0.0.1', '-r', '9', '-n', '1', '-m', '1', '127.0.0.1'], { timeoutMs: 20_000 });
    const line = await refusal('turn', user);
    assert.equal(line.protocol, 'turn');
    assert.equal(line.remote, '127.0.0.1');
    assert.equal(line.reason, 'invalid credentials');
  });

  it('no daemon logged a password', () => {
    for (const [name, d] of daemons) assert.ok(!d.output().includes(WRONG), name);
  });
});
