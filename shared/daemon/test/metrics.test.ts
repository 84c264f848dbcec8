import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, it } from 'node:test';
import { freePort, hearth, MANIFESTS, metricValue, parseEnvLines, runCommand, scrapeMetrics, startDaemon, testEnv, type Daemon, type PromExposition, type TestEnv } from '@hearth/testkit';

/**
 * A daemon's metrics endpoint as Prometheus sees it: fetched with curl, read by a strict
 * parser of the text exposition format (0.0.4), and checked against what the test did.
 */

let t: TestEnv;
let daemon: Daemon;
let vars: Record<string, string>;
let metricsPort: number;

const scrape = (): Promise<PromExposition> => scrapeMetrics(`http://127.0.0.1:${metricsPort}/metrics`);
const value = metricValue;

before(async () => {
  metricsPort = await freePort();
  t = await testEnv({ env: { HEARTH_LDAP_PORT: String(await freePort()), HEARTH_LDAPS_PORT: String(await freePort()), HEARTH_LDAP_METRICS_PORT: String(metricsPort), HEARTH_LOG_LEVEL: 'info' } });
  assert.equal((await hearth(['user', 'add', 'mia', '--email', 'mia@example.test', '--password', 'mia password'], { env: t.env })).code, 0);
  assert.equal((await hearth(['app', 'install', `${MANIFESTS}/wiki.json`, '--id', 'wiki', '--domain', 'wiki.example.test'], { env: t.env })).code, 0);
  vars = parseEnvLines((await hearth(['app', 'env', 'wiki'], { env: t.env })).stdout);
  daemon = await startDaemon('services/ldap/src/main.ts', t.env, (out) => out.includes('"msg":"ready"'));
});
after(async () => {
  await daemon?.stop();
  await t?.cleanup();
});

it('serves process metrics and counts one failed LDAP bind as exactly one refused login', async () => {
  assert.match(daemon.output(), new RegExp(`"metrics":"http://127\\.0\\.0\\.1:${metricsPort}/metrics"`));
  const before = await scrape();
  assert.equal(before.types.get('hearth_logins_total'), 'counter');
  assert.equal(before.types.get('process_resident_memory_bytes'), 'gauge');
  assert.ok(value(before, 'process_resident_memory_bytes', { service: 'ldap' }) > 0);
  const refused = { protocol: 'ldap', outcome: 'invalid_credentials' };
  const r = await runCommand('ldapwhoami', ['-x', '-H', vars.CLOUDRON_LDAP_URL!, '-D', 'cn=mia,ou=users,dc=cloudron', '-w', 'wrong password']);
  assert.equal(r.code, 49, r.stderr);
  const after1 = await scrape();
  assert.equal(value(after1, 'hearth_logins_total', refused) - value(before, 'hearth_logins_total', refused), 1);
  assert.equal(value(after1, 'hearth_logins_total', { protocol: 'ldap', outcome: 'ok' }), value(before, 'hearth_logins_total', { protocol: 'ldap', outcome: 'ok' }));
  // the shared connection layer counted the connection and the bind, with its LDAP result (RFC 4511: 49)
  const delta = (name: string, labels: Record<string, string>): number => value(after1, name, labels) - value(before, name, labels);
  assert.equal(delta('hearth_connections_total', { protocol: 'ldap' }), 1);
  assert.equal(delta('hearth_requests_total', { protocol: 'ldap', command: 'bind', outcome: 'invalidCredentials' }), 1);
  assert.equal(delta('hearth_requests_total', { protocol: 'ldap' }), 1, 'nothing but the bind was answered');
  assert.equal(delta('hearth_request_duration_seconds_count', { protocol: 'ldap', command: 'bind' }), 1);
  assert.equal(after1.types.get('hearth_request_duration_seconds'), 'histogram');
  assert.equal(value(after1, 'hearth_build_info', { service: 'ldap', node: process.version }), 1);
  assert.equal((await runCommand('ldapwhoami', ['-x', '-H', vars.CLOUDRON_LDAP_URL!, '-D', 'cn=mia,ou=users,dc=cloudron', '-w', 'mia password'])).code, 0);
  const after2 = await scrape();
  assert.equal(value(after2, 'hearth_logins_total', { protocol: 'ldap', outcome: 'ok' }) - value(after1, 'hearth_logins_total', { protocol: 'ldap', outcome: 'ok' }), 1);
  const notFound = await runCommand('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${metricsPort}/other`]);
  assert.equal(notFound.stdout, '404');
});

it('HEARTH_METRICS=off serves no metrics', async () => {
  const env = { ...t.env, HEARTH_LDAP_PORT: String(await freePort()), HEARTH_LDAPS_PORT: String(await freePort()), HEARTH_METRICS: 'off' };
  const off = await startDaemon('services/ldap/src/main.ts', env, (out) => out.includes('"msg":"ready"'));
  try {
    assert.match(off.output(), /"metrics":null/);
  } finally {
    assert.equal(await off.stop(), 0);
  }
});

it('a metrics port already in use is one line naming the setting, and exit 1', async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const busy = (blocker.address() as net.AddressInfo).port;
  try {
    const env = { ...t.env, HEARTH_LDAP_PORT: String(await freePort()), HEARTH_LDAPS_PORT: String(await freePort()), HEARTH_LDAP_METRICS_PORT: String(busy) };
    const r = await runCommand(process.execPath, ['--import', 'tsx', 'services/ldap/src/main.ts'], { env, timeoutMs: 60_000 });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `hearth ldap: HEARTH_LDAP_METRICS_PORT: cannot listen on 127.0.0.1:${busy} (already in use); set another port, or HEARTH_METRICS=off\n`);
  } finally {
    blocker.close();
  }
});
