import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { totpCode } from '@hearth/directory';
import * as oidc from 'openid-client';
import { addOidcApp, addUser, idOf, authorizationRequest, Browser, formOf, rpConfig, PASSWORD, startStack, type SeededApp, type Stack } from './helpers.ts';

/** The login pages as a browser without JavaScript sees them. */
describe('login pages', () => {
  let stack: Stack;
  let open: SeededApp;
  let restricted: SeededApp;
  let rpOpen: oidc.Configuration;
  let rpRestricted: oidc.Configuration;
  let totpSecret: string;

  before(async () => {
    // A host name, so passkeys are on (an RP ID cannot be an address).
    stack = await startStack({ throttle: { perUser: 6, perAddress: 1000, windowSeconds: 60 }, issuerHost: 'localhost' });
    const d = stack.directory;
    await addUser(d, 'alice');
    await addUser(d, 'mallory');
    await addUser(d, 'tina');
    await addUser(d, 'locked');
    totpSecret = (await d.enableTotp('tina')).secret;
    const team = await d.addGroup('team');
    await d.addMember('team', 'alice');
    await d.addMember('team', 'tina');
    open = await addOidcApp(d, 'notes', { loginRedirectUri: '/cb' });
    restricted = await addOidcApp(d, 'payroll', { loginRedirectUri: '/cb' }, { access: { userIds: [], groupIds: [team.id] } });
    rpOpen = await rpConfig(stack.issuer, open.clientId, open.clientSecret);
    rpRestricted = await rpConfig(stack.issuer, restricted.clientId, restricted.clientSecret);
  });
  after(async () => stack.close());

  const loginPage = async (rp: oidc.Configuration, app: SeededApp, browser = new Browser(stack.issuer)) => {
    const req = await authorizationRequest(rp, app.redirectUri, 'openid');
    const r = await browser.go(req.url);
    return { browser, req, res: r.res, html: await r.res.text() };
  };

  it('serves an accessible, unframeable form with no inline script (only the passkey helper, from this origin)', async () => {
    const { res, html } = await loginPage(rpOpen, open);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.deepEqual(html.match(/<script[^>]*>/gi), ['<script src="/interaction-assets/passkeys.js" defer>']);
    assert.match(html, /<form method="post" action="[^"]+\/passkey" data-passkey="sign-in" data-options="[^"]+\/passkey-options" hidden>/, 'the passkey form is hidden until the script finds WebAuthn');
    assert.match(html, /<html lang="en">/);
    for (const id of ['login', 'password']) {
      assert.match(html, new RegExp(`<label for="${id}">`), `label for ${id}`);
      assert.match(html, new RegExp(`<input id="${id}" name="${id}"`), `input ${id}`);
    }
    assert.match(html, /autocomplete="username"/);
    assert.match(html, /autocomplete="current-password"/);
    assert.match(html, /<button type="submit">Sign in<\/button>/);
    assert.match(html, /name="csrf" value="[A-Za-z0-9_-]{20,}"/);
  });

  it('says clearly when the password is wrong, keeping what was typed', async () => {
    const { browser, html } = await loginPage(rpOpen, open);
    const form = formOf(html, '/login');
    const r = await browser.postForm(form.action, { ...form.fields, login: 'alice', password: 'wrong' });
    assert.equal(r.res.status, 401);
    const page = await r.res.text();
    assert.match(page, /role="alert">Incorrect username, email or password\./);
    assert.match(page, /aria-invalid="true"/);
    assert.match(page, /value="alice"/);
    const empty = await browser.postForm(form.action, { ...form.fields, login: '', password: '' });
    assert.equal(empty.res.status, 400);
    assert.match(await empty.res.text(), /Enter your username or email and your password/);
  });

  it('refuses a form without the right CSRF token', async () => {
    const a = await loginPage(rpOpen, open);
    const b = await loginPage(rpOpen, open);
    const formA = formOf(a.html, '/login');
    const formB = formOf(b.html, '/login');
    const missing = await a.browser.postForm(formA.action, { login: 'alice', password: PASSWORD });
    assert.equal(missing.res.status, 403);
    assert.equal(missing.leftTo, null);
    const crossed = await a.browser.postForm(formA.action, { csrf: formB.fields.csrf!, login: 'alice', password: PASSWORD });
    assert.equal(crossed.res.status, 403);
    // Without the interaction cookie (another browser), even a valid token does not help.
    const stranger = new Browser(stack.issuer);
    const r = await stranger.postForm(formA.action, { ...formA.fields, login: 'alice', password: PASSWORD });
    assert.equal(r.res.status, 400);
    assert.equal(r.leftTo, null);
    // The original form still works.
    const ok = await a.browser.postForm(formA.action, { ...formA.fields, login: 'alice', password: PASSWORD });
    assert.equal(ok.leftTo?.origin, 'https://notes.example.test');
  });

  it('throttles repeated failures (shared with the other protocols)', async () => {
    const { browser, html } = await loginPage(rpOpen, open);
    const form = formOf(html, '/login');
    for (let i = 0; i < 6; i++) await (await browser.postForm(form.action, { ...form.fields, login: 'locked', password: 'nope' })).res.text();
    const r = await browser.postForm(form.action, { ...form.fields, login: 'locked', password: PASSWORD });
    assert.equal(r.res.status, 429);
    assert.match(await r.res.text(), /Too many failed sign-in attempts/);
  });

  it('tells a user outside the access list that they may not use the app', async () => {
    const { browser, html } = await loginPage(rpRestricted, restricted);
    const form = formOf(html, '/login');
    const r = await browser.postForm(form.action, { ...form.fields, login: 'mallory', password: PASSWORD });
    assert.equal(r.res.status, 403);
    const page = await r.res.text();
    assert.match(page, /No access to Payroll/);
    assert.match(page, /<strong>mallory<\/strong> may not use Payroll/);
    assert.match(page, /Sign in with another account/);
    // "Back to the app" ends the request with access_denied at the registered redirect URI.
    const back = formOf(page, '/abort');
    const out = await browser.postForm(back.action, back.fields);
    assert.equal(out.leftTo?.origin + out.leftTo!.pathname, restricted.redirectUri);
    assert.equal(out.leftTo?.searchParams.get('error'), 'access_denied');
  });

  it('shows the same page to a signed-in user reaching an app they may not use, and lets them switch account', async () => {
    const browser = new Browser(stack.issuer);
    const first = await loginPage(rpOpen, open, browser);
    const f = formOf(first.html, '/login');
    const signedIn = await browser.postForm(f.action, { ...f.fields, login: 'mallory', password: PASSWORD });
    assert.ok(signedIn.leftTo, await signedIn.res.text());
    const second = await loginPage(rpRestricted, restricted, browser);
    assert.equal(second.res.status, 403);
    assert.match(second.html, /<strong>mallory<\/strong> may not use Payroll/);
    const href = /<a href="([^"]+)">Sign in with another account/.exec(second.html)![1]!.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)));
    const switchPage = await browser.go(href);
    const sf = formOf(await switchPage.res.text(), '/login');
    const switched = await browser.postForm(sf.action, { ...sf.fields, login: 'alice', password: PASSWORD });
    // The provider ends mallory's session first: a form that posts itself (a button without JavaScript).
    const endForm = formOf(await switched.res.text(), '/session/end/confirm');
    const done = await browser.postForm(endForm.action, endForm.fields);
    assert.ok(done.leftTo, 'back at the app as alice');
    const tokens = await oidc.authorizationCodeGrant(rpRestricted, done.leftTo, { pkceCodeVerifier: second.req.verifier, expectedState: second.req.state, expectedNonce: second.req.nonce });
    assert.equal(tokens.claims()!.sub, idOf(stack.directory, 'alice'));
  });

  it('asks users with 2FA for a TOTP code, explains a wrong one, and accepts the right one', async () => {
    const { browser, req, html } = await loginPage(rpRestricted, restricted);
    const form = formOf(html, '/login');
    const step = await browser.postForm(form.action, { ...form.fields, login: 'tina@example.test', password: PASSWORD });
    assert.equal(step.leftTo, null, 'a password alone is not enough');
    const totpHtml = await step.res.text();
    assert.match(totpHtml, /<label for="code">Authentication code<\/label>/);
    assert.match(totpHtml, /autocomplete="one-time-code"/);
    const tf = formOf(totpHtml, '/totp');
    const wrongCode = totpCode(totpSecret, Date.now() + 5 * 60_000);
    const wrong = await browser.postForm(tf.action, { ...tf.fields, code: wrongCode });
    assert.equal(wrong.res.status, 401);
    assert.match(await wrong.res.text(), /That code is not valid/);
    const code = totpCode(totpSecret);
    const ok = await browser.postForm(tf.action, { ...tf.fields, code });
    assert.ok(ok.leftTo, 'signed in after the right code');
    const tokens = await oidc.authorizationCodeGrant(rpRestricted, ok.leftTo, { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce });
    assert.equal(tokens.claims()!.sub, idOf(stack.directory, 'tina'));
    assert.deepEqual(tokens.claims()!.amr, ['pwd', 'otp']);
    // The same code a second time (another browser, same window) is refused.
    const other = await loginPage(rpRestricted, restricted);
    const of = formOf(other.html, '/login');
    const otherStep = await other.browser.postForm(of.action, { ...of.fields, login: 'tina', password: PASSWORD });
    const otf = formOf(await otherStep.res.text(), '/totp');
    const replay = await other.browser.postForm(otf.action, { ...otf.fields, code });
    assert.equal(replay.leftTo, null);
    assert.match(await replay.res.text(), /already used/);
  });

  it('sends a user back to the password step after too many wrong codes', async () => {
    const { browser, html } = await loginPage(rpOpen, open);
    const form = formOf(html, '/login');
    const step = await browser.postForm(form.action, { ...form.fields, login: 'tina', password: PASSWORD });
    const tf = formOf(await step.res.text(), '/totp');
    let last = '';
    for (let i = 0; i < 5; i++) last = await (await browser.postForm(tf.action, { ...tf.fields, code: '000000' === totpCode(totpSecret) ? '111111' : '000000' })).res.text();
    assert.match(last, /Too many wrong codes/);
    const again = await browser.postForm(tf.action, { ...tf.fields, code: totpCode(totpSecret) });
    assert.equal(again.leftTo, null);
    assert.match(await again.res.text(), /Sign in with your password first/);
  });

  it('audits logins and token issues', async () => {
    const events = await stack.directory.store.listAudit({ protocol: 'oidc', limit: 500 });
    assert.ok(events.some((e) => e.ok && e.username === 'alice' && e.appId === 'payroll' && e.detail === null), 'password login');
    assert.ok(events.some((e) => e.ok && e.username === 'alice' && /token issued \(authorization_code\)/.test(e.detail ?? '')), 'token issue');
    assert.ok(events.some((e) => !e.ok && e.username === 'mallory' && e.detail === 'not_allowed'));
    assert.ok(events.some((e) => e.ok && e.username === 'tina' && e.detail === 'totp'));
  });
});

