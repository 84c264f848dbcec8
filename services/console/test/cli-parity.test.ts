import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '@hearth/log';
import { runnableApp } from '@hearth/provisioning';
import { AppRuntime, appCertsDir, CERT_FILE, Scheduler } from '@hearth/runtime';
import { busyboxImage, derivedImage, docker, dockerEnv, hearth, removeAppLeftovers, requireDocker, waitFor } from '@hearth/testkit';
import type { Browser, Page } from 'playwright-core';
import { axeViolations, launchChromium, PASSWORD, signIn, startConsoleStack, type ConsoleStack } from './stack.ts';

/**
 * What the CLI does, from the console without JavaScript: user and group import (dry run, the
 * per-line report, all or nothing) and SSH keys (self-service and admin), with fingerprints as
 * ssh-keygen prints them; an app installed with an image runs in its container (the CLI's deployer),
 * is started, stopped, its log read and uninstalled with its container, on a real Docker engine; a backup created in a temporary restic repository and listed (read back with restic
 * itself); a non-admin gets 403 and no data.
 */

let stack: ConsoleStack;
let browser: Browser;
let tmp: string;
let repo: string;
let passwordFile: string;
let image: string;
const appId = `cp${Date.now().toString(36)}`;

/** A fresh ed25519 key from ssh-keygen: its public line and the fingerprint ssh-keygen -l prints. */
function sshKey(comment: string): { line: string; fingerprint: string } {
  const file = path.join(tmp, comment);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  const fingerprint = execFileSync('ssh-keygen', ['-l', '-f', `${file}.pub`], { encoding: 'utf8' }).split(' ')[1]!;
  return { line: fs.readFileSync(`${file}.pub`, 'utf8').trim(), fingerprint };
}

