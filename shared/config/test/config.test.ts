import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { blank, ConfigError, envFlag, envPort, loadConfig, parseEnv, TrustedProxies } from '../src/index.ts';

describe('parseEnv', () => {
  const schema = z.object({
    HEARTH_X_PORT: envPort.optional().or(blank),
    HEARTH_X_ON: envFlag,
    HEARTH_X_COUNT: z.coerce.number().int().min(1).default(3),
  });

  it('returns the parsed values, defaults filled in, empty strings unset', () => {
    assert.deepEqual(parseEnv(schema, { HEARTH_X_PORT: '', HEARTH_X_ON: 'yes' }), { HEARTH_X_PORT: undefined, HEARTH_X_ON: true, HEARTH_X_COUNT: 3 });
    assert.deepEqual(parseEnv(schema, { HEARTH_X_PORT: '25', HEARTH_X_ON: 'FALSE', HEARTH_X_COUNT: '7' }), { HEARTH_X_PORT: 25, HEARTH_X_ON: false, HEARTH_X_COUNT: 7 });
    for (const off of [undefined, '', '0', 'false', 'False']) assert.equal(parseEnv(schema, { HEARTH_X_ON: off }).HEARTH_X_ON, false);
  });

  it('throws a one-line ConfigError naming the first bad variable', () => {
    for (const [env, re] of [
      [{ HEARTH_X_PORT: '0' }, /^invalid setting HEARTH_X_PORT: /],
      [{ HEARTH_X_PORT: '65536' }, /^invalid setting HEARTH_X_PORT: /],
      [{ HEARTH_X_COUNT: '0' }, /^invalid setting HEARTH_X_COUNT: /],
    ] as const) {
      assert.throws(() => parseEnv(schema, env), (e: unknown) => e instanceof ConfigError && re.test(e.message) && !e.message.includes('\n'), JSON.stringify(env));
    }
  });
});

describe('loadConfig', () => {
  it("takes the passkeys' RP ID from a host name, never an address, and refuses one the sign-in page cannot use", () => {
    assert.equal(loadConfig({}).webauthnRpId, null, 'the default issuer is an address: passkeys off');
    assert.equal(loadConfig({ HEARTH_OIDC_ISSUER: 'https://Auth.Example.com' }).webauthnRpId, 'auth.example.com');
    assert.equal(loadConfig({ HEARTH_OIDC_ISSUER: 'https://auth.example.com', HEARTH_WEBAUTHN_RP_ID: 'Example.com' }).webauthnRpId, 'example.com');
    assert.equal(loadConfig({ HEARTH_OIDC_ISSUER: 'http://[::1]:4000' }).webauthnRpId, null);
    assert.throws(() => loadConfig({ HEARTH_WEBAUTHN_RP_ID: '127.0.0.1' }), { message: 'invalid setting HEARTH_WEBAUTHN_RP_ID: must be a host name, not an IP address (passkeys are bound to a name)' });
    assert.throws(() => loadConfig({ HEARTH_OIDC_ISSUER: 'https://auth.example.com', HEARTH_WEBAUTHN_RP_ID: 'example.org' }), /HEARTH_WEBAUTHN_RP_ID: example.org must be the host of HEARTH_OIDC_ISSUER \(auth.example.com\)/);
    // A suffix of the name as text is not a parent domain.
    assert.throws(() => loadConfig({ HEARTH_OIDC_ISSUER: 'https://auth.badexample.com', HEARTH_WEBAUTHN_RP_ID: 'example.com' }), /HEARTH_WEBAUTHN_RP_ID/);
    assert.throws(() => loadConfig({ HEARTH_WEBAUTHN_RP_ID: 'https://example.com' }), /HEARTH_WEBAUTHN_RP_ID: must be a host name/);
  });

  it('refuses an RP ID on the Public Suffix List, ICANN or private section, as browsers do', () => {
    for (const [issuer, rpId] of [
      ['https://auth.example.co.uk', 'co.uk'],
      ['https://auth.example.com', 'com'],
      ['https://hearth-demo.github.io', 'github.io'],
    ]) {
      assert.throws(() => loadConfig({ HEARTH_OIDC_ISSUER: issuer, HEARTH_WEBAUTHN_RP_ID: rpId }), { message: `invalid setting HEARTH_WEBAUTHN_RP_ID: ${rpId} is a public suffix (on the Public Suffix List), which browsers refuse as an RP ID; use the domain you own under it` });
    }
    // the registrable domain just under a suffix is fine, and so are names under no listed suffix
    assert.equal(loadConfig({ HEARTH_OIDC_ISSUER: 'https://auth.example.co.uk', HEARTH_WEBAUTHN_RP_ID: 'example.co.uk' }).webauthnRpId, 'example.co.uk');
    assert.equal(loadConfig({ HEARTH_OIDC_ISSUER: 'https://hearth-demo.github.io', HEARTH_WEBAUTHN_RP_ID: 'hearth-demo.github.io' }).webauthnRpId, 'hearth-demo.github.io');
    assert.equal(loadConfig({ HEARTH_OIDC_ISSUER: 'http://localhost:4000', HEARTH_WEBAUTHN_RP_ID: 'localhost' }).webauthnRpId, 'localhost');
    assert.equal(loadConfig({ HEARTH_OIDC_ISSUER: 'http://auth.example.test:4000', HEARTH_WEBAUTHN_RP_ID: 'example.test' }).webauthnRpId, 'example.test');
  });

  it('names the variable in its errors', () => {
    assert.throws(() => loadConfig({ HEARTH_DATABASE_URL: 'mysql://x' }), { message: 'invalid setting HEARTH_DATABASE_URL: must be a postgres:// URL' });
    assert.throws(() => loadConfig({ HEARTH_SMTP_PORT: 'x' }), { message: 'invalid setting HEARTH_SMTP_PORT: must be a port number' });
    assert.equal(loadConfig({ HEARTH_DATABASE_URL: '', HEARTH_TURN_ALLOW_LOOPBACK_PEERS: '1' }).turnAllowLoopbackPeers, true);
    assert.equal(loadConfig({ HEARTH_DATABASE_URL: '' }).databaseUrl, undefined);
    assert.throws(() => loadConfig({ HEARTH_DOCKER_HOST: 'http://x' }), { message: 'invalid setting HEARTH_DOCKER_HOST: must be unix:///path/to/docker.sock or tcp://host:port' });
    assert.equal(loadConfig({}).dockerHost, 'unix:///var/run/docker.sock');
    assert.equal(loadConfig({ HEARTH_DOCKER_HOST: 'tcp://127.0.0.1:2375' }).dockerHost, 'tcp://127.0.0.1:2375');
    assert.equal(loadConfig({ HEARTH_DOCKER_PROXY_PORT: '12376' }).ports.dockerProxy, 12376);
  });
});

