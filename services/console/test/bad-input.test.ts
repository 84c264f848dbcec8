import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hearth, waitFor } from '@hearth/testkit';
import { escapeHtml } from '@hearth/web';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, PASSWORD, signIn, startConsoleStack, type ConsoleStack } from './stack.ts';

/**
 * What the console refuses: forged or cross-site forms, non-admins on admin pages, an invalid
 * manifest, another user's session, a disabled user's open session, and garbage bodies —
 * each with a clear answer, nothing written, and the daemon still serving.
 */

let stack: ConsoleStack;
let browser: Browser;
let admin: { context: BrowserContext; page: Page; csrf: string };
let user: { context: BrowserContext; page: Page; csrf: string };

async function csrfOf(page: Page): Promise<string> {
  return (await page.locator('input[name=csrf]').first().getAttribute('value'))!;
}

before(async () => {
  stack = await startConsoleStack(async (d) => {
    await d.addUser({ username: 'root', email: 'root@example.test', password: PASSWORD, role: 'admin' });
    await d.addUser({ username: 'bob', email: 'bob@example.test', password: PASSWORD, displayName: 'Bob' });
    await d.addUser({ username: 'secret-sam', email: 'sam@hidden.example.test', password: PASSWORD });
    // the test's browser stands in for a TLS proxy on loopback: its X-Forwarded-For names the client
  }, { env: { HEARTH_TRUSTED_PROXIES: '127.0.0.1' } });
  browser = await launchChromium();
  for (const name of ['root', 'bob'] as const) {
    const context = await browser.newContext();
    const page = await signIn(context, stack, name);
    const entry = { context, page, csrf: await csrfOf(page) };
    if (name === 'root') admin = entry;
    else user = entry;
  }
});

after(async () => {
  await browser?.close();
  await stack?.close();
});

test('a form with a forged CSRF token, or from another origin, is refused and writes nothing', async () => {
  const forged = await admin.context.request.post(`${stack.url}/admin/users/new`, { form: { csrf: randomBytes(32).toString('base64url'), username: 'mallory', email: 'm@example.test', password: PASSWORD } });
  assert.equal(forged.status(), 403);
  assert.match(await forged.text(), /not sent from this console page/);
  const missing = await admin.context.request.post(`${stack.url}/admin/users/new`, { form: { username: 'mallory', email: 'm@example.test', password: PASSWORD } });
  assert.equal(missing.status(), 403);
  const crossSite = await admin.context.request.post(`${stack.url}/admin/users/new`, { headers: { Origin: 'https://evil.example' }, form: { csrf: admin.csrf, username: 'mallory', email: 'm@example.test', password: PASSWORD } });
  assert.equal(crossSite.status(), 403);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(stack.directory.userByUsername('mallory'), undefined);
});

test('a non-admin gets 403 on every admin page, with no directory data in the answer', async () => {
  for (const p of ['/admin/users', '/admin/users/secret-sam', '/admin/groups', '/admin/apps', '/admin/mailboxes', '/admin/queue', '/admin/audit', '/admin/status', '/admin/apps/hearth-console', '/admin/import', '/admin/users/secret-sam/ssh-keys', '/admin/backups', '/admin/backups/restore?snapshot=0123456789abcdef']) {
    const res = await user.context.request.get(`${stack.url}${p}`, { maxRedirects: 0 });
    assert.equal(res.status(), 403, p);
    const body = await res.text();
    assert.doesNotMatch(body, /secret-sam|hidden\.example|root@example/, p);
  }
  const res = await user.context.request.post(`${stack.url}/admin/users/new`, { form: { csrf: user.csrf, username: 'mallory', email: 'm@example.test', password: PASSWORD, role: 'admin' } });
  assert.equal(res.status(), 403);
  const promote = await user.context.request.post(`${stack.url}/admin/users/bob`, { form: { csrf: user.csrf, email: 'bob@example.test', role: 'admin' } });
  assert.equal(promote.status(), 403);
  for (const p of ['/admin/backups', '/admin/backups/restore', '/admin/backups/verify', '/admin/backups/prune', '/admin/users/bob/totp']) {
    const job = await user.context.request.post(`${stack.url}${p}`, { form: { csrf: user.csrf, snapshot: '0123456789abcdef', what: 'app', app: 'hearth-console', confirm: 'yes' } });
    assert.equal(job.status(), 403, p);
  }
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(stack.directory.userByUsername('mallory'), undefined);
  assert.equal(stack.directory.userByUsername('bob')!.role, 'user');
  assert.equal(stack.directory.userByUsername('bob')!.totpSecret, null);
});

