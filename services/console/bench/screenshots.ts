/**
 * README screenshots (`node --import tsx services/console/bench/screenshots.ts`): headless
 * Chromium on a seeded console, small PNGs into services/console/screenshots/.
 */
import path from 'node:path';
import { REPO_ROOT } from '@hearth/testkit';
import { launchChromium, PASSWORD, signIn, startConsoleStack } from '../test/stack.ts';

const out = path.join(REPO_ROOT, 'services/console/screenshots');
const stack = await startConsoleStack(async (d) => {
  await d.addUser({ username: 'root', email: 'root@example.test', password: PASSWORD, displayName: 'Rosa Root', role: 'admin' });
  for (const [u, n] of [['nina', 'Nina Simone'], ['otis', 'Otis Redding'], ['aretha', 'Aretha Franklin']]) await d.addUser({ username: u!, email: `${u}@example.test`, password: PASSWORD, displayName: n });
  await d.addGroup('staff');
});
const browser = await launchChromium();
try {
  const context = await browser.newContext({ viewport: { width: 1000, height: 640 } });
  const page = await signIn(context, stack, 'root');
  for (const [route, name] of [['/admin/users', 'users'], ['/2fa', 'two-factor'], ['/admin/apps', 'apps']] as const) {
    await page.goto(`${stack.url}${route}`);
    if (route === '/2fa') await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
    await page.screenshot({ path: path.join(out, `${name}.png`) });
  }
} finally {
  await browser.close();
  await stack.close();
}