/** axe-core's serious violations on a page as root sees it, in a context with JavaScript on (axe runs in the page). */
async function axeOn(url: string): Promise<string[]> {
  const context = await browser.newContext();
  try {
    const page = await signIn(context, stack, 'root');
    await page.goto(url);
    return await axeViolations(page);
  } finally {
    await context.close();
  }
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'console-parity-'));
  repo = path.join(tmp, 'repo');
  passwordFile = path.join(tmp, 'restic-password');
  fs.writeFileSync(passwordFile, 'correct horse battery staple\n', { mode: 0o600 });
  requireDocker();
  image = derivedImage(busyboxImage(), { cmd: 'echo "hello from $CLOUDRON_APP_DOMAIN" && exec sleep 300' });
  stack = await startConsoleStack(
    async (d) => {
      await d.addUser({ username: 'root', email: 'root@example.test', password: PASSWORD, role: 'admin' });
      await d.addUser({ username: 'bob', email: 'bob@example.test', password: PASSWORD });
    },
    { env: { ...dockerEnv(), HEARTH_BACKUP_REPOSITORY: repo, HEARTH_BACKUP_PASSWORD_FILE: passwordFile, HEARTH_BACKUP_SCHEDULE: 'off', HEARTH_BACKUP_KEEP_DAILY: '1', HEARTH_BACKUP_KEEP_WEEKLY: '1', HEARTH_BACKUP_KEEP_MONTHLY: '1' } },
  );
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await stack?.close();
  removeAppLeftovers(appId);
  if (image) docker(['rmi', image]);
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('an admin imports users and groups: dry run first, then the good rows, each line reported', async () => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await signIn(context, stack, 'root');
  const csv = path.join(tmp, 'people.csv');
  fs.writeFileSync(csv, 'username,email,displayName,password\ncarol,carol@example.test,Carol C,long enough password\nbob,bob2@example.test,Dup,long enough password\ndave,not-an-email,Dave,long enough password\nerin,erin@example.test,Erin,\n');

  await page.goto(`${stack.url}/admin/import`);
  await page.getByLabel('CSV or LDIF file').setInputFiles(csv);
  await page.getByRole('button', { name: 'Import' }).click();
  const report = page.getByRole('region', { name: /Import report/ });
  await report.waitFor();
  const rows = async (): Promise<string[][]> => (await report.getByRole('row').allInnerTexts()).slice(1).map((r) => r.split('\t').map((c) => c.trim()));
  const dry = await rows();
  assert.deepEqual(dry.map((r) => [r[0], r[1], r[2]]), [
    ['2', 'carol', 'would be created'],
    ['3', 'bob', 'refused'],
    ['4', 'dave', 'refused'],
    ['5', 'erin', 'would be created'],
  ]);
  assert.match(dry[1]![3]!, /username already exists/);
  assert.match(await page.getByRole('status').innerText(), /dry run, nothing written/);
  assert.equal(stack.directory.userByUsername('carol'), undefined);

  // All or nothing: one bad row, nothing written.
  await page.getByLabel('CSV or LDIF file').setInputFiles(csv);
  await page.getByLabel('Dry run: check and report, write nothing').uncheck();
  await page.getByLabel('All or nothing: import nothing if any row is refused').check();
  await page.getByRole('button', { name: 'Import' }).click();
  await report.waitFor();
  assert.match(await page.getByRole('status').innerText(), /nothing imported/);
  assert.equal(stack.directory.userByUsername('carol'), undefined);

  // The form keeps its choices; the good rows go in once all or nothing is off.
  await page.getByLabel('CSV or LDIF file').setInputFiles(csv);
  assert.equal(await page.getByLabel('Dry run: check and report, write nothing').isChecked(), false);
  await page.getByLabel('All or nothing: import nothing if any row is refused').uncheck();
  await page.getByRole('button', { name: 'Import' }).click();
  await report.waitFor();
  assert.deepEqual((await rows()).map((r) => r[2]), ['created', 'refused', 'refused', 'created']);
  await waitFor(() => stack.directory.userByUsername('erin'));
  assert.equal(stack.directory.userByUsername('carol')!.displayName, 'Carol C');

  const ldif = path.join(tmp, 'groups.ldif');
  fs.writeFileSync(ldif, 'dn: cn=crew,ou=groups,dc=example\nobjectClass: groupOfNames\ncn: crew\nmember: uid=carol,ou=users,dc=example\nmember: uid=erin,ou=users,dc=example\n\ndn: cn=ghosts,ou=groups,dc=example\ncn: ghosts\nmemberUid: nobody\n');
  await page.getByLabel('What the file holds').selectOption('groups');
  await page.getByLabel('CSV or LDIF file').setInputFiles(ldif);
  await page.getByLabel('Dry run: check and report, write nothing').uncheck();
  await page.getByRole('button', { name: 'Import' }).click();
  await report.waitFor();
  const groups = await rows();
  assert.deepEqual(groups.map((r) => [r[0], r[1], r[2]]), [
    ['1', 'crew', 'created'],
    ['7', 'ghosts', 'refused'],
  ]);
  assert.match(groups[1]![3]!, /no such user: nobody/);
  await waitFor(() => stack.directory.groupByName('crew'));
  assert.equal(stack.directory.groupByName('crew')!.memberIds.length, 2);
  await context.close();
});