test('an invalid manifest is refused by name, as the CLI does, and nothing is installed', async () => {
  const cases: [string, RegExp][] = [
    ['{"addons": {"nosuch": {}}}', /unknown addon: nosuch/],
    ['{"addons": {"ldap": {"bogus": 1}}}', /invalid ldap addon option: unknown option bogus/],
    ['not json', /manifest is not valid JSON/],
  ];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'console-manifest-'));
  for (const [text, message] of cases) {
    const res = await admin.context.request.post(`${stack.url}/admin/apps`, {
      multipart: { csrf: admin.csrf, id: 'broken', domain: 'broken.example.test', access: '', upstream: '', manifest: { name: 'CloudronManifest.json', mimeType: 'application/json', buffer: Buffer.from(text) } },
    });
    assert.equal(res.status(), 400);
    const body = await res.text();
    assert.match(body, message);
    // The CLI's one line for the same file ("hearth: <message>") is on the page, word for word (HTML-escaped).
    const file = path.join(dir, 'CloudronManifest.json');
    fs.writeFileSync(file, text);
    const cli = await hearth(['app', 'install', file, '--id', 'broken', '--domain', 'broken.example.test'], { env: stack.env.env });
    assert.notEqual(cli.code, 0);
    const line = /^hearth: (.+)$/m.exec(cli.stderr)?.[1] ?? cli.stderr;
    assert.match(line, message);
    assert.ok(body.includes(escapeHtml(line)), `the page does not say "${line}"`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  const unknownGroup = await admin.context.request.post(`${stack.url}/admin/apps`, {
    multipart: { csrf: admin.csrf, id: 'broken', domain: 'broken.example.test', access: 'groups:nobody', upstream: '', manifest: { name: 'm.json', mimeType: 'application/json', buffer: Buffer.from('{"addons":{"ldap":{}}}') } },
  });
  assert.match(await unknownGroup.text(), /no such group: nobody/);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(stack.directory.app('broken'), undefined);
});

test("a user cannot end someone else's session by naming its handle", async () => {
  const sessionsPage = await admin.context.request.get(`${stack.url}/sessions`);
  assert.equal(sessionsPage.status(), 200);
  const rootSessions = await stack.directory.store.kvFindWhere('console.session', 'userId', stack.directory.userByUsername('root')!.id);
  assert.equal(rootSessions.length, 1);
  const res = await user.context.request.post(`${stack.url}/sessions/end`, { form: { csrf: user.csrf, kind: 'console', handle: rootSessions[0]!.key } });
  assert.equal(res.status(), 200);
  assert.equal((await stack.directory.store.kvFindWhere('console.session', 'userId', stack.directory.userByUsername('root')!.id)).length, 1);
});

test('garbage bodies get 400 and the console keeps serving', async () => {
  const url = `${stack.url}/profile`;
  const headers = { 'Content-Type': 'multipart/form-data; boundary=xyz' };
  for (const data of [randomBytes(2000), Buffer.from('--xyz\r\nno headers end'), Buffer.from('--xyz--'), Buffer.alloc(300 * 1024, 'a')]) {
    const res = await user.context.request.post(url, { headers, data });
    assert.ok([400, 403].includes(res.status()), String(res.status()));
  }
  const json = await user.context.request.post(url, { headers: { 'Content-Type': 'application/json' }, data: '{}' });
  assert.equal(json.status(), 400);
  const ok = await user.context.request.get(`${stack.url}/profile`);
  assert.equal(ok.status(), 200);
});

test('a disabled user with an open console session is signed out within a second', async () => {
  const before = await user.context.request.get(`${stack.url}/profile`, { maxRedirects: 0 });
  assert.equal(before.status(), 200);
  await stack.directory.setActive('bob', false);
  const t0 = Date.now();
  await waitFor(async () => (await user.context.request.get(`${stack.url}/profile`, { maxRedirects: 0 })).status() === 303, 5000, 50);
  assert.ok(Date.now() - t0 < 1000, `signed out after ${Date.now() - t0} ms`);
  await waitFor(async () => (await stack.directory.store.kvFindWhere('console.session', 'userId', stack.directory.userByUsername('bob')!.id)).length === 0, 2000);
  const post = await user.context.request.post(`${stack.url}/profile`, { form: { csrf: user.csrf, displayName: 'Hacked' } });
  assert.equal(post.status(), 401);
  assert.equal(stack.directory.userByUsername('bob')!.displayName, 'Bob');
});

test('behind a proxy in HEARTH_TRUSTED_PROXIES, throttling and audit see the client it names, not the proxy', async () => {
  const res = await admin.context.request.post(`${stack.url}/password`, {
    headers: { 'X-Forwarded-For': '203.0.113.50, 198.51.100.23' },
    form: { csrf: admin.csrf, username: 'root', current: 'not the password', password: 'new-password-123', confirm: 'new-password-123' },
  });
  assert.equal(res.status(), 400);
  assert.match(await res.text(), /current password is not right/);
  const events = await stack.directory.store.listAudit({ protocol: 'console', limit: 50 });
  const refused = events.find((e) => !e.ok && e.username === 'root');
  assert.equal(refused?.remote, '198.51.100.23');
});
