import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { generateSecret } from '@hearth/directory';
import { freePort, runCommand, startDaemon, waitFor, type Daemon } from '@hearth/testkit';
import type { Browser } from 'playwright-core';
import { launchChromium, PASSWORD, signIn, startConsoleStack, type ConsoleStack } from './stack.ts';

/**
 * A change made in the console reaches another daemon as one made with the CLI does, through the
 * store's change notification: services/ldap, asked with OpenLDAP's ldapsearch and ldapwhoami,
 * sees a user the console created and refuses them once the console disabled them. How long each
 * took is reported (the target is a second), not asserted: the machine is shared.
 */

const APP_PASSWORD = generateSecret();
let stack: ConsoleStack;
let ldap: Daemon;
let browser: Browser;
let ldapUrl: string;

before(async () => {
  const [ldapPort, ldapsPort] = [await freePort(), await freePort()];
  ldapUrl = `ldap://127.0.0.1:${ldapPort}`;
  stack = await startConsoleStack(
    async (d) => {
      await d.addUser({ username: 'root', email: 'root@example.test', password: PASSWORD, role: 'admin' });
      await d.putApp({ id: 'chat', domain: 'chat.example.test', manifest: { addons: { ldap: {} } }, access: null, upstream: null, credentials: { ldap: { bindDn: 'cn=chat,ou=apps,dc=cloudron', bindPassword: APP_PASSWORD } }, createdAt: new Date().toISOString() }, []);
    },
    { env: { HEARTH_LDAP_PORT: String(ldapPort), HEARTH_LDAPS_PORT: String(ldapsPort) } },
  );
  ldap = await startDaemon('services/ldap/src/main.ts', stack.env.env, (out) => out.includes('"msg":"ready"'), 60000);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await ldap?.stop();
  await stack?.close();
});

async function ldapFinds(username: string): Promise<boolean> {
  const r = await runCommand('ldapsearch', ['-x', '-LLL', '-H', ldapUrl, '-D', 'cn=chat,ou=apps,dc=cloudron', '-w', APP_PASSWORD, '-b', 'ou=users,dc=cloudron', `(username=${username})`, 'mail'], { timeoutMs: 10000 });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.includes(`mail: ${username}@example.test`);
}

async function ldapBinds(username: string, password: string): Promise<boolean> {
  return (await runCommand('ldapwhoami', ['-x', '-H', ldapUrl, '-D', `cn=${username},ou=users,dc=cloudron`, '-w', password], { timeoutMs: 10000 })).code === 0;
}

test('a user created in the console is in LDAP, and disabling them there refuses their LDAP bind', async (t: TestContext) => {
  assert.equal(await ldapFinds('lena'), false);
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await signIn(context, stack, 'root');
  await page.goto(`${stack.url}/admin/users/new`);
  await page.getByLabel('Username').fill('lena');
  await page.getByLabel('Email', { exact: true }).fill('lena@example.test');
  await page.getByLabel('Password').fill('lena password 1');
  await page.getByRole('button', { name: 'Create user' }).click();
  await page.getByText('User created.').waitFor();
  let t0 = Date.now();
  await waitFor(() => ldapFinds('lena'), 30000, 50);
  t.diagnostic(`created: LDAP lists the user ${Date.now() - t0} ms after the console answered`);
  assert.equal(await ldapBinds('lena', 'lena password 1'), true);

  await page.goto(`${stack.url}/admin/users/lena`);
  await page.getByRole('button', { name: 'Disable' }).click();
  await page.getByText('User disabled; their sessions are ended.').waitFor();
  t0 = Date.now();
  await waitFor(async () => !(await ldapBinds('lena', 'lena password 1')), 30000, 50);
  t.diagnostic(`disabled: LDAP refuses the bind ${Date.now() - t0} ms after the console answered`);
  await context.close();
});
