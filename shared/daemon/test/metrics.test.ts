import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, it } from 'node:test';
import { freePort, hearth, MANIFESTS, parseEnvLines, runCommand, startDaemon, testEnv, type Daemon, type TestEnv } from '@hearth/testkit';

/**
 * A daemon's metrics endpoint as Prometheus sees it: fetched with curl, read by a strict
 * parser of the text exposition format (0.0.4), and checked against what the test did.
 */

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Strict reader of the Prometheus text format: every line is a HELP, a TYPE or a well-formed sample, or the test fails. */
function parsePrometheusText(text: string): { samples: Sample[]; types: Map<string, string> } {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const name = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue;
    const meta = new RegExp(`^# (HELP|TYPE) (${name}) (.*)$`).exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') {
        assert.match(meta[3]!, /^(counter|gauge|histogram|summary|untyped)$/, line);
        assert.equal(types.has(meta[2]!), false, `one TYPE per metric: ${line}`);
        types.set(meta[2]!, meta[3]!);
      }
      continue;
    }
    const m = new RegExp(`^(${name})(?:\\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*",?)*)\\})? (\\S+)(?: -?\\d+)?$`).exec(line);
    assert.ok(m, `not a valid sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    const v = m[3]!;
    const value = v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : v === 'NaN' ? NaN : Number(v);
    assert.ok(!Number.isNaN(value) || v === 'NaN', `bad value in ${line}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { samples, types };
}

let t: TestEnv;
let daemon: Daemon;
let vars: Record<string, string>;
let metricsPort: number;

async function scrape(): Promise<ReturnType<typeof parsePrometheusText>> {
  const r = await runCommand('curl', ['-sS', '--fail', '-H', 'Accept: text/plain', `http://127.0.0.1:${metricsPort}/metrics`]);
  assert.equal(r.code, 0, r.stderr);
  return parsePrometheusText(r.stdout);
}

const value = (s: Sample[], name: string, labels: Record<string, string>): number =>
  s.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v)).reduce((a, x) => a + x.value, 0);

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
  assert.ok(value(before.samples, 'process_resident_memory_bytes', { service: 'ldap' }) > 0);
  const refused = { protocol: 'ldap', outcome: 'invalid_credentials' };
  const r = await runCommand('ldapwhoami', ['-x', '-H', vars.CLOUDRON_LDAP_URL!, '-D', 'cn=mia,ou=users,dc=cloudron', '-w', 'wrong password']);
  assert.equal(r.code, 49, r.stderr);
  const after1 = await scrape();
  assert.equal(value(after1.samples, 'hearth_logins_total', refused) - value(before.samples, 'hearth_logins_total', refused), 1);
  assert.equal(value(after1.samples, 'hearth_logins_total', { protocol: 'ldap', outcome: 'ok' }), value(before.samples, 'hearth_logins_total', { protocol: 'ldap', outcome: 'ok' }));
  assert.equal((await runCommand('ldapwhoami', ['-x', '-H', vars.CLOUDRON_LDAP_URL!, '-D', 'cn=mia,ou=users,dc=cloudron', '-w', 'mia password'])).code, 0);
  const after2 = await scrape();
  assert.equal(value(after2.samples, 'hearth_logins_total', { protocol: 'ldap', outcome: 'ok' }) - value(after1.samples, 'hearth_logins_total', { protocol: 'ldap', outcome: 'ok' }), 1);
  const notFound = await runCommand('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${metricsPort}/other`]);
  assert.equal(notFound.stdout, '404');
});

it('a metrics port already in use is one line naming the setting, and exit 1', async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const busy = (blocker.address() as net.AddressInfo).port;
  try {
    const env = { ...t.env, HEARTH_LDAP_PORT: String(await freePort()), HEARTH_LDAPS_PORT: String(await freePort()), HEARTH_LDAP_METRICS_PORT: String(busy) };
    const r = await runCommand(process.execPath, ['--import', 'tsx', 'services/ldap/src/main.ts'], { env, timeoutMs: 60_000 });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `hearth ldap: HEARTH_LDAP_METRICS_PORT: cannot listen on 127.0.0.1:${busy} (already in use)\n`);
  } finally {
    blocker.close();
  }
});