test('a user adds and deletes their own SSH key; an admin manages anyone’s; fingerprints as ssh-keygen prints them', async () => {
  const key = sshKey('bob-laptop');
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await signIn(context, stack, 'bob');
  await page.getByRole('link', { name: 'SSH keys' }).click();
  await page.getByLabel('Public key').fill(key.line);
  await page.getByRole('button', { name: 'Add key' }).click();
  await page.getByText('SSH key added.').waitFor();
  assert.match(await page.getByRole('region', { name: /SSH keys/ }).innerText(), new RegExp(key.fingerprint.replace(/[+/]/g, '\\$&')));
  assert.deepEqual((await stack.directory.sshKeys('bob')).map((k) => k.fingerprint), [key.fingerprint]);

  // The same key again, and garbage: refused by name, nothing added.
  await page.getByLabel('Public key').fill(key.line);
  await page.getByRole('button', { name: 'Add key' }).click();
  assert.match(await page.getByRole('alert').innerText(), /already has the key/);
  await page.getByLabel('Public key').fill('ssh-ed25519 not-base64!');
  await page.getByRole('button', { name: 'Add key' }).click();
  await page.getByRole('alert').waitFor();
  assert.equal((await stack.directory.sshKeys('bob')).length, 1);

  // Not an admin: another user's keys and the import page are refused, with no data.
  for (const p of ['/admin/users/root/ssh-keys', '/admin/import']) {
    const res = await context.request.get(`${stack.url}${p}`);
    assert.equal(res.status(), 403, p);
    assert.doesNotMatch(await res.text(), /root@example|fingerprint/i);
  }

  await page.getByRole('button', { name: `Delete key ${key.fingerprint}` }).click();
  await page.getByText('SSH key deleted.').waitFor();
  assert.equal((await stack.directory.sshKeys('bob')).length, 0);
  await context.close();

  const admin = await browser.newContext({ javaScriptEnabled: false });
  const adminPage = await signIn(admin, stack, 'root');
  const other = sshKey('bob-desk');
  await adminPage.goto(`${stack.url}/admin/users/bob`);
  await adminPage.getByRole('link', { name: 'SSH keys' }).last().click();
  await adminPage.getByLabel('Public key').fill(other.line);
  await adminPage.getByRole('button', { name: 'Add key' }).click();
  await adminPage.getByText('SSH key added.').waitFor();
  assert.deepEqual((await stack.directory.sshKeys('bob')).map((k) => [k.fingerprint, k.comment]), [[other.fingerprint, 'bob-desk']]);
  await adminPage.getByRole('button', { name: `Delete key ${other.fingerprint}` }).click();
  await adminPage.getByText('SSH key deleted.').waitFor();
  assert.equal((await stack.directory.sshKeys('bob')).length, 0);
  await admin.close();
});

