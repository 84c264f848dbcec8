/**
 * README screenshots (`node --import tsx services/console/bench/screenshots.ts`): headless
 * Chromium on a seeded console, small PNGs (1000×640 viewport) into services/console/screenshots/.
 * The app page's container section needs the Docker engine (DOCKER_HOST as for the tests); the
 * Backups page gets a snapshot and a finished job in a temporary restic repository.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { busyboxImage, derivedImage, docker, dockerEnv, hearth, REPO_ROOT, removeAppLeftovers, requireDocker, waitFor } from '@hearth/testkit';
import type { Page } from 'playwright-core';
import { launchChromium, PASSWORD, signIn, startConsoleStack } from '../test/stack.ts';

const out = path.join(REPO_ROOT, 'services/console/screenshots');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'console-shots-'));
const passwordFile = path.join(tmp, 'restic-password');
fs.writeFileSync(passwordFile, 'correct horse battery staple\n', { mode: 0o600 });
requireDocker();
const image = derivedImage(busyboxImage(), { cmd: 'echo "wiki listening on :8000" && echo "GET / 200" && exec sleep 3600' });
const stack = await startConsoleStack(
  async (d) => {
    await d.addUser({ username: 'root', email: 'root@example.test', password: PASSWORD, displayName: 'Rosa Root', role: 'admin' });
    for (const [u, n] of [['nina', 'Nina Simone'], ['otis', 'Otis Redding'], ['aretha', 'Aretha Franklin']]) await d.addUser({ username: u!, email: `${u}@example.test`, password: PASSWORD, displayName: n });
    await d.addGroup('staff');
    for (const u of ['nina', 'otis']) await d.addMember('staff', u);
    await d.addMailbox('nina@example.test', 'nina');
    await d.addMailbox('sales@shop.example.test', 'otis');
  },
  { env: { ...dockerEnv(), HEARTH_BACKUP_REPOSITORY: path.join(tmp, 'repo'), HEARTH_BACKUP_PASSWORD_FILE: passwordFile, HEARTH_BACKUP_SCHEDULE: 'off' } },
);
const browser = await launchChromium();
try {
  const manifest = path.join(tmp, 'CloudronManifest.json');
  fs.writeFileSync(manifest, JSON.stringify({ title: 'Wiki', version: '1.4.0', httpPort: 8000, addons: { tls: {}, ldap: {} } }));
  const installed = await hearth(['app', 'install', manifest, '--id', 'wiki', '--domain', 'wiki.example.test', '--access', 'groups:staff', '--image', image], { env: { ...stack.env.env, ...dockerEnv() } });
  if (installed.code !== 0) throw new Error(installed.stderr);

  const context = await browser.newContext({ viewport: { width: 1000, height: 640 } });
  const page = await signIn(context, stack, 'root');
  const shot = (name: string): Promise<Buffer> => page.screenshot({ path: path.join(out, `${name}.png`) });
  /** The page scrolled so the heading is at the top (sections below the fold). */
  const at = async (heading: string): Promise<void> => page.getByRole('heading', { name: heading, exact: true }).evaluate((e) => e.scrollIntoView());
  const visit = async (route: string): Promise<Page> => {
    await page.goto(`${stack.url}${route}`);
    return page;
  };

  await visit('/');
  await shot('dashboard');
  await visit('/2fa');
  await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
  await shot('two-factor');
  await visit('/sessions');
  await shot('sessions');
  await visit('/admin/users');
  await shot('users');
  await visit('/admin/users/nina');
  await shot('user');
  await visit('/admin/groups/staff');
  await shot('group');
  await visit('/admin/apps');
  await shot('apps');
  await waitFor(async () => (await visit('/admin/apps/wiki?lines=5')).getByText('GET / 200').isVisible(), 30000, 250);
  await at('Container');
  await shot('app-container');
  await at('Certificate');
  await shot('app-certificate');
  await visit('/admin/mailboxes');
  await at('DKIM DNS records');
  await shot('dkim');
  await visit('/admin/backups');
  await page.getByRole('button', { name: 'Create backup now' }).click();
  await waitFor(async () => !(await (await visit('/admin/backups')).locator('#job-state').innerText()).includes('running since'), 120000, 250);
  await shot('backups');
  await visit('/admin/audit');
  await shot('audit');
  await visit('/admin/status');
  await shot('status');
} finally {
  await browser.close();
  await stack.close();
  removeAppLeftovers('wiki');
  docker(['rmi', image]);
  fs.rmSync(tmp, { recursive: true, force: true });
}
