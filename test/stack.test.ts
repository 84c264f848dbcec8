import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { DEFAULT_PORTS, portEnvName, type PortName } from '@hearth/config';
import { dockerEnv, freePort, REPO_ROOT, startDaemon, testEnv, waitFor, type TestEnv } from '@hearth/testkit';

interface ComposeService {
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  ports?: string[];
  build?: string;
}

async function freePortsEnv(): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const name of Object.keys(DEFAULT_PORTS) as PortName[]) env[portEnvName(name)] = String(await freePort());
  return env;
}

function healthy(cmd: string[], env: Record<string, string>): boolean {
  const [bin, ...args] = cmd[0] === 'CMD' ? cmd.slice(1) : cmd;
  const r = spawnSync(bin === 'node' ? process.execPath : bin!, args, { cwd: REPO_ROOT, env: { ...process.env, ...env }, timeout: 15000 });
  return r.status === 0;
}

/** Which daemons this checkout has (compose lists them all; a checkout may be mid-way). */
const present = (command: string[] | undefined): boolean => !!command && fs.existsSync(path.join(REPO_ROOT, command[command.length - 1]!));

describe('docker-compose.yml wiring, run natively', () => {
  const compose = parse(fs.readFileSync(path.join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
  let t: TestEnv;
  before(async () => {
    // compose runs the compiled services (dist/) with plain node: build them as the image does
    const built = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
    assert.equal(built.status, 0, built.stderr);
    t = await testEnv({ backend: 'postgres' });
  });
  after(() => t.cleanup());

  it('lists every daemon with the contract ports, postgres and redis, healthchecks and the data volume', () => {
    const s = compose.services;
    for (const name of ['postgres', 'redis', 'ldap', 'smtp', 'imap', 'pop3', 'oidc', 'proxyauth', 'turn']) assert.ok(s[name], `service ${name}`);
    assert.deepEqual(s.ldap!.ports, ['3890:3890', '6360:6360']);
    assert.deepEqual(s.smtp!.ports, ['2525:2525', '2465:2465', '2025:2025']);
    assert.deepEqual(s.oidc!.ports, ['4000:4000']);
    assert.deepEqual(s.proxyauth!.ports, ['4180:4180']);
    assert.ok(s.turn!.ports!.includes('3478:3478/udp'));
    for (const name of ['ldap', 'smtp', 'imap', 'pop3', 'oidc', 'proxyauth', 'turn']) {
      assert.ok(s[name]!.healthcheck, `${name} healthcheck`);
      assert.equal(s[name]!.environment!.HEARTH_DATABASE_URL, 'postgres://hearth:hearth@postgres:5432/hearth');
      assert.equal(s[name]!.environment!.HEARTH_REDIS_URL, 'redis://redis:6379/0');
    }
  });

  it('each daemon starts from its compose command and environment and passes its healthcheck', async () => {
    const ports = await freePortsEnv();
    const started: string[] = [];
    for (const [name, svc] of Object.entries(compose.services)) {
      if (!svc.healthcheck || !present(svc.command)) continue;
      // The compose environment with the container-only parts mapped onto this machine.
      // Interpolate `${VAR:-default}` as compose does, with nothing set on the host.
      const composeEnv = Object.fromEntries(Object.entries(svc.environment!).map(([k, v]) => [k, String(v).replace(/\$\{[A-Z0-9_]+:-([^}]*)\}/g, '$1')]));
      const env: Record<string, string> = { ...composeEnv, ...ports };
      env.HEARTH_DATABASE_URL = t.env.HEARTH_DATABASE_URL!;
      env.HEARTH_REDIS_URL = 'redis://127.0.0.1:6379/0';
      env.HEARTH_DATA_DIR = t.dataDir;
      env.HEARTH_LISTEN = '127.0.0.1';
      env.HEARTH_HOSTNAME = '127.0.0.1';
      env.HEARTH_DOMAIN = 'example.test';
      env.HEARTH_OIDC_ISSUER = `http://127.0.0.1:${ports.HEARTH_OIDC_PORT}`;
      env.HEARTH_LOG_LEVEL = 'info';
      if (env.HEARTH_PROXYAUTH_OIDC_INTERNAL_URL) env.HEARTH_PROXYAUTH_OIDC_INTERNAL_URL = `http://127.0.0.1:${ports.HEARTH_OIDC_PORT}`;
      const entry = svc.command![svc.command!.length - 1]!;
      const daemon = await startDaemon(entry, env, (out) => out.includes('"msg":"ready"'), 60000);
      try {
        await waitFor(() => healthy(svc.healthcheck!.test, env), 15000, 250);
        started.push(name);
      } finally {
        assert.equal(await daemon.stop('SIGTERM'), 0, `${name} stops cleanly on SIGTERM`);
      }
    }
    assert.ok(started.length > 0, 'at least one daemon in this checkout');
  });
});

describe('npm start (the supervisor)', () => {
  it('prints endpoints, serves, restarts a crashed daemon, and stops cleanly on SIGTERM', async () => {
    const t = await testEnv();
    const env = { ...t.env, ...(await freePortsEnv()), ...dockerEnv(), HEARTH_LOG_LEVEL: 'info' };
    const proc = spawn(process.execPath, ['--import', 'tsx', 'services/supervisor/src/main.ts'], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    try {
      const { availableServices } = await import('../services/supervisor/src/services.ts');
      const services = availableServices();
      await waitFor(() => out.includes('Hearth is starting'), 60000);
      for (const s of services) assert.match(out, new RegExp(`\\b${s.name}\\b`));
      assert.doesNotMatch(out, /App containers are off/);
      const healthcheck = ['node', '--import', 'tsx', 'services/supervisor/src/healthcheck.ts'];
      const allPorts = services.flatMap((s) => s.ports);
      await waitFor(() => healthy([...healthcheck, ...allPorts], env), 90000, 500);

      // Kill one daemon hard; the supervisor brings it back.
      const children = fs
        .readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            const parent = fs.readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ')[1];
            // tsx's esbuild helper is a child too; count only daemons
            return parent === String(proc.pid) && fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('/services/');
          } catch {
            return false;
          }
        });
      assert.equal(children.length, services.length, 'one child per daemon');
      for (const p of children) assert.ok(fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes('--max-semi-space-size=1'), 'each daemon gets the default young generation (4 MiB) as its semi-space');
      const victim = services[0]!;
      const victimPid = children.find((p) => fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(`services/${victim.name}/`));
      assert.ok(victimPid);
      process.kill(Number(victimPid), 'SIGKILL');
      await waitFor(() => out.includes('service exited; restarting'), 10000);
      await waitFor(() => healthy([...healthcheck, ...victim.ports], env), 60000, 500);
    } finally {
      proc.kill('SIGTERM');
      const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
      assert.equal(code, 0, out.slice(-2000));
      await t.cleanup();
    }
  });
});

describe('npm start without a Docker engine', () => {
  it('says once that app containers are off and runs the other services', async () => {
    const t = await testEnv();
    const env = { ...t.env, ...(await freePortsEnv()), HEARTH_DOCKER_HOST: `unix://${t.dataDir}/no-docker.sock`, HEARTH_SERVICES: 'runtime,dockerproxy,ldap', HEARTH_LOG_LEVEL: 'warn' };
    const proc = spawn(process.execPath, ['--import', 'tsx', 'services/supervisor/src/main.ts'], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    try {
      await waitFor(() => out.includes('Manage users and apps'), 30000);
      assert.equal(out.match(/App containers are off: no Docker engine answers at unix:\/\/\S+no-docker\.sock/g)?.length, 1, out);
      assert.doesNotMatch(out, /^ {2}runtime /m);
      assert.doesNotMatch(out, /^ {2}dockerproxy /m);
      await waitFor(() => healthy(['node', '--import', 'tsx', 'services/supervisor/src/healthcheck.ts', 'ldap'], env), 60000, 500);
    } finally {
      proc.kill('SIGTERM');
      assert.equal(await new Promise<number | null>((resolve) => proc.once('exit', resolve)), 0, out.slice(-2000));
      await t.cleanup();
    }
  });
});
