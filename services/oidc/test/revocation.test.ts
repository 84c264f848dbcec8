import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Directory } from '@hearth/directory';
import { waitFor } from '@hearth/testkit';
import * as oidc from 'openid-client';
import { ACCOUNT_MODELS } from '../src/storage.ts';
import { decodeJwt } from './jwt.ts';
import { addOidcApp, addUser, fullLogin, rpConfig, startStack, type SeededApp, type Stack } from './helpers.ts';

/**
 * A user disabled or deleted by another process (the CLI) loses sessions and tokens as soon
 * as the provider's directory view has the change (it arrives within ~250 ms); nothing here
 * adds latency on top of that, which is what these tests pin down.
 */
describe('disabled and deleted users', () => {
  let stack: Stack;
  let cli: Directory;
  let app: SeededApp;
  let rp: oidc.Configuration;
  const logoutTokens: string[] = [];

  before(async () => {
    stack = await startStack({
      oidc: {
        fetch: async (_url, init) => {
          logoutTokens.push(new URLSearchParams(String(init?.body)).get('logout_token') ?? '');
          return new Response(null, { status: 204 });
        },
      },
    });
    cli = await Directory.open(stack.env.config);
    app = await addOidcApp(stack.directory, 'helpdesk', { loginRedirectUri: '/cb', backchannelLogoutUri: '/oidc/logout' });
    rp = await rpConfig(stack.issuer, app.clientId, app.clientSecret);
  });
  after(async () => {
    await cli.close();
    await stack.close();
  });

  const countStored = async (accountId: string): Promise<number> => {
    let n = 0;
    for (const model of ACCOUNT_MODELS) n += (await stack.directory.store.kvFindWhere(`oidc:${model}`, 'accountId', accountId)).length;
    return n;
  };

  for (const change of ['disable', 'delete'] as const) {
    it(`${change}: refresh, userinfo and the browser session stop working once the change is seen`, async (t) => {
      const name = `bob-${change}`;
      const user = await addUser(stack.directory, name);
      const { tokens, browser } = await fullLogin(stack.issuer, rp, app.redirectUri, name);
      assert.ok(await countStored(user.id) > 0);
      await cli.refresh();
      const started = Date.now();
      if (change === 'disable') await cli.setActive(name, false);
      else await cli.deleteUser(name);
      await waitFor(() => {
        const u = stack.directory.userByUsername(name);
        return !u || !u.active;
      }, 5000, 10);
      const seenAfter = Date.now() - started;
      await assert.rejects(oidc.refreshTokenGrant(rp, tokens.refresh_token!), (e: oidc.ResponseBodyError) => e.error === 'invalid_grant');
      await assert.rejects(oidc.fetchUserInfo(rp, tokens.access_token, user.id));
      assert.equal((await oidc.tokenIntrospection(rp, tokens.access_token)).active, false);
      const verifier = oidc.randomPKCECodeVerifier();
      const again = await browser.go(oidc.buildAuthorizationUrl(rp, { redirect_uri: app.redirectUri, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' }));
      assert.equal(again.leftTo, null, 'no silent sign-in for a disabled user');
      assert.match(await again.res.text(), /name="password"/);
      await waitFor(async () => (await countStored(user.id)) === 0, 2000);
      // The app hears about it on its back-channel logout URI, for the session it was given.
      const sid = decodeJwt(tokens.id_token!).payload.sid;
      const told = logoutTokens.map((t) => decodeJwt(t).payload).find((p) => p.sub === user.id);
      assert.ok(told, 'a logout token for the user');
      assert.equal(told.sid, sid);
      assert.equal(told.aud, app.clientId);
      t.diagnostic(`directory change seen by the provider after ${seenAfter} ms`);
    });
  }

  it('a user removed from the access list can no longer refresh', async () => {
    const carol = await addUser(stack.directory, 'carol');
    const group = await stack.directory.addGroup('helpdesk-users');
    await stack.directory.addMember('helpdesk-users', 'carol');
    await stack.directory.putApp({ ...app.app, access: { userIds: [], groupIds: [group.id] } }, []);
    const { tokens } = await fullLogin(stack.issuer, rp, app.redirectUri, 'carol');
    assert.ok((await oidc.refreshTokenGrant(rp, tokens.refresh_token!)).access_token);
    const again = await fullLogin(stack.issuer, rp, app.redirectUri, 'carol');
    await stack.directory.removeMember('helpdesk-users', carol.username);
    await assert.rejects(oidc.refreshTokenGrant(rp, again.tokens.refresh_token!), (e: oidc.ResponseBodyError) => e.error === 'invalid_grant');
  });
});
