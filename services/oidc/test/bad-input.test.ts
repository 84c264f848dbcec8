import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '@hearth/log';
import Koa from 'koa';
import * as oidc from 'openid-client';
import { errorHandler } from '../src/http.ts';
import { addOidcApp, addUser, authorizationRequest, Browser, fullLogin, rpConfig, signIn, PASSWORD, startStack, type SeededApp, type Stack } from './helpers.ts';

/** Every answer to bad input: the OAuth error the spec names, never a 500, never a redirect to an unregistered URI. */
describe('bad input', () => {
  let stack: Stack;
  let app: SeededApp;
  let rp: oidc.Configuration;
  const registered = 'https://helpdesk.example.test/cb';

  before(async () => {
    stack = await startStack();
    app = await addOidcApp(stack.directory, 'helpdesk', { loginRedirectUri: '/cb', logoutRedirectUri: '/bye' });
    await addUser(stack.directory, 'alice');
    rp = await rpConfig(stack.issuer, app.clientId, app.clientSecret);
  });
  after(async () => stack.close());

  const authUrl = (params: Record<string, string>): URL => {
    const u = new URL('/auth', stack.issuer);
    const base = { client_id: app.clientId, response_type: 'code', scope: 'openid', redirect_uri: registered, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', state: 's1' };
    for (const [k, v] of Object.entries({ ...base, ...params })) if (v !== '') u.searchParams.set(k, v);
    return u;
  };

  /** An error page on our own origin: status 400-499, no Location at all. */
  const assertErrorPage = async (res: Response, error: string): Promise<void> => {
    const body = await res.text();
    assert.ok(res.status >= 400 && res.status < 500, `status ${res.status}: ${body.slice(0, 300)}`);
    assert.equal(res.headers.get('location'), null);
    assert.match(body, new RegExp(error));
  };

  it('unknown client at the authorization endpoint: invalid_client page, no redirect', async () => {
    await assertErrorPage(await fetch(authUrl({ client_id: 'nope' }), { redirect: 'manual' }), 'invalid_client');
  });

  for (const [what, uri] of [
    ['another host', 'https://evil.example/cb'],
    ['another port', 'https://helpdesk.example.test:8443/cb'],
    ['an extra path', 'https://helpdesk.example.test/cb/extra'],
    ['a path prefix', 'https://helpdesk.example.test/c'],
    ['a trailing slash', 'https://helpdesk.example.test/cb/'],
    ['another scheme', 'http://helpdesk.example.test/cb'],
    ['an added query', 'https://helpdesk.example.test/cb?next=https://evil.example'],
    ['a fragment', 'https://helpdesk.example.test/cb#x'],
    ['userinfo in the authority', 'https://helpdesk.example.test@evil.example/cb'],
    ['a custom scheme', 'helpdesk:/cb'],
  ]) {
    it(`redirect_uri with ${what}: invalid_redirect_uri page, no redirect`, async () => {
      await assertErrorPage(await fetch(authUrl({ redirect_uri: uri! }), { redirect: 'manual' }), 'invalid_redirect_uri');
    });
  }

  it('missing or plain PKCE is refused (to the registered redirect_uri only)', async () => {
    const cases: Record<string, string>[] = [{ code_challenge: '', code_challenge_method: '' }, { code_challenge_method: 'plain' }];
    for (const params of cases) {
      const res = await fetch(authUrl(params), { redirect: 'manual' });
      assert.equal(res.status, 303);
      const loc = new URL(res.headers.get('location')!);
      assert.equal(loc.origin + loc.pathname, registered);
      assert.equal(loc.searchParams.get('error'), 'invalid_request');
    }
  });

  it('oversized parameters: invalid_request, no redirect', async () => {
    await assertErrorPage(await fetch(authUrl({ state: 'x'.repeat(5000) }), { redirect: 'manual' }), 'invalid_request');
    await assertErrorPage(await fetch(authUrl({ nonce: 'n'.repeat(3000), state: 's'.repeat(3000), login_hint: 'l'.repeat(3000) }), { redirect: 'manual' }), 'invalid_request');
    const many: Record<string, string> = {};
    for (let i = 0; i < 100; i++) many[`p${i}`] = 'v';
    await assertErrorPage(await fetch(authUrl(many), { redirect: 'manual' }), 'invalid_request');
    await assertErrorPage(await fetch(authUrl({ state: 'y'.repeat(40_000) }), { redirect: 'manual' }), 'invalid_request');
    const big = await fetch(`${stack.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${app.clientId}:${app.clientSecret}`).toString('base64')}` },
      body: `grant_type=authorization_code&code=${'c'.repeat(100_000)}`,
    });
    assert.equal(big.status, 400);
    assert.equal(((await big.json()) as { error: string }).error, 'invalid_request');
  });

  it('malformed encoding and unknown routes are client errors', async () => {
    for (const path of ['/auth?client_id=%E0%A4%A&redirect_uri=%', '/nope', '/interaction/does-not-exist', '/token/introspection', '/me']) {
      const res = await fetch(`${stack.issuer}${path}`, { redirect: 'manual' });
      assert.ok(res.status >= 400 && res.status < 500, `${path}: ${res.status}`);
      assert.equal(res.headers.get('location'), null);
    }
  });

  const token = (body: Record<string, string>, auth: string | null = `${app.clientId}:${app.clientSecret}`): Promise<Response> =>
    fetch(`${stack.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(auth ? { authorization: `Basic ${Buffer.from(auth).toString('base64')}` } : {}) },
      body: new URLSearchParams(body).toString(),
    });
  const errorOf = async (res: Response): Promise<string> => ((await res.json()) as { error: string }).error;

  it('token endpoint: unknown client or wrong secret → invalid_client (401); no secret → invalid_request', async () => {
    for (const auth of ['nope:secret', `${app.clientId}:wrong`, `${app.clientId}:${app.clientSecret}x`]) {
      const res = await token({ grant_type: 'authorization_code', code: 'x', redirect_uri: registered, code_verifier: 'v'.repeat(43) }, auth);
      assert.equal(res.status, 401, auth);
      assert.equal(await errorOf(res), 'invalid_client');
    }
    const empty = await token({ grant_type: 'authorization_code', code: 'x' }, `${app.clientId}:`);
    assert.equal(await errorOf(empty), 'invalid_request');
    const none = await token({ grant_type: 'authorization_code', code: 'x', client_id: app.clientId }, null);
    assert.equal(await errorOf(none), 'invalid_client');
    const unsupported = await token({ grant_type: 'password', username: 'alice', password: PASSWORD });
    assert.equal(await errorOf(unsupported), 'unsupported_grant_type');
  });

  it('a client_assertion JWT from a client_secret_basic client, or a forged one, is invalid_client', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ iss: app.clientId, sub: app.clientId, aud: `${stack.issuer}/token`, jti: 'j1', exp: Math.floor(Date.now() / 1000) - 600 })).toString('base64url');
    const sig = createHmac('sha256', app.clientSecret).update(`${header}.${payload}`).digest('base64url');
    const res = await token({ grant_type: 'authorization_code', code: 'x', redirect_uri: registered, code_verifier: 'v'.repeat(43), client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: `${header}.${payload}.${sig}` }, null);
    assert.equal(res.status, 401);
    assert.equal(await errorOf(res), 'invalid_client');
  });

  /** A fresh code for alice, obtained through the real login form. */
  const freshCode = async (): Promise<{ code: string; verifier: string }> => {
    const req = await authorizationRequest(rp, registered, 'openid');
    const cb = await signIn(new Browser(stack.issuer), req.url, 'alice', PASSWORD);
    return { code: cb.searchParams.get('code')!, verifier: req.verifier };
  };

  it('PKCE verifier mismatch → invalid_grant', async () => {
    const { code } = await freshCode();
    const res = await token({ grant_type: 'authorization_code', code, redirect_uri: registered, code_verifier: oidc.randomPKCECodeVerifier() });
    assert.equal(res.status, 400);
    assert.equal(await errorOf(res), 'invalid_grant');
  });

  it('redirect_uri at the token endpoint must match the authorization request → invalid_grant', async () => {
    const { code, verifier } = await freshCode();
    const res = await token({ grant_type: 'authorization_code', code, redirect_uri: 'https://helpdesk.example.test/cb/', code_verifier: verifier });
    assert.equal(await errorOf(res), 'invalid_grant');
  });

  it('a reused code → invalid_grant, and the tokens from its first use are revoked', async () => {
    const { code, verifier } = await freshCode();
    const first = await token({ grant_type: 'authorization_code', code, redirect_uri: registered, code_verifier: verifier });
    assert.equal(first.status, 200);
    const { access_token } = (await first.json()) as { access_token: string };
    const again = await token({ grant_type: 'authorization_code', code, redirect_uri: registered, code_verifier: verifier });
    assert.equal(again.status, 400);
    assert.equal(await errorOf(again), 'invalid_grant');
    assert.equal((await oidc.tokenIntrospection(rp, access_token)).active, false);
  });

  it('an expired code → invalid_grant; an expired access token → invalid_token', async () => {
    const { code, verifier } = await freshCode();
    const ns = 'oidc:AuthorizationCode';
    const stored = JSON.parse((await stack.directory.store.kvGet(ns, code))!);
    stored.exp = Math.floor(Date.now() / 1000) - 120;
    await stack.directory.store.kvSet(ns, code, JSON.stringify(stored), 600);
    const res = await token({ grant_type: 'authorization_code', code, redirect_uri: registered, code_verifier: verifier });
    assert.equal(await errorOf(res), 'invalid_grant');

    const { tokens } = await fullLogin(stack.issuer, rp, registered, 'alice');
    const atNs = 'oidc:AccessToken';
    const at = JSON.parse((await stack.directory.store.kvGet(atNs, tokens.access_token))!);
    at.exp = Math.floor(Date.now() / 1000) - 120;
    await stack.directory.store.kvSet(atNs, tokens.access_token, JSON.stringify(at), 600);
    const info = await fetch(`${stack.issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(info.status, 401);
    assert.match(info.headers.get('www-authenticate') ?? '', /invalid_token/);
  });

  it('a tampered ID token as id_token_hint: error page, no redirect to the post-logout URI', async () => {
    const { tokens } = await fullLogin(stack.issuer, rp, registered, 'alice');
    const [h, p, s] = tokens.id_token!.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'admin' })).toString('base64url')}.${s}`;
    for (const hint of [forged, `${h}.${p}.${s!.slice(0, -4)}AAAA`, 'not.a.jwt', 'x']) {
      const u = new URL('/session/end', stack.issuer);
      u.searchParams.set('id_token_hint', hint);
      u.searchParams.set('post_logout_redirect_uri', 'https://helpdesk.example.test/bye');
      await assertErrorPage(await fetch(u, { redirect: 'manual' }), 'invalid_request');
    }
    const u = new URL('/session/end', stack.issuer);
    u.searchParams.set('id_token_hint', tokens.id_token!);
    u.searchParams.set('post_logout_redirect_uri', 'https://evil.example/bye');
    await assertErrorPage(await fetch(u, { redirect: 'manual' }), 'invalid_request');
  });

  it('no method, path or body shape gives a server error', async () => {
    const paths = ['/', '/auth', '/auth/x', '/token', '/me', '/jwks', '/token/introspection', '/token/revocation', '/session/end', '/session/end/confirm', '/session/end/success', '/interaction/x', '/interaction/x/login', '/interaction/x/totp', '/.well-known/openid-configuration', '/request', '/%', '/..%2f..%2fetc/passwd'];
    const bodies: [string, string | undefined][] = [
      ['', undefined],
      ['application/x-www-form-urlencoded', 'a=%&b=%zz&&=&grant_type=authorization_code&code[]=1&code=2'],
      ['application/json', '{"grant_type":'],
      ['text/plain', 'x'.repeat(70_000)],
      ['application/x-www-form-urlencoded', `client_id=${app.clientId}&client_id=${app.clientId}&token=x`],
    ];
    const auth = `Basic ${Buffer.from(`${app.clientId}:${app.clientSecret}`).toString('base64')}`;
    for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'HEAD']) {
      for (const path of paths) {
        for (const [type, body] of method === 'GET' || method === 'HEAD' ? [bodies[0]!] : bodies) {
          for (const authorization of [undefined, auth, 'Basic !!!', 'Bearer']) {
            const headers: Record<string, string> = {};
            if (type) headers['content-type'] = type;
            if (authorization) headers.authorization = authorization;
            const res = await fetch(`${stack.issuer}${path}`, { method, headers, body, redirect: 'manual' });
            await res.arrayBuffer();
            assert.ok(res.status < 500, `${method} ${path} ${type} ${authorization ?? ''}: ${res.status}`);
          }
        }
      }
    }
  });

  it('a forged bearer token → invalid_token', async () => {
    const res = await fetch(`${stack.issuer}/me`, { headers: { authorization: `Bearer ${'a'.repeat(43)}` } });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /invalid_token/);
  });
});

describe('error-handling middleware', () => {
  it('answers a thrown client error with its status and anything else with a logged server_error, never a crash', async () => {
    const app = new Koa();
    app.silent = true;
    app.use(errorHandler(createLogger('oidc-test', 'silent')));
    app.use(async (ctx) => {
      if (ctx.path === '/client') throw Object.assign(new Error('nope'), { status: 400, expose: true });
      if (ctx.path === '/auth') throw new Error('boom');
      throw new TypeError('unexpected');
    });
    const server = http.createServer(app.callback());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const c = await fetch(`${base}/client`);
      assert.equal(c.status, 400);
      assert.deepEqual(await c.json(), { error: 'invalid_request', error_description: 'nope' });
      const s = await fetch(`${base}/token`);
      assert.equal(s.status, 500);
      assert.equal(((await s.json()) as { error: string }).error, 'server_error');
      const page = await fetch(`${base}/auth`);
      assert.equal(page.status, 500);
      assert.match(page.headers.get('content-type') ?? '', /html/);
      assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
    } finally {
      server.close();
    }
  });
});