test('an app installed from the console runs in a container as from the CLI; start, stop, log; uninstall removes the container', async () => {
  const manifest = path.join(tmp, 'CloudronManifest.json');
  fs.writeFileSync(manifest, JSON.stringify({ title: 'Busybox', version: '1.0.0', httpPort: 8000, addons: { scheduler: { nightly: { schedule: '* * * * *', command: 'echo nightly ran' } } } }));
  const env = { ...stack.env.env, ...dockerEnv() };
  type CliTask = { name: string; schedule: string; command: string; lastRun: { due: string; state: string; exitCode: number | null } | null };
  const cli = async (): Promise<{ state: string; image: string; tasks: CliTask[] }> => JSON.parse((await hearth(['app', 'status', appId, '--json'], { env })).stdout);
  const containers = (): string[] => docker(['ps', '-a', '-q', '--filter', `label=hearth.app=${appId}`]).split('\n').filter(Boolean);

  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await signIn(context, stack, 'root');
  await page.goto(`${stack.url}/admin/apps`);
  await page.getByLabel('CloudronManifest.json').setInputFiles(manifest);
  await page.getByLabel('App id').fill(appId);
  await page.getByLabel('Domain').fill(`${appId}.example.test`);
  await page.getByLabel('Image').fill(image);
  await page.getByRole('button', { name: 'Install' }).click();
  await page.getByText('App installed.').waitFor();
  // The CLI's deployer ran: the container exists before the page answers, from the image given.
  assert.equal(containers().length, 1);
  const deployed = await cli();
  assert.equal(deployed.state, 'running');
  assert.equal(deployed.image, image);

  const status = page.getByRole('region', { name: 'Container status' });
  const stateCell = status.getByRole('row', { name: /^State/ }).getByRole('cell');
  await waitFor(async () => {
    await page.goto(`${stack.url}/admin/apps/${appId}?lines=5`);
    return (await page.getByRole('region', { name: 'Log' }).innerText()).includes(`hello from ${appId}.example.test`);
  }, 30000, 250);
  assert.equal(await stateCell.innerText(), 'running');
  assert.equal(await status.getByRole('row', { name: /^Container/ }).getByRole('cell').innerText(), `hearth-app-${appId}`);
  await page.getByText(`hearth app exec ${appId} -- sh`, { exact: true }).waitFor();

  // Its scheduled task, run once by the runtime daemon's Scheduler: listed as hearth app status lists
  // it, and its log as hearth app logs --task shows it.
  const scheduler = new Scheduler(new AppRuntime(stack.env.config), () => [{ app: runnableApp(stack.env.config, stack.directory, appId), tasks: [{ name: 'nightly', schedule: '* * * * *', command: 'echo nightly ran' }] }], createLogger('test', 'silent'), 1800);
  await scheduler.tick(new Date(Math.floor(Date.now() / 60000) * 60000));
  scheduler.close();
  const task = (await waitFor(async () => {
    const [t] = (await cli()).tasks;
    return t?.lastRun?.state === 'exited' ? t : undefined;
  }, 30000, 250))!;
  await page.goto(`${stack.url}/admin/apps/${appId}?lines=5`);
  const taskRow = (await page.getByRole('region', { name: 'Scheduled tasks' }).getByRole('row').allInnerTexts()).slice(1);
  assert.deepEqual(taskRow.map((r) => r.split('\t').map((c) => c.trim())), [[task.name, task.schedule, task.command, task.lastRun!.due, 'exited', String(task.lastRun!.exitCode)]]);
  await page.getByLabel('Whose log').selectOption('nightly');
  await page.getByRole('button', { name: 'Show', exact: true }).click();
  const taskLog = await hearth(['app', 'logs', appId, '--task', 'nightly'], { env });
  assert.equal(taskLog.stdout.trim(), 'nightly ran');
  assert.equal((await page.getByRole('region', { name: 'Log' }).innerText()).trim(), taskLog.stdout.trim());
  assert.deepEqual(await axeOn(page.url()), []);

  await page.getByRole('button', { name: 'Stop', exact: true }).click();
  await page.getByText('App stopped.').waitFor();
  assert.equal(await stateCell.innerText(), 'exited');
  assert.equal((await cli()).state, 'exited');

  // A non-admin cannot start it: 403 and nothing about the app.
  const bob = await browser.newContext({ javaScriptEnabled: false });
  await signIn(bob, stack, 'bob');
  for (const p of [`/admin/apps/${appId}`, '/admin/backups']) {
    const res = await bob.request.get(`${stack.url}${p}`);
    assert.equal(res.status(), 403, p);
    assert.doesNotMatch(await res.text(), new RegExp(`hearth-app-${appId}|${repo}|hello from`));
  }
  await bob.close();

  await page.getByRole('button', { name: 'Start', exact: true }).click();
  await page.getByText('App started.').waitFor();
  assert.equal((await cli()).state, 'running');

  await page.getByRole('link', { name: 'Uninstall…' }).click();
  await page.getByLabel(/Type the app id/).fill(appId);
  await page.getByRole('button', { name: 'Uninstall' }).click();
  await page.getByText('App uninstalled.').waitFor();
  assert.deepEqual(containers(), []);
  await waitFor(() => stack.directory.app(appId) === undefined, 5000, 50);
  await context.close();
});

/** The backup job's outcome once it has ended: the page reloaded until its state is no longer "running". */
async function jobOutcome(page: Page): Promise<{ state: string; result: string[] }> {
  const state = page.locator('#job-state');
  await waitFor(async () => {
    await page.goto(`${stack.url}/admin/backups`);
    return !(await state.innerText()).includes('running since');
  }, 120000, 250);
  const result = page.getByRole('list', { name: 'Job result' });
  return { state: await state.innerText(), result: (await result.count()) ? await result.getByRole('listitem').allInnerTexts() : [] };
}

const restic = (args: string[]): string => execFileSync('restic', [...args, '--no-cache'], { env: { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD_FILE: passwordFile }, encoding: 'utf8' });

