import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '@hearth/testkit';
import type { Browser } from 'playwright-core';
import { axeViolations as audit, launchChromium, PAGE_TIMEOUT_MS, PASSWORD, signIn, startConsoleStack, type ConsoleStack } from './stack.ts';

/** axe-core on every console page (and the provider's login page), at desktop and phone widths: no serious or critical violation. */

let stack: ConsoleStack;
let browser: Browser;

before(async () => {
  stack = await startConsoleStack(async (d) => {
    await d.addUser({ username: 'root', email: 'root@example.test', password: PASSWORD, displayName: 'Rosa Root', role: 'admin' });
    await d.addUser({ username: 'nina', email: 'nina@example.test', password: PASSWORD, displayName: 'Nina Simone' });
    await d.addGroup('staff');
    await d.addMember('staff', 'nina');
    await d.addMailbox('nina@example.test', 'nina');
  });
  const { installApp } = await import('@hearth/provisioning');
  await installApp(stack.env.config, stack.directory, { manifestText: fs.readFileSync(path.join(REPO_ROOT, 'examples/manifests/wiki.json'), 'utf8'), id: 'wiki', domain: 'wiki.example.test', access: ['groups:staff'] });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await stack?.close();
});

const PAGES = [
  '/',
  '/profile',
  '/password',
  '/2fa',
  '/passkeys',
  '/sessions',
  '/ssh-keys',
  '/admin/users',
  '/admin/users?q=nina',
  '/admin/users/new',
  '/admin/users/nina',
  '/admin/users/nina/ssh-keys',
  '/admin/import',
  '/admin/groups',
  '/admin/groups/staff',
  '/admin/apps',
  '/admin/apps/wiki',
  '/admin/apps/wiki/uninstall',
  '/admin/mailboxes',
  '/admin/queue',
  '/admin/audit',
  '/admin/status',
  '/admin/backups',
  '/admin/backups/restore?snapshot=0123456789abcdef',
];

for (const viewport of [
  { name: 'desktop', width: 1280, height: 900 },
  { name: 'phone', width: 375, height: 740 },
]) {
  test(`no serious accessibility violation on any page (${viewport.name})`, async () => {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    page.setDefaultTimeout(PAGE_TIMEOUT_MS);
    await page.goto(`${stack.url}/`);
    await page.waitForURL((u) => u.origin === stack.issuer);
    const found: string[] = (await audit(page)).map((v) => `provider login page: ${v}`);
    await context.close();

    const signed = await browser.newContext({ viewport });
    const p = await signIn(signed, stack, 'root');
    for (const route of PAGES) {
      const res = await p.goto(`${stack.url}${route}`);
      assert.equal(res?.status(), 200, route);
      for (const v of await audit(p)) found.push(`${route}: ${v}`);
      // Nothing wider than the screen but tables, which scroll in their own box.
      const overflow = (await p.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth')) as number;
      assert.ok(overflow <= 0, `${route} scrolls sideways by ${overflow}px at ${viewport.width}px`);
    }
    // This stack has no backup repository: the backups page says what to set.
    await p.goto(`${stack.url}/admin/backups`);
    assert.match(await p.locator('main').innerText(), /No backup repository is configured\. Set HEARTH_BACKUP_REPOSITORY .+ and HEARTH_BACKUP_PASSWORD_FILE/);
    await signed.close();
    assert.deepEqual(found, []);
  });
}
