import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { supervisorStatusFile, type SupervisorStatus } from '@hearth/supervisor/services';
import { freePort, hearth, startDaemon, waitFor, type Daemon } from '@hearth/testkit';
import type { Browser } from 'playwright-core';
import { launchChromium, PASSWORD, signIn, startConsoleStack, type ConsoleStack } from './stack.ts';

/**
 * The status page against what the platform itself reports: `npm start`'s supervisor runs ldap and
 * smtp (the stack runs oidc and the console on their own), one of its children is killed and
 * restarted; each row's state and version is what `hearth status --json` scrapes from the daemon's
 * metrics, and its restarts what the supervisor recorded.
 */

let stack: ConsoleStack;
let supervisor: Daemon;
let browser: Browser;

/** The services this test runs; the others have no port open here (or a system daemon's: not compared). */
const RUNNING = ['ldap', 'smtp', 'oidc', 'console'];
const SUPERVISED = ['ldap', 'smtp'];

before(async () => {
  const ports: Record<string, string> = {};
  for (const name of ['LDAP', 'LDAPS', 'SMTP', 'SMTPS', 'SMTP_INBOUND', ...RUNNING.map((s) => `${s.toUpperCase()}_METRICS`)]) ports[`HEARTH_${name}_PORT`] = String(await freePort());
  stack = await startConsoleStack(
    async (d) => {
      await d.addUser({ username: 'root', email: 'root@example.test', password: PASSWORD, role: 'admin' });
    },
    { env: { ...ports, HEARTH_BACKUP_SCHEDULE: 'off' } },
  );
  supervisor = await startDaemon('services/supervisor/src/main.ts', { ...stack.env.env, HEARTH_SERVICES: SUPERVISED.join(',') }, (o) => o.includes('Hearth is starting'));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await supervisor?.stop();
  await stack?.close();
});

interface CliStatus {
  service: string;
  up: boolean;
  version: string | null;
}

async function cliStatus(): Promise<CliStatus[]> {
  const r = await hearth(['status', '--json'], { env: stack.env.env });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as CliStatus[];
}

const supervisorStatus = (): SupervisorStatus | undefined => {
  try {
    return JSON.parse(fs.readFileSync(supervisorStatusFile(stack.env.dataDir), 'utf8')) as SupervisorStatus;
  } catch {
    return undefined;
  }
};

test('the status page shows each running service up with the version it reports, and the restarts the supervisor counted', async () => {
  const upEverywhere = async (): Promise<CliStatus[] | undefined> => {
    const all = await cliStatus();
    return RUNNING.every((s) => all.find((x) => x.service === s)?.up) ? all : undefined;
  };
  await waitFor(upEverywhere, 60000, 500);
  // A crash of the supervised LDAP daemon: the supervisor starts it again and counts it.
  const killed = supervisorStatus()!.services.ldap!.pid!;
  process.kill(killed, 'SIGKILL');
  await waitFor(() => {
    const ldap = supervisorStatus()?.services.ldap;
    return ldap && ldap.pid !== killed && ldap.restarts === 1;
  }, 60000, 250);
  const reported = (await waitFor(upEverywhere, 60000, 500))!;
  const recorded = supervisorStatus()!;

  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await signIn(context, stack, 'root');
  await page.goto(`${stack.url}/admin/status`);
  const rows = new Map((await page.locator('main table tbody tr').allInnerTexts()).map((r) => r.split('\t').map((c) => c.trim())).map((cells) => [cells[0]!, cells]));
  for (const service of RUNNING) {
    const cli = reported.find((x) => x.service === service)!;
    const [, state, restarts, version] = rows.get(service) ?? assert.fail(`no row for ${service}`);
    assert.equal(state, 'up', service);
    assert.equal(version, cli.version, `${service}: the version the daemon reports`);
    assert.equal(restarts, SUPERVISED.includes(service) ? String(recorded.services[service]!.restarts) : '—', `${service}: restarts`);
  }
  assert.equal(rows.get('ldap')![2], '1');
  await context.close();
});
