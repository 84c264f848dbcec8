import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SESSION_COOKIE } from '../src/session.ts';
import { HttpBrowser, formOf } from './helpers.ts';
import { PASSWORD, proxyAuthApp, startSignInStack, submitLogin, type SignInStack } from './stack.ts';

/**
 * The whole sign-in through services/oidc, over plain HTTP with a cookie jar: the wall,
 * the provider's login form, the callback, the app; a second app with no new login;
 * /logout ending both sessions.
 */

let stack: SignInStack;

const at = (id: string, path: string): string => stack.at(id, path);

before(async () => {
  stack = await startSignInStack(async (directory, upstream) => {
    await directory.addUser({ username: 'alice', email: 'alice@example.test', password: PASSWORD, displayName: 'Alice' });
    await directory.addUser({ username: 'bob', email: 'bob@example.test', password: PASSWORD });
    const staff = await directory.addGroup('staff');
    await directory.addMember('staff', 'alice');
    await directory.putApp(proxyAuthApp(upstream.url, 'wall', {}, { cookieSecret: true, extra: { access: { userIds: [], groupIds: [staff.id] } } }), []);
    await directory.putApp(proxyAuthApp(upstream.url, 'adm', { path: '/admin' }, { cookieSecret: true }), []);
  });
});

after(async () => {
  await stack?.close();
});