describe('HEARTH_TRUSTED_PROXIES', () => {
  it('is empty by default and a comma list of CIDRs otherwise', () => {
    assert.deepEqual(loadConfig({}).trustedProxies, []);
    assert.deepEqual(loadConfig({ HEARTH_TRUSTED_PROXIES: '10.0.0.0/8, fd00::/8,192.0.2.1' }).trustedProxies, ['10.0.0.0/8', 'fd00::/8', '192.0.2.1']);
    for (const bad of ['proxy.example', '10.0.0.0/33', '10.0.0.0/8/1']) {
      assert.throws(() => loadConfig({ HEARTH_TRUSTED_PROXIES: bad }), { message: 'invalid setting HEARTH_TRUSTED_PROXIES: must be a comma list of IP addresses or CIDR ranges' });
    }
  });

  it('believes X-Forwarded-For only from a trusted peer, and picks the nearest untrusted hop', () => {
    const none = new TrustedProxies([]);
    assert.equal(none.chain('127.0.0.1', '127.0.0.77'), '127.0.0.1');
    assert.equal(none.client(none.chain('::ffff:127.0.0.1', '127.0.0.77')), '127.0.0.1');
    const t = new TrustedProxies(['127.0.0.1', '10.0.0.0/8']);
    assert.equal(t.chain('::ffff:127.0.0.1', '203.0.113.5, 10.1.1.1'), '203.0.113.5, 10.1.1.1, 127.0.0.1');
    assert.equal(t.client('203.0.113.5, 198.51.100.2, 10.1.1.1, 127.0.0.1'), '198.51.100.2');
    assert.equal(t.client(t.chain('10.9.9.9', ['203.0.113.5', '10.1.1.1'])), '203.0.113.5');
    // every hop a proxy: the first is as close to the client as we can tell
    assert.equal(t.client('10.1.1.1, 127.0.0.1'), '10.1.1.1');
    assert.equal(t.client(t.chain('198.51.100.7', undefined)), '198.51.100.7');
  });
});
