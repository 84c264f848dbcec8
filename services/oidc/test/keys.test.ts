import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Directory } from '@hearth/directory';
import { testEnv, type TestEnv } from '@hearth/testkit';
import { loadOrCreateKeys, readKeys, rotateKeys } from '../src/keys.ts';

describe('signing keys', () => {
  let env: TestEnv;
  let a: Directory;
  let b: Directory;

  before(async () => {
    env = await testEnv();
    a = await Directory.open(env.config);
    b = await Directory.open(env.config);
  });
  after(async () => {
    await a.close();
    await b.close();
    await env.cleanup();
  });

  it('are generated once, even by replicas starting together, and persist', async () => {
    const [ka, kb] = await Promise.all([loadOrCreateKeys(a.store), loadOrCreateKeys(b.store)]);
    assert.deepEqual(ka, kb);
    assert.deepEqual(await loadOrCreateKeys(a.store), ka);
    assert.deepEqual(ka.jwks.map((k) => [k.kty, k.crv ?? null, k.alg]), [
      ['RSA', null, 'RS256'],
      ['OKP', 'Ed25519', 'EdDSA'],
    ]);
    // They are real key pairs: sign with the private JWK, verify with its public half.
    for (const jwk of ka.jwks) {
      const priv = createPrivateKey({ key: jwk, format: 'jwk' });
      const pub = createPublicKey(priv);
      const alg = jwk.kty === 'RSA' ? 'sha256' : null;
      assert.ok(verify(alg, Buffer.from('x'), pub, sign(alg, Buffer.from('x'), priv)));
    }
  });

  it('rotate: new keys first, the previous generation kept, older ones dropped', async () => {
    const before = (await readKeys(a.store))!;
    const r1 = await rotateKeys(env.config, a.store);
    const k1 = (await readKeys(a.store))!;
    assert.equal(k1.version, before.version + 1);
    assert.equal(r1.version, k1.version);
    assert.deepEqual(k1.jwks.slice(2).map((k) => k.kid), before.jwks.map((k) => k.kid));
    assert.equal(k1.cookieKeys[1], before.cookieKeys[0]);
    await rotateKeys(env.config);
    const k2 = (await readKeys(b.store))!;
    assert.equal(k2.jwks.length, 4);
    assert.deepEqual(k2.jwks.slice(2).map((k) => k.kid), k1.jwks.slice(0, 2).map((k) => k.kid));
    assert.ok(!k2.jwks.some((k) => before.jwks.some((o) => o.kid === k.kid)), 'two generations back is gone');
    assert.equal(k2.cookieKeys.length, 2);
  });
});