test('sign in through the provider, land on the page asked for, then a second app without a new login, then log out', async () => {
  const browser = new HttpBrowser();

  // The wall sends the browser through /login to the provider's login form.
  const first = await browser.go(at('wall', '/reports?month=5'));
  assert.equal(first.hops[0]!.status, 302);
  assert.equal(first.hops[0]!.headers.location, '/login?redirect=%2Freports%3Fmonth%3D5');
  const toProvider = first.hops[1]!;
  assert.equal(toProvider.status, 302);
  const auth = new URL(toProvider.headers.location!);
  assert.equal(auth.origin, stack.issuer);
  assert.equal(auth.searchParams.get('client_id'), 'proxyauth-wall');
  assert.equal(auth.searchParams.get('redirect_uri'), at('wall', '/login/callback'));
  assert.equal(auth.searchParams.get('code_challenge_method'), 'S256');
  assert.ok(auth.searchParams.get('state') && auth.searchParams.get('nonce'));
  assert.equal(first.final.url.origin, stack.issuer);
  assert.equal(first.final.status, 200);

  // Password at the provider; back through the callback to the page first asked for.
  const signedIn = await submitLogin(browser, first.final, 'alice');
  const callback = signedIn.hops.find((h) => h.url.pathname === '/login/callback');
  assert.ok(callback, 'the provider did not return to /login/callback');
  assert.equal(callback.status, 302);
  assert.equal(callback.headers.location, '/reports?month=5');
  const cookie = browser.cookie('wall.example.test', SESSION_COOKIE);
  assert.ok(cookie);
  assert.match(cookie.attributes, /HttpOnly/);
  assert.match(cookie.attributes, /SameSite=Lax/);
  assert.doesNotMatch(cookie.attributes, /Secure/);
  assert.equal(signedIn.final.status, 200);
  assert.equal(signedIn.final.url.href, at('wall', '/reports?month=5'));
  const echo = JSON.parse(signedIn.final.body);
  assert.equal(echo.headers['x-remote-user'], 'alice');
  assert.equal(echo.headers['x-remote-email'], 'alice@example.test');
  assert.equal(echo.headers['x-remote-groups'], 'staff');
  assert.equal(echo.headers.cookie, undefined);

  // A second app: the provider session signs the browser in without a form.
  const second = await browser.go(at('adm', '/admin/settings'));
  assert.ok(second.hops.some((h) => h.url.origin === stack.issuer));
  assert.ok(!second.hops.some((h) => /<form[^>]*\/login"/.test(h.body)), 'the provider asked for the password again');
  assert.equal(second.final.status, 200);
  assert.equal(second.final.url.href, at('adm', '/admin/settings'));
  assert.equal(JSON.parse(second.final.body).headers['x-remote-user'], 'alice');

  // The longest return path kept still fits the sign-in state cookie.
  const long = `/admin/${'x'.repeat(1980)}`;
  const sealed = await new HttpBrowser().request(at('adm', `/login?redirect=${encodeURIComponent(long)}`));
  const stateCookie = String(sealed.headers['set-cookie']).split(';')[0]!;
  assert.ok(stateCookie.length < 4000, `state cookie is ${stateCookie.length} bytes`);

  // Open redirects are refused by the real flow too.
  for (const evil of ['https://evil.example/', '//evil.example', '/\\evil.example']) {
    const r = await browser.request(at('adm', `/login?redirect=${encodeURIComponent(evil)}`));
    assert.equal(r.headers.location, '/', evil);
  }

  // /logout: the gateway session ends at once; the provider confirms and ends its own.
  const out = await browser.request(at('wall', '/logout'));
  assert.equal(out.status, 302);
  const endSession = new URL(out.headers.location!);
  assert.equal(endSession.origin + endSession.pathname, `${stack.issuer}/session/end`);
  assert.equal(endSession.searchParams.get('post_logout_redirect_uri'), at('wall', '/'));
  assert.ok(endSession.searchParams.get('id_token_hint'));
  assert.equal(browser.cookie('wall.example.test', SESSION_COOKIE), undefined);
  // Single logout: the gateway session on the second app ended with it.
  const other = await browser.request(at('adm', '/admin/settings'));
  assert.equal(other.status, 302);
  assert.equal(other.headers.location, '/login?redirect=%2Fadmin%2Fsettings');
  const confirm = await browser.go(endSession);
  const form = formOf(confirm.final, '/confirm');
  const done = await browser.go(form.action, { form: { ...form.fields, logout: 'yes' } });
  assert.ok(done.hops.some((h) => h.url.href === at('wall', '/')), 'the provider did not return to the app');

  // Both are over: the wall and the provider ask for the password again.
  const again = await browser.go(at('wall', '/reports'));
  assert.equal(again.final.url.origin, stack.issuer);
  assert.match(again.final.body, /password/i);
  formOf(again.final, '/login');
});

test('sign-ins started in two tabs at once both complete', async () => {
  const browser = new HttpBrowser();
  const tab1 = await browser.request(at('adm', '/login?redirect=/admin/one'));
  const tab2 = await browser.request(at('adm', '/login?redirect=/admin/two'));
  // Tab 1 signs in with the password; tab 2 then rides the provider session.
  const page = await browser.go(tab1.headers.location!);
  const one = await submitLogin(browser, page.final, 'alice');
  assert.equal(one.final.url.href, at('adm', '/admin/one'));
  const two = await browser.go(tab2.headers.location!);
  assert.equal(two.final.url.href, at('adm', '/admin/two'));
  assert.equal(JSON.parse(two.final.body).headers['x-remote-user'], 'alice');
  assert.ok(!browser.cookies.some((c) => c.name.includes('_login_')), 'sign-in state cookies are cleared');
});

test('a user outside the access list is refused (by the provider, and the gateway never opens a session)', async () => {
  const browser = new HttpBrowser();
  const first = await browser.go(at('wall', '/'));
  const r = await submitLogin(browser, first.final, 'bob');
  assert.equal(r.final.status, 403);
  assert.equal(browser.cookie('wall.example.test', SESSION_COOKIE), undefined);
});

test('behind TLS (X-Forwarded-Proto: https) the redirect URI is https and cookies are Secure', async () => {
  const browser = new HttpBrowser();
  const r = await browser.request(at('adm', '/login?redirect=/admin'), { headers: { 'X-Forwarded-Proto': 'https' } });
  assert.equal(r.status, 302);
  assert.equal(new URL(r.headers.location!).searchParams.get('redirect_uri'), 'https://adm.example.test/login/callback');
  const setCookie = String(r.headers['set-cookie']);
  // __Host- names cannot be planted by a sibling subdomain.
  assert.match(setCookie, /^__Host-hearth_proxyauth_login_[A-Za-z0-9_-]{16}=/);
  assert.match(setCookie, /; Secure/);
  assert.match(setCookie, /; HttpOnly/);
  assert.match(setCookie, /; Path=\/;/);
  assert.match(setCookie, /; SameSite=Lax/);
});

test('a callback without the browser\'s sign-in state, or with a forged state, does not sign in', async () => {
  const browser = new HttpBrowser();
  const first = await browser.go(at('adm', '/admin'));
  assert.equal(first.final.url.origin, stack.issuer);
  const form = formOf(first.final, '/login');
  const posted = await browser.request(form.action, { form: { ...form.fields, login: 'alice', password: PASSWORD } });
  // Follow the provider's redirects until the callback URL shows up, but do not call it yet.
  let res = posted;
  while (res.headers.location && !res.headers.location.includes('/login/callback')) res = await browser.request(new URL(res.headers.location, res.url));
  const callback = new URL(res.headers.location!, res.url);
  assert.equal(callback.pathname, '/login/callback');

  const stranger = new HttpBrowser();
  const r1 = await stranger.request(callback);
  assert.equal(r1.status, 400);
  assert.equal(stranger.cookie('adm.example.test', SESSION_COOKIE), undefined);

  const tampered = new URL(callback);
  tampered.searchParams.set('state', 'forged');
  const r2 = await browser.request(tampered);
  assert.equal(r2.status, 400);
  assert.equal(browser.cookie('adm.example.test', SESSION_COOKIE), undefined);
});
