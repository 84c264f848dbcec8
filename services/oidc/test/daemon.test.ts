import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, hearth, MANIFESTS, metricValue, parseEnvLines, scrapeMetrics, startDaemon, testEnv, type Daemon, type TestEnv } from '@hearth/testkit';
import * as oidc from 'openid-client';
import { fullLogin, PASSWORD } from './helpers.ts';

/**
 * The daemon on a free port with its own data dir, started before the enclosing suite's
 * tests (once `ready(output)` holds) and stopped after them; `run`'s fields are set by then.
 */
function daemonPerSuite(extraEnv: Record<string, string>, ready: (output: string) => boolean): { env: TestEnv; daemon: Daemon; issuer: string } {
  const run = {} as { env: TestEnv; daemon: Daemon; issuer: string };
  before(async () => {
    const port = await freePort();
    run.issuer = `http://127.0.0.1:${port}`;
    run.env = await testEnv({ env: { HEARTH_OIDC_PORT: String(port), HEARTH_OIDC_ISSUER: run.issuer, HEARTH_LOG_LEVEL: 'info', ...extraEnv } });
    run.daemon = await startDaemon('services/oidc/src/main.ts', run.env.env, ready);
  });
  after(async () => {
    await run.daemon?.stop();
    await run.env?.cleanup();
  });
  return run;
}

/** Signs in, retrying for ~5 s: an app the CLI installed reaches the daemon through the store's change notifications. */
async function loginOnceKnown(...args: Parameters<typeof fullLogin>): Promise<Awaited<ReturnType<typeof fullLogin>> | undefined> {
  let result: Awaited<ReturnType<typeof fullLogin>> | undefined;
  for (let i = 0; i < 50 && !result; i++) {
    result = await fullLogin(...args).catch(async () => {
      await new Promise((r) => setTimeout(r, 100));
      return undefined;
    });
  }
  return result;
}

/** The daemon as a user runs it, provisioned with the CLI: what `hearth app env` hands out is what the provider serves. */
describe('oidc daemon with the hearth CLI', () => {
  const run = daemonPerSuite({}, (out) => out.includes('"msg":"ready"'));

  it('serves an app installed after start, with the endpoints from hearth app env', async () => {
    const install = await hearth(['app', 'install', path.join(MANIFESTS, 'helpdesk.json'), '--id', 'helpdesk', '--domain', 'helpdesk.example.test'], { env: run.env.env });
    assert.equal(install.code, 0, install.stderr);
    const user = await hearth(['user', 'add', 'alice', '--email', 'alice@example.test', '--password-stdin', '--display-name', 'Alice Liddell'], { env: run.env.env, input: PASSWORD });
    assert.equal(user.code, 0, user.stderr);
    const out = await hearth(['app', 'env', 'helpdesk'], { env: run.env.env });
    assert.equal(out.code, 0, out.stderr);
    const vars = parseEnvLines(out.stdout);

    const discovery = (await (await fetch(vars.CLOUDRON_OIDC_DISCOVERY_URL!)).json()) as Record<string, string>;
    assert.equal(discovery.issuer, vars.CLOUDRON_OIDC_ISSUER);
    assert.equal(discovery.authorization_endpoint, vars.CLOUDRON_OIDC_AUTH_ENDPOINT);
    assert.equal(discovery.token_endpoint, vars.CLOUDRON_OIDC_TOKEN_ENDPOINT);
    assert.equal(discovery.jwks_uri, vars.CLOUDRON_OIDC_KEYS_ENDPOINT);
    assert.equal(discovery.userinfo_endpoint, vars.CLOUDRON_OIDC_PROFILE_ENDPOINT);

    const rp = await oidc.discovery(new URL(vars.CLOUDRON_OIDC_ISSUER!), vars.CLOUDRON_OIDC_CLIENT_ID!, vars.CLOUDRON_OIDC_CLIENT_SECRET!, undefined, { execute: [oidc.allowInsecureRequests] });
    const result = await loginOnceKnown(run.issuer, rp, 'https://helpdesk.example.test/auth/openid/callback', 'alice');
    assert.ok(result, 'sign-in through the daemon');
    assert.equal(result.tokens.claims()!.name, 'Alice Liddell');
    const info = await oidc.fetchUserInfo(rp, result.tokens.access_token, result.tokens.claims()!.sub);
    assert.equal(info.email, 'alice@example.test');
    assert.equal(info.preferred_username, 'alice');
  });

  it('stops cleanly on SIGTERM', async () => {
    assert.equal(await run.daemon.stop('SIGTERM'), 0);
  });
});

describe('oidc daemon with HEARTH_OIDC_WORKERS=2', () => {
  const run = daemonPerSuite({ HEARTH_OIDC_WORKERS: '2' }, (out) => out.split('"msg":"ready"').length - 1 >= 3);

  it('runs two workers that act as one provider, and stops them all', async () => {
    const pids = new Set(run.daemon.output().split('\n').filter((l) => l.includes('"msg":"ready"')).map((l) => (JSON.parse(l) as { pid: number }).pid));
    assert.equal(pids.size, 3, 'the supervising process and two workers');
    assert.equal((await hearth(['app', 'install', path.join(MANIFESTS, 'meet.json'), '--id', 'meet', '--domain', 'meet.example.test'], { env: run.env.env })).code, 0);
    assert.equal((await hearth(['user', 'add', 'bob', '--email', 'bob@example.test', '--password-stdin'], { env: run.env.env, input: PASSWORD })).code, 0);
    const vars = parseEnvLines((await hearth(['app', 'env', 'meet'], { env: run.env.env })).stdout);
    const rp = await oidc.discovery(new URL(run.issuer), vars.CLOUDRON_OIDC_CLIENT_ID!, vars.CLOUDRON_OIDC_CLIENT_SECRET!, undefined, { execute: [oidc.allowInsecureRequests] });
    const result = await loginOnceKnown(run.issuer, rp, 'https://meet.example.test/callback', 'bob');
    assert.ok(result, 'sign-in through the workers');
    let rt = result.tokens.refresh_token!;
    for (let i = 0; i < 4; i++) rt = (await oidc.refreshTokenGrant(rp, rt)).refresh_token!;
    // one metrics endpoint, the supervising process's: the sum over the workers, whichever served what
    const urls = run.daemon.output().split('\n').filter((l) => l.includes('"msg":"ready"')).map((l) => (JSON.parse(l) as { metrics: string | null }).metrics).filter(Boolean);
    assert.equal(urls.length, 1, 'only the supervising process listens for scrapes');
    const metrics = await scrapeMetrics(urls[0]!);
    assert.equal(metricValue(metrics, 'hearth_oidc_grants_total', { grant_type: 'authorization_code', outcome: 'ok' }), 1);
    assert.equal(metricValue(metrics, 'hearth_oidc_grants_total', { grant_type: 'refresh_token', outcome: 'ok' }), 4);
    assert.equal(metricValue(metrics, 'hearth_requests_total', { protocol: 'http', command: 'token', outcome: '2xx' }), 5);
    assert.equal(await run.daemon.stop('SIGTERM'), 0);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), 'every process is gone');
  });
});
