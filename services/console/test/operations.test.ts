import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { AuditEvent } from '@hearth/directory';
import { freePort, hearth, MANIFESTS, parseEnvLines, runCommand, startDaemon, waitFor, type Daemon } from '@hearth/testkit';
import type { Browser, Page } from 'playwright-core';
import { swaks } from '../../smtp/test/helpers.ts';
import { launchChromium, PASSWORD, signIn, startConsoleStack, type ConsoleStack } from './stack.ts';

/**
 * The console's operations pages, without JavaScript, against the real daemons: the mail queue
 * (a message deferred by the SMTP daemon, retried and deleted from the page, as `hearth mail
 * queue` then shows it); the audit log filtered by user, protocol, time and result (exactly the rows `hearth audit`
 * gives for the same filter, after failed logins at the OIDC provider and at services/ldap); an app's
 * credentials rotated from its page (the old LDAP bind and SMTP passwords and OIDC client secret
 * refused by the running daemons, the new ones taken). Expected values come from the CLI and the daemons, never from the page.
 */

let stack: ConsoleStack;
let smtp: Daemon;
let ldap: Daemon;
let ldapUrl: string;
let browser: Browser;

const ALICE = { username: 'alice', email: 'alice@example.test', password: 'alice-password-1' };

before(async () => {
  // The relay is a loopback port where nothing listens: a message for a remote domain stays deferred.
  const deadRelay = await freePort();
  const ldapPort = await freePort();
  ldapUrl = `ldap://127.0.0.1:${ldapPort}`;
  stack = await startConsoleStack(
    async (d) => {
      await d.addUser({ username: 'root', email: 'root@example.test', password: PASSWORD, role: 'admin' });
      await d.addUser(ALICE);
      await d.addMailbox(ALICE.email, ALICE.username);
    },
    {
      env: {
        HEARTH_SMTP_PORT: String(await freePort()),
        HEARTH_SMTPS_PORT: String(await freePort()),
        HEARTH_SMTP_INBOUND_PORT: String(await freePort()),
        HEARTH_SMTP_RELAY: `smtp://127.0.0.34:${deadRelay}`,
        // an hour between attempts: only a retry asked for makes the next one happen during the test
        HEARTH_SMTP_RETRY_DELAYS: '3600',
        HEARTH_LDAP_PORT: String(ldapPort),
        HEARTH_LDAPS_PORT: String(await freePort()),
      },
    },
  );
  [smtp, ldap] = await Promise.all([
    startDaemon('services/smtp/src/main.ts', stack.env.env, (o) => o.includes('"msg":"ready"')),
    startDaemon('services/ldap/src/main.ts', stack.env.env, (o) => o.includes('"msg":"ready"')),
  ]);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await smtp?.stop();
  await ldap?.stop();
  await stack?.close();
});

interface CliQueueEntry {
  id: string;
  from: string;
  recipients: { address: string; status: string; attempts: number; nextAttempt: string | null; lastError: string | null }[];
}

async function cliQueue(): Promise<CliQueueEntry[]> {
  const r = await hearth(['mail', 'queue', '--json'], { env: stack.env.env });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as CliQueueEntry[];
}

test('the mail queue page retries a deferred message (one more attempt, as hearth mail queue shows) and deletes it from the spool', async () => {
  const sent = await swaks(['--port', stack.env.env.HEARTH_SMTP_PORT!, '--auth', 'PLAIN', '--auth-user', ALICE.username, '--auth-password', ALICE.password, '--from', ALICE.email, '--to', 'far@remote.test', '--h-Subject', 'queued-from-console-test']);
  assert.equal(sent.code, 0, sent.out);
  const [queued] = (await waitFor(async () => {
    const q = await cliQueue();
    return q.length === 1 && q[0]!.recipients[0]!.attempts === 1 ? q : undefined;
  }, 60000, 250))!;
  const first = queued!.recipients[0]!;
  assert.equal(first.status, 'pending');

  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await signIn(context, stack, 'root');
  await page.goto(`${stack.url}/admin/queue`);
  const row = page.getByRole('row', { name: new RegExp(queued!.id) });
  assert.match(await row.innerText(), new RegExp(`far@remote\\.test: pending, 1 attempt\\b`));

  await page.getByRole('button', { name: `Retry ${queued!.id}` }).click();
  await page.getByText('Delivery will be attempted now.').waitFor();
  // The daemon took the retry: a second attempt, failed again, and the next one an hour after it.
  const retried = (await waitFor(async () => (await cliQueue()).find((e) => e.id === queued!.id && e.recipients[0]!.attempts === 2)?.recipients[0], 60000, 250))!;
  assert.equal(retried.status, 'pending');
  assert.ok(Date.parse(retried.nextAttempt!) > Date.parse(first.nextAttempt!), `next attempt moved: ${first.nextAttempt} → ${retried.nextAttempt}`);
  await page.goto(`${stack.url}/admin/queue`);
  assert.match(await row.innerText(), /far@remote\.test: pending, 2 attempts\b/);

  await page.getByRole('button', { name: `Delete ${queued!.id}` }).click();
  await page.getByText('Message removed from the queue.').waitFor();
  assert.deepEqual(await cliQueue(), []);
  const spool = path.join(stack.env.dataDir, 'queue', 'msg');
  assert.deepEqual(fs.existsSync(spool) ? fs.readdirSync(spool).filter((f) => f.includes(queued!.id)) : [], []);
  assert.match(await page.locator('main').innerText(), /The queue is empty\./);
  await context.close();
});

