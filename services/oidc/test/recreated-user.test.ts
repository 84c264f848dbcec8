import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Directory, type User } from '@hearth/directory';
import { createLogger } from '@hearth/log';
import { freePort, testEnv, waitFor, type TestEnv } from '@hearth/testkit';
import * as oidc from 'openid-client';
import { startOidc, type RunningOidc } from '../src/server.ts';
import { addOidcApp, addUser, fullLogin, rpConfig, type LoginResult, type SeededApp } from './helpers.ts';

/**
 * sub and every stored session, grant and token carry the user's immutable id, checked on each use:
 * a user deleted while no provider was running (so nothing was purged) and re-created under the same
 * name is someone else, and what the old account held works for nobody.
 */
describe('a user deleted while the provider is down and re-created under the same name', () => {
  let env: TestEnv;
  let directory: Directory;
  let server: RunningOidc;
  let app: SeededApp;
  let rp: oidc.Configuration;
  let port: number;
  let issuer: string;
  let old: User;
  let fresh: User;
  let held: LoginResult;
  const start = async (): Promise<RunningOidc> => startOidc({ config: env.config, directory, logger: createLogger('oidc-test', env.config.logLevel) }, { port });

  before(async () => {
    port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    env = await testEnv({ env: { HEARTH_OIDC_ISSUER: issuer } });
    directory = await Directory.open(env.config, { watch: true });
    server = await start();
    app = await addOidcApp(directory, 'helpdesk', { loginRedirectUri: '/cb' });
    rp = await rpConfig(issuer, app.clientId, app.clientSecret);
    old = await addUser(directory, 'erin');
    held = await fullLogin(issuer, rp, app.redirectUri, 'erin');
    assert.equal(held.tokens.claims()!.sub, old.id);
    assert.equal(held.tokens.claims()!.preferred_username, 'erin');

    await server.close();
    // the CLI, while no provider runs: nothing hears the deletion
    const cli = await Directory.open(env.config);
    await cli.deleteUser('erin');
    fresh = await addUser(cli, 'erin');
    await cli.close();
    await waitFor(() => directory.findUser('erin')?.id === fresh.id, 5000);
    server = await start();
  });
  after(async () => {
    await server.close();
    await directory.close();
    await env.cleanup();
  });

  it('the old refresh token is refused', async () => {
    await assert.rejects(oidc.refreshTokenGrant(rp, held.tokens.refresh_token!), (e: oidc.ResponseBodyError) => e.error === 'invalid_grant');
  });

  it('the old access token gets no userinfo and introspects as inactive', async () => {
    await assert.rejects(oidc.fetchUserInfo(rp, held.tokens.access_token, oidc.skipSubjectCheck));
    assert.equal((await oidc.tokenIntrospection(rp, held.tokens.access_token)).active, false);
  });

  it('the old browser session signs nobody in silently', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const again = await held.browser.go(
      oidc.buildAuthorizationUrl(rp, { redirect_uri: app.redirectUri, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' }),
    );
    assert.equal(again.leftTo, null, 'redirected back to the app without a sign-in');
    assert.match(await again.res.text(), /name="password"/);
  });

  it('the new user signs in as a different subject', async () => {
    const { tokens } = await fullLogin(issuer, rp, app.redirectUri, 'erin');
    assert.equal(tokens.claims()!.sub, fresh.id);
    assert.notEqual(fresh.id, old.id);
    assert.equal((await oidc.fetchUserInfo(rp, tokens.access_token, fresh.id)).preferred_username, 'erin');
  });
});