test('backups from the console, as hearth backup create|list|verify|restore|prune: each runs as a job the page follows; a restore needs the snapshot id typed', async () => {
  const manifest = path.join(tmp, 'keep-manifest.json');
  fs.writeFileSync(manifest, JSON.stringify({ title: 'Keep', addons: {} }));
  const installed = await hearth(['app', 'install', manifest, '--id', 'keep', '--domain', 'keep.example.test'], { env: stack.env.env });
  assert.equal(installed.code, 0, installed.stderr);
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await signIn(context, stack, 'root');
  await page.getByRole('link', { name: 'Backups' }).click();
  assert.match(await page.locator('main').innerText(), /The snapshots cannot be listed now: .*no restic repository at/);
  await page.getByRole('button', { name: 'Create backup now' }).click();
  // The request returns before the backup ends: the page names the job.
  await page.getByText('The job has started; this page shows its state until it ends.').waitFor();
  assert.match(await page.locator('#job-state').innerText(), /^Backup of the platform: (running since|finished at)/);
  const created = await jobOutcome(page);
  assert.match(created.state, /^Backup of the platform: finished at/);
  // restic itself reads the repository: one snapshot, and the page and the job name it.
  const snapshots = JSON.parse(restic(['snapshots', '--json'])) as { id: string; short_id: string }[];
  assert.equal(snapshots.length, 1);
  assert.match(created.result.join('\n'), new RegExp(`snapshot ${snapshots[0]!.short_id}`));
  const rows = (await page.getByRole('region', { name: 'Snapshots' }).getByRole('row').allInnerTexts()).slice(1);
  assert.equal(rows.length, 1);
  assert.match(rows[0]!, new RegExp(`^${snapshots[0]!.short_id}\\t.+\\tplatform\\t`));
  assert.deepEqual(await axeOn(page.url()), []);

  await page.getByRole('button', { name: 'Verify repository' }).click();
  assert.deepEqual((await jobOutcome(page)).result, ['repository checked: no errors were found']);

  // The app goes (as hearth app uninstall), then comes back from the snapshot; a wrong confirmation changes nothing.
  assert.equal((await hearth(['app', 'uninstall', 'keep'], { env: stack.env.env })).code, 0);
  await waitFor(() => stack.directory.app('keep') === undefined, 5000, 50);
  await page.getByRole('link', { name: `Restore from snapshot ${snapshots[0]!.short_id}…` }).click();
  assert.deepEqual(await axeOn(page.url()), []);
  await page.getByLabel(/One app, in place/).check();
  await page.getByLabel(/^App id/).fill('keep');
  await page.getByLabel(/^Type the snapshot id/).fill('00000000');
  await page.getByRole('button', { name: 'Restore' }).click();
  await page.getByText(`Type ${snapshots[0]!.short_id} exactly to confirm.`).waitFor();
  assert.equal(await page.getByLabel(/^App id/).inputValue(), 'keep');
  await page.getByLabel(/^Type the snapshot id/).fill(snapshots[0]!.short_id);
  await page.getByRole('button', { name: 'Restore' }).click();
  const restored = await jobOutcome(page);
  assert.match(restored.state, new RegExp(`^Restore of app keep from snapshot ${snapshots[0]!.short_id}: finished at`), restored.result.join('\n'));
  assert.ok(restored.result.includes('the directory record of app keep'), restored.result.join('\n'));
  await waitFor(() => stack.directory.app('keep')?.domain === 'keep.example.test', 5000, 50);

  // Extract only: the snapshot's files in a folder, nothing applied.
  const folder = path.join(tmp, 'extracted');
  await page.goto(`${stack.url}/admin/backups/restore?snapshot=${snapshots[0]!.id}`);
  await page.getByLabel(/Only extract the snapshot/).check();
  await page.getByLabel(/^Folder on the server/).fill(folder);
  await page.getByLabel(/^Type the snapshot id/).fill(snapshots[0]!.short_id);
  await page.getByRole('button', { name: 'Restore' }).click();
  assert.match((await jobOutcome(page)).state, /finished at/);
  assert.ok(fs.existsSync(path.join(folder, 'apps', 'keep', 'app.json')));

  // Two snapshots of the app on one day, then prune keeping one a day (the stack's HEARTH_BACKUP_KEEP_*):
  // the older of the two goes, the platform's stays; restic agrees with the job.
  for (let i = 0; i < 2; i++) {
    await page.getByLabel('What to back up').selectOption('keep');
    await page.getByRole('button', { name: 'Create backup now' }).click();
    assert.match((await jobOutcome(page)).state, /^Backup of app keep: finished at/);
  }
  assert.equal((JSON.parse(restic(['snapshots', '--json'])) as unknown[]).length, 3);
  await page.getByLabel('Delete the snapshots beyond these numbers').check();
  await page.getByRole('button', { name: 'Prune snapshots' }).click();
  assert.deepEqual((await jobOutcome(page)).result, ['kept 2 snapshot(s), removed 1']);
  const left = JSON.parse(restic(['snapshots', '--json'])) as { id: string }[];
  assert.equal(left.length, 2);
  assert.ok(left.some((s) => s.id === snapshots[0]!.id), 'the platform snapshot is kept');
  await context.close();
});

