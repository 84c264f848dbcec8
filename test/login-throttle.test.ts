import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Directory, type User } from '@hearth/directory';
import { freePort, REPO_ROOT, runCommand, startDaemon, testEnv, type Daemon, type TestEnv } from '@hearth/testkit';

/**
 * The per-account login throttle through real clients on two protocols (imaplib, ldap3), from two
 * loopback source addresses: 127.0.0.1 plays the user's own machine, 127.0.0.21 somebody else's.
 */
const HOME = '127.0.0.1';
const ELSEWHERE = '127.0.0.21';
const PASSWORD = 'correct horse battery';
const LIMIT = 3;

interface Attempt {
  protocol: 'imap' | 'ldap';
  source: string;
  login: string;
  password: string;
}

describe('login throttle across IMAP and LDAP', () => {
  let env: TestEnv;
  let directory: Directory;
  const daemons: Daemon[] = [];
  let imapPort: number;
  let ldapPort: number;
  const users: Record<string, User> = {};

  const attempt = async (...list: Attempt[]): Promise<boolean[]> => {
    const r = await runCommand('/usr/bin/python3', [path.join(REPO_ROOT, 'test/login-attempts.py'), String(imapPort), String(ldapPort)], { input: JSON.stringify(list), timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.out);
    return JSON.parse(r.stdout) as boolean[];
  };
  const one = async (a: Attempt): Promise<boolean> => (await attempt(a))[0]!;

  before(async () => {
    imapPort = await freePort();
    ldapPort = await freePort();
    const ports: Record<string, string> = { HEARTH_IMAP_PORT: String(imapPort), HEARTH_LDAP_PORT: String(ldapPort) };
    for (const name of ['HEARTH_IMAPS_PORT', 'HEARTH_LDAPS_PORT', 'HEARTH_SIEVE_PORT']) ports[name] = String(await freePort());
    env = await testEnv({ env: { ...ports, HEARTH_LOGIN_MAX_FAILURES_PER_USER: String(LIMIT), HEARTH_LOGIN_MAX_FAILURES_PER_ADDRESS: '1000', HEARTH_LOG_LEVEL: 'info' } });
    directory = await Directory.open(env.config, { watch: true });
    for (const name of ['erin', 'frank']) {
      users[name] = await directory.addUser({ username: name, email: `${name}@example.test`, password: PASSWORD });
      await directory.addMailbox(`${name}@example.test`, name);
    }
    for (const d of ['imap', 'ldap']) daemons.push(await startDaemon(`services/${d}/src/main.ts`, env.env, (out) => out.includes('"msg":"ready"'), 60_000));
  });
  after(async () => {
    for (const d of daemons) await d.stop();
    await directory?.close();
    await env?.cleanup();
  });

  it('counts every spelling of one account together: padded, upper-case, email, id', async () => {
    const erin = users.erin!;
    const spellings = [' erin', 'ERIN@Example.TEST', erin.id];
    assert.deepEqual(await attempt(...spellings.map((login) => ({ protocol: 'imap' as const, source: ELSEWHERE, login, password: 'wrong password' }))), [false, false, false]);
    assert.equal(await one({ protocol: 'imap', source: ELSEWHERE, login: 'erin', password: PASSWORD }), false, 'locked out after three failures however erin was spelt');
    assert.equal(await one({ protocol: 'ldap', source: ELSEWHERE, login: 'erin', password: PASSWORD }), false, 'on LDAP too');
    const events = await directory.store.listAudit({ username: 'erin', limit: 2 });
    assert.deepEqual(events.map((e) => e.detail), ['throttled', 'throttled']);
  });

  it('counts an unknown login on its normalised form', async () => {
    assert.deepEqual(
      await attempt(...['ghost', ' Ghost', 'GHOST '].map((login) => ({ protocol: 'imap' as const, source: ELSEWHERE, login, password: 'wrong password' }))),
      [false, false, false],
    );
    await one({ protocol: 'imap', source: ELSEWHERE, login: 'ghost', password: 'wrong password' });
    const [last] = await directory.store.listAudit({ username: 'ghost', limit: 1 });
    assert.equal(last?.detail, 'throttled');
  });

  it("failures from elsewhere lock the account out of new places, not out of the address it signs in from", async () => {
    assert.equal(await one({ protocol: 'imap', source: HOME, login: 'frank', password: PASSWORD }), true);
    // somebody else, who knows frank's username, on another protocol
    const attack = Array.from({ length: LIMIT + 2 }, () => ({ protocol: 'ldap' as const, source: ELSEWHERE, login: 'frank', password: 'guess' }));
    assert.ok((await attempt(...attack)).every((ok) => !ok));
    assert.equal(await one({ protocol: 'imap', source: ELSEWHERE, login: 'frank', password: PASSWORD }), false, 'still refused from the attacker’s address');
    assert.equal(await one({ protocol: 'imap', source: HOME, login: 'frank', password: PASSWORD }), true, 'frank still gets his mail at home');
    assert.equal(await one({ protocol: 'ldap', source: HOME, login: 'frank', password: PASSWORD }), true, 'and binds over LDAP from there');
    // the user's own address keeps its own limit: guessing from there is throttled as before
    const guesses = Array.from({ length: LIMIT }, () => ({ protocol: 'imap' as const, source: HOME, login: 'frank', password: 'guess' }));
    assert.ok((await attempt(...guesses)).every((ok) => !ok));
    assert.equal(await one({ protocol: 'imap', source: HOME, login: 'frank', password: PASSWORD }), false, 'three failures from home lock home out too');
  });
});
