import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { REPO_ROOT, waitFor } from '@hearth/testkit';
import * as OTPAuth from 'otpauth';
import type { Browser } from 'playwright-core';
import { axeViolations, launchChromium, PASSWORD, signIn, startConsoleStack, type ConsoleStack } from './stack.ts';

/**
 * Headless Chromium through the console, with JavaScript off as a browser without it would be:
 * the admin creates a user and a group, installs an app and reads its env; the new user signs
 * in, changes the password, and enrols TOTP with a code computed here from the page’s QR key;
 * signing out of the console ends the provider’s single sign-on session as well.
 */

let stack: ConsoleStack;
let browser: Browser;

before(async () => {
  stack = await startConsoleStack(async (d) => {
    await d.addUser({ username: 'root', email: 'root@example.test', password: PASSWORD, displayName: 'Rosa Root', role: 'admin' });
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await stack?.close();
});

test('an admin creates a user and a group, installs an app and sees its env (no JavaScript)', async () => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await signIn(context, stack, 'root');
  assert.equal(await page.title(), 'Welcome, Rosa Root · Hearth');

  await page.getByRole('link', { name: 'Users' }).click();
  await page.getByRole('link', { name: 'Add a user' }).click();
  await page.getByLabel('Username').fill('nina');
  await page.getByLabel('Email', { exact: true }).fill('nina@example.test');
  await page.getByLabel('Display name').fill('Nina Simone');
  await page.getByLabel('Password').fill('first password 1');
  await page.getByRole('button', { name: 'Create user' }).click();
  await page.getByText('User created.').waitFor();
  await waitFor(() => stack.directory.userByUsername('nina'));
  assert.equal(stack.directory.userByUsername('nina')!.displayName, 'Nina Simone');

  // The same username again: refused by name, nothing written.
  await page.goto(`${stack.url}/admin/users/new`);
  await page.getByLabel('Username').fill('nina');
  await page.getByLabel('Email', { exact: true }).fill('other@example.test');
  await page.getByLabel('Password').fill('first password 1');
  await page.getByRole('button', { name: 'Create user' }).click();
  assert.match(await page.getByRole('alert').innerText(), /username already exists/);
  assert.equal(stack.directory.userByEmail('other@example.test'), undefined);
  // A weak password: the CLI's rule, by name, nothing written.
  await page.getByLabel('Username').fill('weakling');
  await page.getByLabel('Email', { exact: true }).fill('weak@example.test');
  await page.getByLabel('Password').fill('short');
  await page.getByRole('button', { name: 'Create user' }).click();
  assert.match(await page.getByRole('alert').innerText(), /at least 8 characters/);
  assert.equal(stack.directory.userByUsername('weakling'), undefined);

  await page.getByRole('link', { name: 'Groups' }).click();
  await page.getByLabel('Group name').fill('staff');
  await page.getByRole('button', { name: 'Create group' }).click();
  await page.getByText('Group created.').waitFor();
  await page.getByLabel('Add a member (username or email)').fill('nina');
  await page.getByRole('button', { name: 'Add member' }).click();
  await page.getByText('Member added.').waitFor();
  await waitFor(() => stack.directory.groupByName('staff')?.memberIds.includes(stack.directory.userByUsername('nina')!.id));

  await page.getByRole('link', { name: 'Apps' }).click();
  await page.getByLabel('CloudronManifest.json').setInputFiles(path.join(REPO_ROOT, 'examples/manifests/wiki.json'));
  await page.getByLabel('App id').fill('wiki');
  await page.getByLabel('Domain').fill('wiki.example.test');
  await page.getByLabel('Access').fill('groups:staff');
  await page.getByRole('button', { name: 'Install' }).click();
  await page.getByText('App installed.').waitFor();
  const app = (await waitFor(() => stack.directory.app('wiki')))!;
  const password = app.credentials.ldap!.bindPassword!;
  const body = await page.locator('main').innerText();
  assert.match(body, /CLOUDRON_LDAP_BIND_DN\s+cn=wiki,ou=apps,dc=cloudron/);
  assert.ok(!body.includes(password), 'secrets are masked until asked');
  await page.getByRole('button', { name: 'Show secrets' }).click();
  assert.ok((await page.locator('main').innerText()).includes(password));
  await context.close();
});

test('the new user signs in, changes the password and enrols TOTP (no JavaScript)', async () => {
  await waitFor(() => stack.directory.groupByName('staff')?.memberIds.length === 1, 30000);
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await signIn(context, stack, 'nina', 'first password 1');
  assert.match(await page.locator('main').innerText(), /wiki/i, 'the dashboard lists the app nina may use');

  // Profile: display name and fallback email.
  await page.getByRole('link', { name: 'Profile' }).click();
  await page.getByLabel('Display name').fill('Nina S.');
  await page.getByLabel('Fallback email').fill('nina.home@example.org');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Profile saved.').waitFor();
  await waitFor(() => stack.directory.userByUsername('nina')!.fallbackEmail === 'nina.home@example.org');
  assert.equal(stack.directory.userByUsername('nina')!.displayName, 'Nina S.');

  await page.getByRole('link', { name: 'Password' }).click();
  await page.getByLabel('Current password').fill('wrong password');
  await page.getByLabel('New password', { exact: true }).fill('second password 2');
  await page.getByLabel('New password again').fill('second password 2');
  await page.getByRole('button', { name: 'Change password' }).click();
  assert.match(await page.getByRole('alert').innerText(), /current password is not right/);

  await page.getByLabel('Current password').fill('first password 1');
  await page.getByLabel('New password', { exact: true }).fill('short');
  await page.getByLabel('New password again').fill('short');
  await page.getByRole('button', { name: 'Change password' }).click();
  assert.match(await page.getByRole('alert').innerText(), /at least 8 characters/);

  const oldHash = stack.directory.userByUsername('nina')!.passwordHash;
  await page.getByLabel('Current password').fill('first password 1');
  await page.getByLabel('New password', { exact: true }).fill('second password 2');
  await page.getByLabel('New password again').fill('second password 2');
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByText('Password changed.').waitFor();
  // The test's own directory sees the console daemon's write after its next reload.
  await waitFor(() => stack.directory.userByUsername('nina')!.passwordHash !== oldHash);
  const check = await stack.directory.authenticate({ login: 'nina', password: 'second password 2', protocol: 'cli' });
  assert.equal(check.ok, true);

  await page.getByRole('link', { name: 'Two-factor' }).click();
  await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
  const qr = page.getByRole('img', { name: /QR code/ });
  assert.match((await qr.getAttribute('src')) ?? '', /^data:image\/svg\+xml;base64,/);
  const secret = (await page.locator('#totp-secret').innerText()).replace(/\s+/g, '');
  const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), digits: 6, period: 30, algorithm: 'SHA1' });
  await page.getByLabel('Code from your app').fill(String((Number(totp.generate()) + 1) % 1_000_000).padStart(6, '0'));
  await page.getByRole('button', { name: 'Turn on' }).click();
  assert.match(await page.getByRole('alert').innerText(), /not valid/);
  await page.getByLabel('Code from your app').fill(totp.generate());
  await page.getByRole('button', { name: 'Turn on' }).click();
  await page.getByText('Two-factor authentication is on.').waitFor();
  await waitFor(() => stack.directory.userByUsername('nina')!.totpSecret === secret);

  // Next sign-in (a fresh browser) asks for the code.
  const fresh = await browser.newContext({ javaScriptEnabled: false });
  const again = await signIn(fresh, stack, 'nina', 'second password 2', () => totp.generate({ timestamp: Date.now() + 30_000 }));
  assert.match(await again.title(), /Welcome/);
  await fresh.close();
  await context.close();
});