describe('behind TLS', () => {
  it('marks every cookie Secure when the issuer is https', async () => {
    const stack = await startStack({ issuer: 'https://login.example.test' });
    try {
      const app = await addOidcApp(stack.directory, 'notes', { loginRedirectUri: '/cb' });
      const base = `http://127.0.0.1:${stack.server.port}`;
      const u = new URL('/auth', base);
      for (const [k, v] of Object.entries({ client_id: app.clientId, response_type: 'code', scope: 'openid', redirect_uri: app.redirectUri, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' })) u.searchParams.set(k, v);
      const res = await fetch(u, { redirect: 'manual', headers: { 'x-forwarded-proto': 'http' } });
      assert.equal(res.status, 303);
      const cookies = res.headers.getSetCookie();
      assert.ok(cookies.length > 0);
      for (const c of cookies) assert.match(c, /;\s*secure/i, c);
      const meta = (await (await fetch(`${base}/.well-known/openid-configuration`)).json()) as { authorization_endpoint: string };
      assert.equal(meta.authorization_endpoint, 'https://login.example.test/auth');
    } finally {
      await stack.close();
    }
  });
});

describe('login pages with the issuer at an IP address', () => {
  it('offer no passkey form: an address cannot be an RP ID, so passkeys are off rather than broken', async () => {
    const stack = await startStack();
    try {
      assert.equal(stack.env.config.webauthnRpId, null);
      const app = await addOidcApp(stack.directory, 'notes', { loginRedirectUri: '/cb' });
      const rp = await rpConfig(stack.issuer, app.clientId, app.clientSecret);
      const req = await authorizationRequest(rp, app.redirectUri, 'openid');
      const r = await new Browser(stack.issuer).go(req.url);
      const html = await r.res.text();
      assert.equal(r.res.status, 200);
      assert.match(html, /<input id="password"/);
      assert.doesNotMatch(html, /data-passkey|<script/);
    } finally {
      await stack.close();
    }
  });
});
