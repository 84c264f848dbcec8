import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_PORTS, portEnvName, type PortName } from '@hearth/config';
import { freePort, hearth, MANIFESTS, metricValue, parseEnvLines, REPO_ROOT, runCommand, scrapeMetrics, testEnv, waitFor, type PromExposition, type TestEnv } from '@hearth/testkit';

/**
 * `npm start` with metrics on: every endpoint it prints is scraped with curl and parsed strictly;
 * what the test does with real clients (ldapwhoami, swaks, imaplib, curl) moves exactly the
 * counters it should. Then `hearth status` reads the same stack, a daemon is killed and scraped
 * while it restarts, and status says so once nothing runs.
 */

const SERVICES = ['ldap', 'smtp', 'imap', 'oidc', 'proxyauth', 'turn'];
const PASSWORD = 'mia password 1';

describe('metrics of a running stack', () => {
  let t: TestEnv;
  let env: Record<string, string>;
  let proc: ReturnType<typeof spawn>;
  let out = '';
  const url = (service: string): string => `http://127.0.0.1:${env[portEnvName(`${service}Metrics` as PortName)]}/metrics`;
  const scrape = (service: string): Promise<PromExposition> => scrapeMetrics(url(service));

  before(async () => {
    t = await testEnv();
    const ports: Record<string, string> = {};
    for (const name of Object.keys(DEFAULT_PORTS) as PortName[]) ports[portEnvName(name)] = String(await freePort());
    env = { ...t.env, ...ports, HEARTH_OIDC_ISSUER: `http://127.0.0.1:${ports.HEARTH_OIDC_PORT}`, HEARTH_SERVICES: SERVICES.join(','), HEARTH_LOG_LEVEL: 'warn' };
    const cli = async (args: string[]): Promise<string> => {
      const r = await hearth(args, { env });
      assert.equal(r.code, 0, `hearth ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    await cli(['user', 'add', 'mia', '--email', 'mia@example.test', '--password', PASSWORD]);
    await cli(['mailbox', 'add', 'mia@example.test', '--owner', 'mia']);
    await cli(['app', 'install', `${MANIFESTS}/wiki.json`, '--id', 'wiki', '--domain', 'wiki.example.test']);
    await cli(['app', 'install', `${MANIFESTS}/helpdesk.json`, '--id', 'helpdesk', '--domain', 'helpdesk.example.test']);
    await cli(['app', 'install', `${MANIFESTS}/dashboard.json`, '--id', 'dash', '--domain', 'dash.example.test', '--upstream', `http://127.0.0.1:${await freePort()}`, '--access', 'users:mia']);
    proc = spawn(process.execPath, ['--import', 'tsx', 'services/supervisor/src/main.ts'], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    await waitFor(() => out.includes('Manage users and apps'), 60_000);
    // every daemon's metrics answer once it is up (tsx boots slowly on a loaded machine)
    await waitFor(async () => (await Promise.all(SERVICES.map(async (s) => (await runCommand('curl', ['-sf', '-o', '/dev/null', url(s)])).code === 0))).every(Boolean), 180_000, 1000);
  });

  after(async () => {
    if (proc && proc.exitCode === null) {
      proc.kill('SIGTERM');
      await new Promise((resolve) => proc.once('exit', resolve));
    }
    await t?.cleanup();
  });

  it('npm start prints each metrics endpoint beside its service', () => {
    for (const s of SERVICES) assert.ok(out.split('\n').some((line) => line.trimStart().startsWith(s) && line.includes(`${url(s)} (metrics)`)), `${s}: ${out}`);
  });

  it('counts what real clients did, exactly', async () => {
    const before = Object.fromEntries(await Promise.all(SERVICES.map(async (s) => [s, await scrape(s)] as const)));
    const delta = (after: PromExposition, service: string, name: string, labels: Record<string, string> = {}): number => metricValue(after, name, labels) - metricValue(before[service]!, name, labels);
    for (const s of SERVICES) {
      assert.equal(metricValue(before[s]!, 'hearth_build_info', { service: s }), 1, `${s} says what it is`);
      assert.ok(metricValue(before[s]!, 'process_resident_memory_bytes') > 0);
    }

    // LDAP: one failed bind
    const vars = parseEnvLines((await hearth(['app', 'env', 'wiki'], { env })).stdout);
    assert.equal((await runCommand('ldapwhoami', ['-x', '-H', vars.CLOUDRON_LDAP_URL!, '-D', 'cn=mia,ou=users,dc=cloudron', '-w', 'wrong'])).code, 49);

    // SMTP: one message to a local mailbox on the inbound port
    const sent = await runCommand('swaks', ['--server', '127.0.0.1', '--port', env.HEARTH_SMTP_INBOUND_PORT!, '--from', 'someone@elsewhere.test', '--to', 'mia@example.test', '--body', 'metrics'], { timeoutMs: 60_000 });
    assert.equal(sent.code, 0, sent.out);

    // delivery is asynchronous: wait for the queue to report it, before IMAP reads it
    await waitFor(async () => metricValue(await scrape('smtp'), 'hearth_smtp_deliveries_total', { outcome: 'delivered' }) > metricValue(before.smtp!, 'hearth_smtp_deliveries_total', { outcome: 'delivered' }), 30_000, 250);

    // IMAP: LOGIN, SELECT, LOGOUT
    const imap = `import imaplib, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
m.login('mia@example.test', sys.argv[2])
typ, data = m.select('INBOX')
print(typ, data[0].decode())
m.logout()`;
    const read = await runCommand('/usr/bin/python3', ['-c', imap, env.HEARTH_IMAP_PORT!, PASSWORD]);
    assert.equal(read.stdout, 'OK 1\n', read.out);

    // proxyAuth: one anonymous request (sent to sign in) and one wrong Basic password
    const anon = await runCommand('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Host: dash.example.test', `http://127.0.0.1:${env.HEARTH_PROXYAUTH_PORT}/`]);
    assert.equal(anon.stdout, '302');
    const basic = await runCommand('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-u', 'mia:wrong', '-H', 'Host: dash.example.test', `http://127.0.0.1:${env.HEARTH_PROXYAUTH_PORT}/`]);
    assert.equal(basic.stdout, '401');

    // OIDC: a code that was never issued (RFC 6749 §5.2: invalid_grant)
    const oidc = parseEnvLines((await hearth(['app', 'env', 'helpdesk'], { env })).stdout);
    const token = await runCommand('curl', ['-s', '-u', `${oidc.CLOUDRON_OIDC_CLIENT_ID}:${oidc.CLOUDRON_OIDC_CLIENT_SECRET}`, '-d', 'grant_type=authorization_code&code=never-issued&redirect_uri=https%3A%2F%2Fhelpdesk.example.test%2Fauth%2Fopenid%2Fcallback', oidc.CLOUDRON_OIDC_TOKEN_ENDPOINT!]);
    assert.equal((JSON.parse(token.stdout) as { error: string }).error, 'invalid_grant');

    const now = Object.fromEntries(await Promise.all(SERVICES.map(async (s) => [s, await scrape(s)] as const)));

    const ldap = now.ldap!;
    assert.equal(delta(ldap, 'ldap', 'hearth_logins_total', { protocol: 'ldap', outcome: 'invalid_credentials' }), 1);
    assert.equal(delta(ldap, 'ldap', 'hearth_logins_total', { outcome: 'ok' }), 0);
    assert.equal(delta(ldap, 'ldap', 'hearth_requests_total', { protocol: 'ldap', command: 'bind', outcome: 'invalidCredentials' }), 1);

    const smtp = now.smtp!;
    assert.equal(delta(smtp, 'smtp', 'hearth_smtp_deliveries_total', { outcome: 'delivered', destination: 'local' }), 1);
    assert.equal(delta(smtp, 'smtp', 'hearth_smtp_deliveries_total', { outcome: 'deferred' }), 0);
    assert.equal(delta(smtp, 'smtp', 'hearth_smtp_deliveries_total', { outcome: 'bounced' }), 0);
    assert.equal(metricValue(smtp, 'hearth_smtp_queue_messages'), 0, 'delivered mail left the queue');
    assert.equal(delta(smtp, 'smtp', 'hearth_connections_total', { protocol: 'smtp' }), 1);
    for (const command of ['mail', 'rcpt', 'data']) assert.equal(delta(smtp, 'smtp', 'hearth_requests_total', { protocol: 'smtp', command, outcome: 'ok' }), 1, command);

    const imapNow = now.imap!;
    assert.equal(delta(imapNow, 'imap', 'hearth_logins_total', { protocol: 'imap', outcome: 'ok' }), 1);
    assert.equal(delta(imapNow, 'imap', 'hearth_connections_total', { protocol: 'imap' }), 1);
    for (const command of ['login', 'select', 'logout']) assert.equal(delta(imapNow, 'imap', 'hearth_requests_total', { protocol: 'imap', command, outcome: 'ok' }), 1, command);
    assert.equal(delta(imapNow, 'imap', 'hearth_request_duration_seconds_count', { protocol: 'imap', command: 'select' }), 1);

    const pa = now.proxyauth!;
    assert.equal(delta(pa, 'proxyauth', 'hearth_proxyauth_requests_total', { app: 'dash', decision: 'unauthenticated' }), 1);
    assert.equal(delta(pa, 'proxyauth', 'hearth_proxyauth_requests_total', { app: 'dash', decision: 'invalid_credentials' }), 1);
    assert.equal(delta(pa, 'proxyauth', 'hearth_proxyauth_requests_total', { decision: 'allow' }), 0);
    assert.equal(delta(pa, 'proxyauth', 'hearth_logins_total', { protocol: 'proxyauth', outcome: 'invalid_credentials' }), 1);
    assert.equal(delta(pa, 'proxyauth', 'hearth_requests_total', { protocol: 'http', command: 'proxy', outcome: '3xx' }), 1);
    assert.equal(delta(pa, 'proxyauth', 'hearth_requests_total', { protocol: 'http', command: 'proxy', outcome: '4xx' }), 1);

    const op = now.oidc!;
    assert.equal(delta(op, 'oidc', 'hearth_oidc_grants_total', { grant_type: 'authorization_code', outcome: 'invalid_grant' }), 1);
    assert.equal(delta(op, 'oidc', 'hearth_oidc_grants_total', { outcome: 'ok' }), 0);
    assert.equal(delta(op, 'oidc', 'hearth_requests_total', { protocol: 'http', command: 'token', outcome: '4xx' }), 1);

    const turn = now.turn!;
    assert.equal(turn.types.get('hearth_turn_allocations'), 'gauge');
    assert.equal(metricValue(turn, 'hearth_turn_allocations'), 0);
    assert.equal(turn.types.get('hearth_turn_relayed_bytes_total'), 'counter');
  });

  it('hearth status reads every service: up or down, version, uptime and key counters', async () => {
    const table = await hearth(['status'], { env });
    assert.equal(table.code, 0, table.stderr);
    const rows = table.stdout.trimEnd().split('\n');
    assert.match(rows[0]!, /^SERVICE\s+STATUS\s+VERSION\s+UPTIME\s+LOGINS\s+CONNECTIONS\s+REQUESTS/);
    const version = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    for (const s of SERVICES) assert.match(rows.find((r) => r.startsWith(`${s} `)) ?? '', new RegExp(`^${s}\\s+up\\s+${version.replace(/\./g, '\\.')}\\s`), table.stdout);
    assert.match(rows.find((r) => r.startsWith('pop3 ')) ?? '', /down \(not running\)/);
    assert.match(rows.find((r) => r.startsWith('imap ')) ?? '', /1 ok, 0 failed/);
    assert.match(rows.find((r) => r.startsWith('smtp ')) ?? '', /queue 0, delivered 1, deferred 0, bounced 0/);
    assert.match(rows.find((r) => r.startsWith('turn ')) ?? '', /allocations 0/);

    const json = await hearth(['status', '--json'], { env });
    assert.equal(json.code, 0, json.stderr);
    const list = JSON.parse(json.stdout) as { service: string; up: boolean; url: string; uptimeSeconds: number | null; logins: { ok: number; failed: number }; metrics: { name: string }[] }[];
    const ldap = list.find((s) => s.service === 'ldap')!;
    assert.equal(ldap.up, true);
    assert.equal(ldap.url, url('ldap'));
    assert.deepEqual(ldap.logins, { ok: 0, failed: 1 });
    assert.ok(ldap.uptimeSeconds !== null && ldap.uptimeSeconds >= 0);
    assert.ok(ldap.metrics.some((m) => m.name === 'hearth_request_duration_seconds_bucket'), 'the full samples');
    assert.equal(list.find((s) => s.service === 'pop3')!.up, false);
  });

  it('a daemon killed and restarted: its endpoint comes back, the others keep answering, nothing else stops', async () => {
    const status = JSON.parse(fs.readFileSync(path.join(t.dataDir, 'supervisor', 'status.json'), 'utf8')) as { services: Record<string, { pid: number }> };
    const victim = status.services.imap!.pid;
    process.kill(victim, 'SIGKILL');
    // scraped while it is gone and while it comes back: the others answer every time, well-formed
    await waitFor(
      async () => {
        for (const s of SERVICES.filter((x) => x !== 'imap')) await scrape(s);
        const r = await runCommand('curl', ['-sf', url('imap')]);
        return r.code === 0 && r.stdout.includes('hearth_build_info');
      },
      120_000,
      250,
    );
    const fresh = await scrape('imap');
    assert.equal(metricValue(fresh, 'hearth_logins_total'), 0, 'a new process, counting from zero');
    assert.equal(proc.exitCode, null, 'the supervisor runs on');
    const table = await hearth(['status'], { env });
    assert.match(table.stdout.split('\n').find((r) => r.startsWith('imap ')) ?? '', /^imap\s+up\s/);
  });

  it('once nothing runs, hearth status says so in one line and exits 1', async () => {
    proc.kill('SIGTERM');
    assert.equal(await new Promise((resolve) => proc.once('exit', resolve)), 0);
    const r = await hearth(['status'], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^hearth: no Hearth service answers on this host \(is "npm start" running\? ldap's metrics would be at http:\/\/127\.0\.0\.1:\d+\/metrics\)\n$/);
    const off = await hearth(['status'], { env: { ...env, HEARTH_METRICS: 'off' } });
    assert.equal(off.code, 1);
    assert.match(off.stderr, /^hearth: metrics are off \(HEARTH_METRICS=off\)/);
  });
});