test('signing out of the console ends the provider’s session too: the next visit asks for the password (no JavaScript)', async () => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await signIn(context, stack, 'root');
  const rootId = stack.directory.userByUsername('root')!.id;
  const count = async (kind: string): Promise<number> => (await stack.directory.store.kvFindWhere(kind, kind === 'console.session' ? 'userId' : 'accountId', rootId)).length;
  const before = { provider: await count('oidc:Session'), console: await count('console.session') };
  assert.ok(before.provider >= 1 && before.console >= 1);

  await page.getByRole('button', { name: 'Sign out' }).click();
  // RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): the provider asks, then ends its session.
  await page.waitForURL((u) => u.origin === stack.issuer);
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.waitForURL(`${stack.url}/signed-out`);
  assert.deepEqual({ provider: await count('oidc:Session'), console: await count('console.session') }, { provider: before.provider - 1, console: before.console - 1 });

  await page.goto(`${stack.url}/`);
  await page.waitForURL((u) => u.origin === stack.issuer);
  await page.getByLabel('Username or email').waitFor();
  await context.close();
});

test('an admin sets up two-factor for a user, as hearth user totp enable: the key is shown once and a code from it signs the user in', async () => {
  await stack.directory.addUser({ username: 'omar', email: 'omar@example.test', password: PASSWORD });
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await signIn(context, stack, 'root');
  await page.goto(`${stack.url}/admin/users/omar`);
  await page.getByRole('button', { name: 'Set up two-factor for this user' }).click();
  await page.getByText(/Two-factor authentication is on for omar/).waitFor();
  assert.match((await page.getByRole('img', { name: /QR code/ }).getAttribute('src')) ?? '', /^data:image\/svg\+xml;base64,/);
  const secret = (await page.locator('#totp-secret').innerText()).replace(/\s+/g, '');
  await waitFor(() => stack.directory.userByUsername('omar')!.totpSecret === secret);
  // Not offered again while it is on: the page has no button, and a post is refused with the reason.
  await page.goto(`${stack.url}/admin/users/omar`);
  assert.equal(await page.getByRole('button', { name: 'Set up two-factor for this user' }).count(), 0);
  const csrf = (await page.locator('input[name=csrf]').first().getAttribute('value'))!;
  const again = await context.request.post(`${stack.url}/admin/users/omar/totp`, { form: { csrf } });
  assert.equal(again.status(), 400);
  assert.match(await again.text(), /already has two-factor authentication/);
  assert.equal(stack.directory.userByUsername('omar')!.totpSecret, secret);
  await context.close();

  const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), digits: 6, period: 30, algorithm: 'SHA1' });
  const omar = await browser.newContext({ javaScriptEnabled: false });
  const signedIn = await signIn(omar, stack, 'omar', PASSWORD, () => totp.generate());
  assert.match(await signedIn.title(), /Welcome/);
  await omar.close();

  // axe-core on the page that shows the key (a form's answer: reached by posting, in a browser with JavaScript for axe).
  await stack.directory.addUser({ username: 'olga', email: 'olga@example.test', password: PASSWORD });
  const withJs = await browser.newContext();
  const admin = await signIn(withJs, stack, 'root');
  await admin.goto(`${stack.url}/admin/users/olga`);
  await admin.getByRole('button', { name: 'Set up two-factor for this user' }).click();
  await admin.getByText(/Two-factor authentication is on for olga/).waitFor();
  assert.deepEqual(await axeViolations(admin), []);
  await withJs.close();
});