test('the mailboxes page shows each signed domain’s DKIM record, the line hearth mail dkim prints', async () => {
  await stack.directory.addMailbox('sales@shop.example.test', 'bob');
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await signIn(context, stack, 'root');
  await page.goto(`${stack.url}/admin/mailboxes`);
  const table = page.getByRole('region', { name: 'DKIM DNS records' });
  for (const domain of [stack.env.config.domain, 'shop.example.test']) {
    const printed = await hearth(['mail', 'dkim', domain], { env: stack.env.env });
    assert.equal(printed.code, 0, printed.stderr);
    assert.equal(await table.getByRole('row', { name: new RegExp(`^${domain.replace(/\./g, '\\.')}\\b`) }).getByRole('cell').nth(1).innerText(), printed.stdout.trim());
  }
  await context.close();
});

test('an admin rotates the OIDC signing keys from the status page, as hearth oidc rotate-keys: the provider publishes the new key beside the old', async () => {
  const kids = async (): Promise<string[]> => ((await (await fetch(`${stack.issuer}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid).sort();
  const before = await kids();
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await signIn(context, stack, 'root');
  await page.goto(`${stack.url}/admin/status`);
  await page.getByRole('button', { name: 'Rotate signing keys' }).click();
  await page.getByText('New signing keys made; tokens signed with the previous ones stay valid.').waitFor();
  let after: string[] = [];
  await waitFor(async () => (after = await kids()).length > before.length, 30000, 250);
  for (const kid of before) assert.ok(after.includes(kid), `the previous key ${kid} is still published`);
  await context.close();
});

test('an admin installs a tls app’s certificate from its page, as hearth app cert: a key of another certificate is refused and nothing is written', async () => {
  const manifest = path.join(tmp, 'tls-manifest.json');
  fs.writeFileSync(manifest, JSON.stringify({ title: 'TLS app', addons: { tls: {} } }));
  const installed = await hearth(['app', 'install', manifest, '--id', 'tlsapp', '--domain', 'tls.example.test'], { env: stack.env.env });
  assert.equal(installed.code, 0, installed.stderr);
  const pair = (name: string): { cert: string; key: string } => {
    const [cert, key] = [path.join(tmp, `${name}.crt`), path.join(tmp, `${name}.key`)];
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=tls.example.test', '-days', '1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    return { cert, key };
  };
  const [good, other] = [pair('good'), pair('other')];
  const onDisk = path.join(appCertsDir(stack.env.dataDir, 'tlsapp'), CERT_FILE);

  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await signIn(context, stack, 'root');
  const upload = async (cert: string, key: string): Promise<void> => {
    await page.goto(`${stack.url}/admin/apps/tlsapp`);
    await page.getByLabel('Certificate (PEM, chain after it)').setInputFiles(cert);
    await page.getByLabel('Private key (PEM)').setInputFiles(key);
    await page.getByRole('button', { name: 'Install certificate' }).click();
  };
  await upload(good.cert, other.key);
  await page.getByText('the key does not belong to the certificate').waitFor();
  assert.notEqual(fs.existsSync(onDisk) && fs.readFileSync(onDisk, 'utf8'), fs.readFileSync(good.cert, 'utf8'));
  await upload(good.cert, good.key);
  await page.getByText('Certificate installed; the app reads it when it starts.').waitFor();
  assert.equal(fs.readFileSync(onDisk, 'utf8'), fs.readFileSync(good.cert, 'utf8'));
  await context.close();
});
