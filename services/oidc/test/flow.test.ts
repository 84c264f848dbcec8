import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '@hearth/testkit';
import * as oidc from 'openid-client';
import { rotateKeys } from '../src/keys.ts';
import { addOidcApp, addUser, idOf, Browser, formOf, fullLogin, rpConfig, startStack, type SeededApp, type Stack } from './helpers.ts';
import { decodeJwt, fetchJwks, verifyJwt } from './jwt.ts';

describe('openid-client as a relying party', () => {
  let stack: Stack;
  let helpdesk: SeededApp;
  let meet: SeededApp;
  let rp: oidc.Configuration;
  const backchannel: { url: string; body: string }[] = [];

  before(async () => {
    stack = await startStack({
      oidc: {
        fetch: async (url, init) => {
          backchannel.push({ url: String(url), body: String(init?.body) });
          return new Response(null, { status: 200 });
        },
      },
    });
    const d = stack.directory;
    helpdesk = await addOidcApp(d, 'helpdesk', { loginRedirectUri: '/auth/openid/callback, app.helpdesk:/', logoutRedirectUri: '/home', tokenSignatureAlgorithm: 'RS256', backchannelLogoutUri: '/oidc/backchannel' });
    meet = await addOidcApp(d, 'meet', { loginRedirectUri: '/callback', tokenSignatureAlgorithm: 'EdDSA' });
    await addUser(d, 'alice', { displayName: 'Alice Liddell' });
    await d.addGroup('staff');
    await d.addMember('staff', 'alice');
    rp = await rpConfig(stack.issuer, helpdesk.clientId, helpdesk.clientSecret);
  });
  after(async () => stack.close());

  it('publishes the endpoints provisioning hands out', async () => {
    const m = rp.serverMetadata();
    assert.equal(m.issuer, stack.issuer);
    assert.equal(m.authorization_endpoint, `${stack.issuer}/auth`);
    assert.equal(m.token_endpoint, `${stack.issuer}/token`);
    assert.equal(m.jwks_uri, `${stack.issuer}/jwks`);
    assert.equal(m.userinfo_endpoint, `${stack.issuer}/me`);
    assert.equal(m.introspection_endpoint, `${stack.issuer}/token/introspection`);
    assert.equal(m.revocation_endpoint, `${stack.issuer}/token/revocation`);
    assert.equal(m.end_session_endpoint, `${stack.issuer}/session/end`);
    assert.deepEqual(m.code_challenge_methods_supported, ['S256']);
    const jwks = await fetchJwks(stack.issuer);
    assert.deepEqual(jwks.keys.map((k) => k.alg).sort(), ['EdDSA', 'RS256']);
    assert.ok(jwks.keys.every((k) => k.d === undefined), 'no private parts published');
  });

  it('runs the code + PKCE flow and returns Cloudron claims in the ID token and from userinfo', async () => {
    const { tokens, callback } = await fullLogin(stack.issuer, rp, helpdesk.redirectUri, 'alice');
    assert.equal(callback.origin + callback.pathname, helpdesk.redirectUri);
    const idt = tokens.id_token!;
    assert.equal(decodeJwt(idt).header.alg, 'RS256');
    assert.ok(verifyJwt(idt, await fetchJwks(stack.issuer)));
    const claims = tokens.claims()!;
    assert.equal(claims.sub, idOf(stack.directory, 'alice'));
    assert.equal(claims.aud, helpdesk.clientId);
    const expected = { preferred_username: 'alice', name: 'Alice Liddell', given_name: 'Alice', family_name: 'Liddell', email: 'alice@example.test', email_verified: true, groups: ['staff'], locale: 'en-US' };
    for (const [k, v] of Object.entries(expected)) assert.deepEqual(claims[k], v, k);
    assert.ok(tokens.refresh_token, 'offline_access gives a refresh token');
    const info = await oidc.fetchUserInfo(rp, tokens.access_token, idOf(stack.directory, 'alice'));
    for (const [k, v] of Object.entries(expected)) assert.deepEqual(info[k], v, `userinfo ${k}`);
  });

  it('signs in by email too', async () => {
    const { tokens } = await fullLogin(stack.issuer, rp, helpdesk.redirectUri, 'alice@example.test');
    assert.equal(tokens.claims()!.sub, idOf(stack.directory, 'alice'));
  });

  it('rotates refresh tokens; replaying a used one revokes the whole family', async () => {
    const { tokens } = await fullLogin(stack.issuer, rp, helpdesk.redirectUri, 'alice');
    const first = tokens.refresh_token!;
    const second = await oidc.refreshTokenGrant(rp, first);
    assert.ok(second.access_token);
    assert.ok(second.refresh_token && second.refresh_token !== first);
    assert.equal(second.claims()?.sub, idOf(stack.directory, 'alice'));
    const third = await oidc.refreshTokenGrant(rp, second.refresh_token);
    assert.ok(third.refresh_token);
    await assert.rejects(oidc.refreshTokenGrant(rp, first), (e: oidc.ResponseBodyError) => e.error === 'invalid_grant');
    // Replay means theft: the current token of that family stops working too.
    await assert.rejects(oidc.refreshTokenGrant(rp, third.refresh_token), (e: oidc.ResponseBodyError) => e.error === 'invalid_grant');
  });

  it('introspects and revokes tokens', async () => {
    const { tokens } = await fullLogin(stack.issuer, rp, helpdesk.redirectUri, 'alice');
    const live = await oidc.tokenIntrospection(rp, tokens.access_token);
    assert.equal(live.active, true);
    assert.equal(live.sub, idOf(stack.directory, 'alice'));
    assert.equal(live.client_id, helpdesk.clientId);
    await oidc.tokenRevocation(rp, tokens.access_token);
    assert.equal((await oidc.tokenIntrospection(rp, tokens.access_token)).active, false);
    await assert.rejects(oidc.fetchUserInfo(rp, tokens.access_token, idOf(stack.directory, 'alice')));
    await oidc.tokenRevocation(rp, tokens.refresh_token!);
    await assert.rejects(oidc.refreshTokenGrant(rp, tokens.refresh_token!), (e: oidc.ResponseBodyError) => e.error === 'invalid_grant');
    // Another app cannot look at this app's tokens.
    const other = await rpConfig(stack.issuer, meet.clientId, meet.clientSecret);
    const fresh = await fullLogin(stack.issuer, rp, helpdesk.redirectUri, 'alice');
    assert.equal((await oidc.tokenIntrospection(other, fresh.tokens.access_token)).active, false);
  });

  it('signs ID tokens with EdDSA for a client that asks for it (meet.json)', async () => {
    const meetRp = await rpConfig(stack.issuer, meet.clientId, meet.clientSecret);
    const { tokens } = await fullLogin(stack.issuer, meetRp, meet.redirectUri, 'alice');
    const { header, payload } = decodeJwt(tokens.id_token!);
    assert.equal(header.alg, 'EdDSA');
    assert.equal(payload.sub, idOf(stack.directory, 'alice'));
    assert.ok(verifyJwt(tokens.id_token!, await fetchJwks(stack.issuer)));
  });

  it('reuses the browser session for a second app (single sign-on, no consent page)', async () => {
    const first = await fullLogin(stack.issuer, rp, helpdesk.redirectUri, 'alice');
    const meetRp = await rpConfig(stack.issuer, meet.clientId, meet.clientSecret);
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(meetRp, { redirect_uri: meet.redirectUri, scope: 'openid profile', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const r = await first.browser.go(url);
    assert.ok(r.leftTo, 'redirected straight back to the app');
    const tokens = await oidc.authorizationCodeGrant(meetRp, r.leftTo, { pkceCodeVerifier: verifier, idTokenExpected: true });
    assert.equal(tokens.claims()!.sub, idOf(stack.directory, 'alice'));
    assert.deepEqual(tokens.claims()!.groups, ['staff'], 'groups come with the profile scope too');
    assert.equal(tokens.claims()!.email, undefined, 'no email claim without the email scope');
  });

  it('logs out after a confirmation page, tells back-channel apps, and returns to the registered URI', async () => {
    const { tokens, browser } = await fullLogin(stack.issuer, rp, helpdesk.redirectUri, 'alice');
    const sid = decodeJwt(tokens.id_token!).payload.sid;
    backchannel.length = 0;
    const end = oidc.buildEndSessionUrl(rp, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'https://helpdesk.example.test/home', state: 'bye' });
    const page = await browser.go(end);
    assert.equal(page.res.status, 200);
    const html = await page.res.text();
    assert.match(html, /Sign out/);
    const form = formOf(html);
    const done = await browser.postForm(form.action, { ...form.fields, logout: 'yes' });
    assert.equal(done.leftTo?.href, 'https://helpdesk.example.test/home?state=bye');
    assert.equal(backchannel.length, 1);
    assert.equal(backchannel[0]!.url, 'https://helpdesk.example.test/oidc/backchannel');
    const logoutToken = new URLSearchParams(backchannel[0]!.body).get('logout_token')!;
    const lt = decodeJwt(logoutToken).payload;
    assert.equal(lt.aud, helpdesk.clientId);
    assert.equal(lt.sid, sid);
    assert.ok(lt.events && typeof lt.events === 'object' && 'http://schemas.openid.net/event/backchannel-logout' in lt.events);
    assert.ok(verifyJwt(logoutToken, await fetchJwks(stack.issuer)));
    // The session is gone: the next authorization request shows the login form again.
    const again = await browser.go(oidc.buildAuthorizationUrl(rp, { redirect_uri: helpdesk.redirectUri, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' }));
    assert.equal(again.leftTo, null);
    assert.match(await again.res.text(), /name="password"/);
  });

  it('follows installs, secret rotations and uninstalls without a restart', async () => {
    const wiki = await addOidcApp(stack.directory, 'wiki', { loginRedirectUri: '/oauth/callback' });
    const wikiRp = await rpConfig(stack.issuer, wiki.clientId, wiki.clientSecret);
    const { tokens } = await fullLogin(stack.issuer, wikiRp, wiki.redirectUri, 'alice');
    assert.equal(tokens.claims()!.aud, wiki.clientId);
    // Rotate the secret: the old one stops working, the new one works.
    await stack.directory.putApp({ ...wiki.app, credentials: { oidc: { clientId: wiki.clientId, clientSecret: 'rotated-secret-0123456789' } } }, []);
    await assert.rejects(oidc.refreshTokenGrant(wikiRp, tokens.refresh_token!), (e: oidc.ResponseBodyError) => e.error === 'invalid_client');
    const rotated = await rpConfig(stack.issuer, wiki.clientId, 'rotated-secret-0123456789');
    assert.ok((await oidc.refreshTokenGrant(rotated, tokens.refresh_token!)).access_token);
    // Uninstall: the client is unknown, the authorization endpoint shows an error instead of redirecting.
    await stack.directory.deleteApp('wiki');
    const browser = new Browser(stack.issuer);
    const r = await browser.go(oidc.buildAuthorizationUrl(wikiRp, { redirect_uri: wiki.redirectUri, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' }));
    assert.equal(r.leftTo, null);
    assert.equal(r.res.status, 400);
    assert.match(await r.res.text(), /invalid_client/);
  });

  it('rotates signing keys without breaking tokens already issued', async () => {
    const before = await fullLogin(stack.issuer, rp, helpdesk.redirectUri, 'alice');
    const oldKid = decodeJwt(before.tokens.id_token!).header.kid;
    const { kids } = await rotateKeys(stack.env.config, stack.directory.store);
    assert.equal(kids.length, 4);
    await waitFor(async () => (await fetchJwks(stack.issuer)).keys.length === 4);
    const jwks = await fetchJwks(stack.issuer);
    assert.equal(jwks.keys[0]!.kid, kids[0]);
    assert.ok(verifyJwt(before.tokens.id_token!, jwks), 'old ID token still verifies against the published keys');
    const refreshed = await oidc.refreshTokenGrant(rp, before.tokens.refresh_token!);
    assert.ok(refreshed.access_token);
    const afterLogin = await fullLogin(stack.issuer, rp, helpdesk.redirectUri, 'alice');
    const newKid = decodeJwt(afterLogin.tokens.id_token!).header.kid;
    assert.notEqual(newKid, oldKid);
    assert.ok(kids.includes(String(newKid)));
    assert.ok(verifyJwt(afterLogin.tokens.id_token!, jwks));
  });
});
