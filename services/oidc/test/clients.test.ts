import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { App, Manifest } from '@hearth/directory';
import { MANIFESTS } from '@hearth/testkit';
import { clientsFromApps, resolveUri, resolveUriList } from '../src/clients.ts';

const manifest = (name: string): Manifest => JSON.parse(fs.readFileSync(path.join(MANIFESTS, name), 'utf8')) as Manifest;

const app = (id: string, m: Manifest, credentials: App['credentials']): App => ({ id, domain: `${id}.example.test`, manifest: m, access: null, upstream: null, credentials, createdAt: '2026-01-01T00:00:00Z' });

describe('clients from installed apps', () => {
  it('prefixes paths with https://<domain> and keeps custom-scheme entries', () => {
    assert.equal(resolveUri('/auth/openid/callback', 'h.example.test'), 'https://h.example.test/auth/openid/callback');
    assert.equal(resolveUri(' app.helpdesk:/ ', 'h.example.test'), 'app.helpdesk:/');
    assert.equal(resolveUri('cb', 'h.example.test'), 'https://h.example.test/cb');
    assert.equal(resolveUri('  ', 'h.example.test'), null);
    assert.deepEqual(resolveUriList('/a, /b,,/a', 'x.test'), ['https://x.test/a', 'https://x.test/b']);
    assert.deepEqual(resolveUriList(undefined, 'x.test'), []);
  });

  it('helpdesk.json: RS256, both redirect kinds (a native client), post-logout URI', () => {
    const clients = clientsFromApps([app('helpdesk', manifest('helpdesk.json'), { oidc: { clientId: 'cid-helpdesk', clientSecret: 's' } })], 4180);
    const c = clients.get('cid-helpdesk')!;
    assert.equal(c.appId, 'helpdesk');
    assert.deepEqual(c.metadata.redirect_uris, ['https://helpdesk.example.test/auth/openid/callback', 'app.helpdesk:/']);
    assert.deepEqual(c.metadata.post_logout_redirect_uris, ['https://helpdesk.example.test/home']);
    assert.equal(c.metadata.id_token_signed_response_alg, 'RS256');
    assert.equal(c.metadata.application_type, 'native');
    assert.deepEqual(c.metadata.grant_types, ['authorization_code', 'refresh_token']);
    assert.equal(c.metadata.client_secret, 's');
  });

  it('meet.json: EdDSA, a web client', () => {
    const c = clientsFromApps([app('meet', manifest('meet.json'), { oidc: { clientId: 'cid-meet', clientSecret: 's' } })], 4180).get('cid-meet')!;
    assert.equal(c.metadata.id_token_signed_response_alg, 'EdDSA');
    assert.equal(c.metadata.application_type, undefined);
    assert.deepEqual(c.metadata.redirect_uris, ['https://meet.example.test/callback']);
  });

  it('dashboard.json (proxyAuth): a client for the gateway on both https and its own port', () => {
    const c = clientsFromApps([app('dashboard', manifest('dashboard.json'), { proxyAuth: { clientId: 'proxyauth-dashboard', clientSecret: 's' } })], 4180).get('proxyauth-dashboard')!;
    assert.equal(c.addon, 'proxyAuth');
    assert.deepEqual(c.metadata.redirect_uris, ['https://dashboard.example.test/login/callback', 'http://dashboard.example.test:4180/login/callback']);
    assert.deepEqual(c.metadata.post_logout_redirect_uris, ['https://dashboard.example.test/', 'http://dashboard.example.test:4180/']);
  });

  it('skips apps without credentials or redirect URIs, and apps without the addon', () => {
    const apps = [
      app('nocreds', manifest('meet.json'), {}),
      app('noredirect', { addons: { oidc: {} } }, { oidc: { clientId: 'c1', clientSecret: 's' } }),
      app('wiki', manifest('wiki.json'), { ldap: { bindDn: 'x', bindPassword: 'y' } }),
      app('badalg', { addons: { oidc: { loginRedirectUri: '/cb', tokenSignatureAlgorithm: 'HS256' } } }, { oidc: { clientId: 'c2', clientSecret: 's' } }),
    ];
    assert.equal(clientsFromApps(apps, 4180).size, 0);
  });

  it('adds a back-channel logout URI when the manifest names one', () => {
    const m: Manifest = { addons: { oidc: { loginRedirectUri: '/cb', backchannelLogoutUri: '/oidc/logout' } } };
    const c = clientsFromApps([app('x', m, { oidc: { clientId: 'cx', clientSecret: 's' } })], 4180).get('cx')!;
    assert.equal(c.metadata.backchannel_logout_uri, 'https://x.example.test/oidc/logout');
    assert.equal(c.metadata.backchannel_logout_session_required, true);
  });
});
