import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Directory } from '@hearth/directory';
import { hearth, MANIFESTS, testEnv, type TestEnv } from '@hearth/testkit';

describe('hearth app show prints everything app install stored, and no secret', () => {
  let t: TestEnv;
  const cli = async (args: string[]): Promise<string> => {
    const r = await hearth(args, { env: t.env });
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  before(async () => {
    t = await testEnv({ env: { HEARTH_PROXYAUTH_PORT: '4180' } });
    await cli(['user', 'add', 'alice', '--email', 'alice@example.test', '--password', 'correct horse']);
    await cli(['group', 'add', 'staff']);
    await cli(['app', 'install', path.join(MANIFESTS, 'helpdesk.json'), '--id', 'helpdesk', '--domain', 'helpdesk.example.test', '--access', 'users:alice groups:staff']);
    await cli(['app', 'install', path.join(MANIFESTS, 'dashboard.json'), '--id', 'dash', '--domain', 'dash.example.test', '--upstream', 'http://127.0.0.21:9000']);
  });
  after(() => t.cleanup());

  it('the OIDC client: redirect URIs as registered, options, client id, access list', async () => {
    const show = JSON.parse(await cli(['app', 'show', 'helpdesk', '--json']));
    assert.equal(show.access, 'users:alice groups:staff');
    assert.equal(show.manifestId, 'org.example.helpdesk');
    assert.equal(show.httpPort, 3000);
    // the seed: paths are resolved on https://<domain>, custom schemes kept as they are
    assert.deepEqual(show.addons.oidc.redirectUris, ['https://helpdesk.example.test/auth/openid/callback', 'app.helpdesk:/']);
    assert.deepEqual(show.addons.oidc.postLogoutRedirectUris, ['https://helpdesk.example.test/home']);
    assert.equal(show.addons.oidc.options.tokenSignatureAlgorithm, 'RS256');
    assert.equal(show.addons.oidc.clientId, 'cid-helpdesk');
    assert.deepEqual(show.addons.localstorage.options, {});
    assert.equal(show.addons.sendmail.from, 'helpdesk.app@example.test');
    assert.equal(show.addons.recvmail.address, 'helpdesk.app@example.test');
    assert.deepEqual(show.mailboxes, ['helpdesk.app@example.test']);
    assert.deepEqual(show.manifest.addons.oidc.loginRedirectUri, '/auth/openid/callback, app.helpdesk:/');
    const text = await cli(['app', 'show', 'helpdesk']);
    assert.match(text, /^addons\.oidc\.redirectUris:\s+https:\/\/helpdesk\.example\.test\/auth\/openid\/callback, app\.helpdesk:\/$/m);
    assert.match(text, /^access:\s+users:alice groups:staff$/m);
  });

  it('the proxyAuth gateway: upstream, options and the callback URIs the gateway registers', async () => {
    const show = JSON.parse(await cli(['app', 'show', 'dash', '--json']));
    assert.equal(show.upstream, 'http://127.0.0.21:9000');
    assert.equal(show.access, 'everyone');
    assert.deepEqual(show.addons.proxyAuth.options, { path: '!/webhooks', basicAuth: true, supportsBearerAuth: true });
    assert.deepEqual(show.addons.proxyAuth.redirectUris, ['https://dash.example.test/login/callback', 'http://dash.example.test:4180/login/callback']);
    assert.equal(show.addons.sendmail.options.optional, true);
    const text = await cli(['app', 'show', 'dash']);
    assert.match(text, /^addons\.proxyAuth\.options\.path:\s+!\/webhooks$/m);
    assert.match(text, /^upstream:\s+http:\/\/127\.0\.0\.21:9000$/m);
  });

  it('shows no stored secret (app env prints those)', async () => {
    const d = await Directory.open(t.config);
    try {
      for (const id of ['helpdesk', 'dash']) {
        const shown = (await cli(['app', 'show', id, '--json'])) + (await cli(['app', 'show', id]));
        const secrets = Object.values(d.app(id)!.credentials).flatMap((c) => Object.entries(c)).filter(([k]) => /password|secret/i.test(k));
        assert.ok(secrets.length >= 2, `${id} has secrets`);
        for (const [k, v] of secrets) assert.ok(!shown.includes(v), `${id}: app show prints ${k}`);
      }
    } finally {
      await d.close();
    }
  });
});
