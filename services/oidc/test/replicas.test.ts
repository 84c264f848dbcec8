import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Directory } from '@hearth/directory';
import { createLogger } from '@hearth/log';
import { freePort, testEnv, waitFor, type TestEnv } from '@hearth/testkit';
import * as oidc from 'openid-client';
import { startOidc, type RunningOidc } from '../src/server.ts';
import { decodeJwt } from './jwt.ts';
import { addOidcApp, addUser, idOf, authorizationRequest, Browser, fullLogin, PASSWORD, rpConfig, signIn } from './helpers.ts';

const REDIS_URL = process.env.HEARTH_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';

/** Two replicas behind a balancer act as one: state lives in the shared store or in Redis, never in one process. */
for (const mode of ['postgres store', 'redis'] as const) {
  describe(`two replicas (${mode})`, () => {
    let env: TestEnv;
    let lb: Balancer;
    const dirs: Directory[] = [];
    const servers: RunningOidc[] = [];
    let issuer: string;
    const logoutTokens: string[] = [];
    const backchannel = async (_url: string | URL | Request, init?: RequestInit): Promise<Response> => {
      logoutTokens.push(new URLSearchParams(String(init?.body)).get('logout_token') ?? '');
      return new Response(null, { status: 204 });
    };

    before(async () => {
      // The balancer's address is the issuer both replicas announce.
      const lbPort = await freePort();
      issuer = `http://127.0.0.1:${lbPort}`;
      env = await testEnv({ backend: 'postgres', env: { HEARTH_OIDC_ISSUER: issuer, ...(mode === 'redis' ? { HEARTH_REDIS_URL: REDIS_URL } : {}) } });
      const ports: number[] = [];
      for (let i = 0; i < 2; i++) {
        const logger = createLogger(`oidc-${i}`, env.config.logLevel);
        const d = await Directory.open(env.config, { watch: true, logger });
        dirs.push(d);
        const s = await startOidc({ config: env.config, directory: d, logger }, { port: 0, fetch: backchannel });
        servers.push(s);
        ports.push(s.port);
      }
      lb = await balancer(lbPort, ports);
    });
    after(async () => {
      lb?.server.close();
      for (const s of servers) await s.close();
      for (const d of dirs) await d.close();
      await env?.cleanup();
    });

    it('signs in, exchanges, refreshes, reads userinfo and logs a disabled user out across replicas', async () => {
      const app = await addOidcApp(dirs[0]!, 'notes', { loginRedirectUri: '/cb', backchannelLogoutUri: '/logout' });
      await addUser(dirs[0]!, 'alice');
      await waitFor(() => dirs[1]!.app('notes') && dirs[1]!.userByUsername('alice'));
      const rp = await rpConfig(issuer, app.clientId, app.clientSecret);
      const { tokens } = await fullLogin(issuer, rp, app.redirectUri, 'alice');
      assert.equal(tokens.claims()!.sub, idOf(dirs[0]!, 'alice'));
      let rt = tokens.refresh_token!;
      for (let i = 0; i < 3; i++) {
        const r = await oidc.refreshTokenGrant(rp, rt);
        rt = r.refresh_token!;
        assert.equal((await oidc.fetchUserInfo(rp, r.access_token, idOf(dirs[0]!, 'alice'))).sub, idOf(dirs[0]!, 'alice'));
      }
      assert.ok(lb.hits.every((h) => h > 5), `both replicas served: ${lb.hits}`);
      // Both replicas signed with the same keys (one JWKS, whichever replica answers).
      const [a, b] = await Promise.all([fetch(`${issuer}/jwks`), fetch(`${issuer}/jwks`)].map(async (p) => (await p).text()));
      assert.equal(a, b);
      // The same code, or the same refresh token, sent by racing requests to both replicas works exactly once.
      const basic = `Basic ${Buffer.from(`${app.clientId}:${app.clientSecret}`).toString('base64')}`;
      const race = (body: Record<string, string>): Promise<number[]> =>
        Promise.all(
          Array.from({ length: 8 }, async () => {
            const r = await fetch(`${issuer}/token`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body).toString() });
            await r.arrayBuffer();
            return r.status;
          }),
        );
      const req = await authorizationRequest(rp, app.redirectUri, 'openid');
      const cb = await signIn(new Browser(issuer), req.url, 'alice', PASSWORD);
      const codeRace = await race({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: app.redirectUri, code_verifier: req.verifier });
      assert.deepEqual(codeRace.sort(), [200, 400, 400, 400, 400, 400, 400, 400]);
      const fresh = await fullLogin(issuer, rp, app.redirectUri, 'alice');
      const refreshRace = await race({ grant_type: 'refresh_token', refresh_token: fresh.tokens.refresh_token! });
      assert.deepEqual(refreshRace.sort(), [200, 400, 400, 400, 400, 400, 400, 400]);

      await dirs[0]!.setActive('alice', false);
      await waitFor(() => !dirs[1]!.userByUsername('alice')!.active);
      for (let i = 0; i < 2; i++) await assert.rejects(oidc.refreshTokenGrant(rp, rt), (e: oidc.ResponseBodyError) => e.error === 'invalid_grant');
      // Both replicas saw the change; the app is told once per session of alice's (three browsers), not once per replica.
      await waitFor(() => logoutTokens.length >= 3);
      await new Promise((r) => setTimeout(r, 300));
      const sids = logoutTokens.map((t) => decodeJwt(t).payload.sid);
      assert.equal(sids.length, 3, 'one notification per session');
      assert.equal(new Set(sids).size, 3);
      for (const t of [tokens, fresh.tokens]) assert.ok(sids.includes(decodeJwt(t.id_token!).payload.sid));
    });
  });
}

interface Balancer {
  server: http.Server;
  hits: number[];
}

/** A round-robin load balancer: every request goes to the next replica. */
async function balancer(port: number, ports: number[]): Promise<Balancer> {
  const hits = ports.map(() => 0);
  let next = 0;
  const server = http.createServer((req, res) => {
    const i = next++ % ports.length;
    hits[i]!++;
    const up = http.request({ host: '127.0.0.1', port: ports[i], method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { server, hits };
}