async function cli(args: string[]): Promise<string> {
  const r = await hearth(args, { env: stack.env.env });
  assert.equal(r.code, 0, `hearth ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** ldapwhoami's exit code: 0 bound, 49 invalid credentials (null: it timed out). */
/** Rotate credentials on the app's page; the app's env as the CLI then prints it. */
async function rotateFromPage(page: Page, appId: string): Promise<Record<string, string>> {
  await page.goto(`${stack.url}/admin/apps/${appId}`);
  await page.getByRole('button', { name: 'Rotate credentials' }).click();
  await page.getByText('New credentials issued').waitFor();
  return parseEnvLines(await cli(['app', 'env', appId]));
}

async function ldapBind(dn: string, password: string): Promise<number | null> {
  return (await runCommand('ldapwhoami', ['-x', '-H', ldapUrl, '-D', dn, '-w', password], { timeoutMs: 10000 })).code;
}

test('the audit log page, filtered by user, protocol, time and result, shows exactly the rows hearth audit gives for that filter', async () => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  // A failed sign-in at the provider's login page, and a failed LDAP bind, both as alice.
  const login = await context.newPage();
  await login.goto(`${stack.url}/`);
  await login.waitForURL((u) => u.origin === stack.issuer);
  await login.getByLabel('Username or email').fill(ALICE.username);
  await login.getByLabel('Password').fill('not her password');
  await login.getByRole('button', { name: 'Sign in', exact: true }).click();
  const cliAudit = async (filter: string[]): Promise<AuditEvent[]> => JSON.parse(await cli(['audit', ...filter, '--limit', '100', '--json'])) as AuditEvent[];
  const failure = (protocol: string): Promise<AuditEvent | undefined> => waitFor(async () => (await cliAudit(['--user', ALICE.username, '--protocol', protocol])).find((e) => !e.ok), 30000, 250);
  // one after the other, so the time filter has a boundary between them
  const oidcFailure = (await failure('oidc'))!;
  assert.equal(await ldapBind(`cn=${ALICE.username},ou=users,dc=cloudron`, 'not her password either'), 49);
  const ldapFailure = (await failure('ldap'))!;
  assert.ok(oidcFailure.at < ldapFailure.at, `${oidcFailure.at} before ${ldapFailure.at}`);
  const alices = await cliAudit(['--user', ALICE.username]);
  assert.ok(alices.filter((e) => e.protocol === 'oidc' || e.protocol === 'ldap').every((e) => !e.ok), 'alice never signed in at the provider or with LDAP');

  const page = await signIn(context, stack, 'root');
  await page.goto(`${stack.url}/admin/audit`);
  const shown = async (): Promise<string[][]> => (await page.locator('main table tbody tr').allInnerTexts()).map((r) => r.split('\t').map((c) => c.trim()));
  const expected = (events: AuditEvent[]): string[][] => events.map((e) => [e.at, e.username ?? '', e.protocol, e.appId ?? '', e.remote ?? '', `${e.ok ? 'ok' : 'failed'}${e.detail ? ` ${e.detail}` : ''}`]);
  const filter = async (user: string, protocol: string, o: { since?: string; until?: string; result?: string } = {}): Promise<void> => {
    await page.getByLabel('User', { exact: true }).fill(user);
    await page.getByLabel('Protocol').selectOption(protocol);
    await page.getByLabel('Result').selectOption(o.result ?? '');
    await page.getByLabel(/^From/).fill(o.since ?? '');
    await page.getByLabel(/^Before/).fill(o.until ?? '');
    await page.getByLabel('At most').fill('100');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL((u) => u.searchParams.get('user') === user && u.searchParams.get('protocol') === protocol && u.searchParams.get('since') === (o.since ?? ''));
  };

  await filter(ALICE.username, '');
  assert.deepEqual(await shown(), expected(await cliAudit(['--user', ALICE.username])));
  await filter(ALICE.username, 'ldap');
  const aliceLdap = await cliAudit(['--user', ALICE.username, '--protocol', 'ldap']);
  assert.equal(aliceLdap.length, 1);
  assert.deepEqual(await shown(), expected(aliceLdap));
  // root's own console sign-in is there, and no one else's row
  await filter('', 'console');
  const consoleEvents = await cliAudit(['--protocol', 'console']);
  assert.ok(consoleEvents.some((e) => e.username === 'root' && e.ok && e.detail === 'oidc sign-in'));
  assert.deepEqual(await shown(), expected(consoleEvents));
  await filter('nobody-at-all', '');
  assert.deepEqual(await shown(), []);

  // By time: from the LDAP failure on (typed without a zone: UTC) it is there and the earlier OIDC one is not; before it, the reverse.
  const boundary = ldapFailure.at.replace(/Z$/, '');
  await filter(ALICE.username, '', { since: boundary });
  const since = await cliAudit(['--user', ALICE.username, '--since', ldapFailure.at]);
  assert.ok(since.some((e) => e.protocol === 'ldap' && !e.ok) && !since.some((e) => e.protocol === 'oidc'));
  assert.ok(since.every((e) => e.at >= ldapFailure.at));
  assert.deepEqual(await shown(), expected(since));
  await filter(ALICE.username, '', { until: boundary });
  const before = await cliAudit(['--user', ALICE.username, '--until', ldapFailure.at]);
  assert.ok(before.some((e) => e.protocol === 'oidc' && !e.ok) && !before.some((e) => e.protocol === 'ldap'));
  assert.deepEqual(await shown(), expected(before));
  // By result: only the failures, and only the successes
  await filter(ALICE.username, '', { result: 'failed' });
  assert.deepEqual(await shown(), expected(alices.filter((e) => !e.ok)));
  await filter('', 'console', { result: 'ok' });
  assert.deepEqual(await shown(), expected(consoleEvents.filter((e) => e.ok)));
  // A time that is not one: said on the page, and no rows
  await filter(ALICE.username, '', { since: 'yesterday-ish' });
  await page.getByText('"yesterday-ish" is not a time').waitFor();
  assert.deepEqual(await shown(), []);
  await context.close();
});

test('rotating an app’s credentials from its page: the running LDAP, SMTP and OIDC daemons refuse the old secrets and take the new ones', async () => {
  await cli(['app', 'install', path.join(MANIFESTS, 'wiki.json'), '--id', 'wiki', '--domain', 'wiki.example.test']);
  const old = parseEnvLines(await cli(['app', 'env', 'wiki']));
  const ldapBinds = (vars: Record<string, string>): Promise<number | null> => ldapBind(vars.CLOUDRON_LDAP_BIND_DN!, vars.CLOUDRON_LDAP_BIND_PASSWORD!);
  const smtpSends = async (vars: Record<string, string>): Promise<number | null> =>
    (await swaks(['--port', vars.CLOUDRON_MAIL_SMTP_PORT!, '--auth', 'PLAIN', '--auth-user', vars.CLOUDRON_MAIL_SMTP_USERNAME!, '--auth-password', vars.CLOUDRON_MAIL_SMTP_PASSWORD!, '--from', vars.CLOUDRON_MAIL_FROM!, '--to', ALICE.email])).code;
  await waitFor(async () => (await ldapBinds(old)) === 0, 30000, 250);
  assert.equal(await smtpSends(old), 0);
  // An OIDC client's secret, asked of the running provider's token endpoint with a code that was never
  // issued: a client it knows gets invalid_grant, a wrong secret invalid_client (RFC 6749 §5.2).
  await cli(['app', 'install', path.join(MANIFESTS, 'helpdesk.json'), '--id', 'helpdesk', '--domain', 'helpdesk.example.test']);
  const oldOidc = parseEnvLines(await cli(['app', 'env', 'helpdesk']));
  const tokenError = async (vars: Record<string, string>): Promise<string> => {
    const basic = Buffer.from(`${encodeURIComponent(vars.CLOUDRON_OIDC_CLIENT_ID!)}:${encodeURIComponent(vars.CLOUDRON_OIDC_CLIENT_SECRET!)}`).toString('base64');
    const res = await fetch(vars.CLOUDRON_OIDC_TOKEN_ENDPOINT!, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: 'never-issued', redirect_uri: 'https://helpdesk.example.test/auth/openid/callback' }),
    });
    return ((await res.json()) as { error: string }).error;
  };
  await waitFor(async () => (await tokenError(oldOidc)) === 'invalid_grant', 30000, 250);

  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await signIn(context, stack, 'root');
  const rotated = await rotateFromPage(page, 'wiki');
  assert.notEqual(rotated.CLOUDRON_LDAP_BIND_PASSWORD, old.CLOUDRON_LDAP_BIND_PASSWORD);
  assert.notEqual(rotated.CLOUDRON_MAIL_SMTP_PASSWORD, old.CLOUDRON_MAIL_SMTP_PASSWORD);
  await waitFor(async () => (await ldapBinds(rotated)) === 0, 30000, 250);
  assert.equal(await ldapBinds(old), 49, 'the old bind password is refused');
  await waitFor(async () => (await smtpSends(rotated)) === 0, 30000, 250);
  assert.notEqual(await smtpSends(old), 0, 'the old SMTP password is refused');

  const rotatedOidc = await rotateFromPage(page, 'helpdesk');
  assert.equal(rotatedOidc.CLOUDRON_OIDC_CLIENT_ID, oldOidc.CLOUDRON_OIDC_CLIENT_ID);
  assert.notEqual(rotatedOidc.CLOUDRON_OIDC_CLIENT_SECRET, oldOidc.CLOUDRON_OIDC_CLIENT_SECRET);
  await waitFor(async () => (await tokenError(rotatedOidc)) === 'invalid_grant', 30000, 250);
  assert.equal(await tokenError(oldOidc), 'invalid_client', 'the old client secret is refused');
  await context.close();
});
