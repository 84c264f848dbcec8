import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { after, before, it } from 'node:test';
import { hearth, testEnv, type TestEnv } from '@hearth/testkit';

let t: TestEnv;
before(async () => {
  t = await testEnv();
});
after(() => t.cleanup());

it('mail dkim prints a TXT record with the domain\'s public key, the same on every call', async () => {
  const r = await hearth(['mail', 'dkim', 'example.test'], { env: t.env });
  assert.equal(r.code, 0, r.stderr);
  const m = /^hearth\._domainkey\.example\.test\. IN TXT ((?:"[^"]{1,255}" ?)+)$/.exec(r.stdout.trim());
  assert.ok(m, r.stdout);
  const value = [...m[1]!.matchAll(/"([^"]*)"/g)].map((x) => x[1]).join('');
  const key = /^v=DKIM1; k=rsa; p=([A-Za-z0-9+/=]+)$/.exec(value);
  assert.ok(key, value);
  assert.equal(createPublicKey({ key: Buffer.from(key[1]!, 'base64'), format: 'der', type: 'spki' }).asymmetricKeyType, 'rsa');
  assert.equal((await hearth(['mail', 'dkim', 'example.test'], { env: t.env })).stdout, r.stdout);
  const bad = await hearth(['mail', 'dkim', 'not a domain'], { env: t.env });
  assert.equal(bad.code, 1);
});

it('mail queue lists (empty), and refuses unknown entries with exit 1', async () => {
  const list = await hearth(['mail', 'queue', '--json'], { env: t.env });
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(JSON.parse(list.stdout), []);
  const del = await hearth(['mail', 'queue', 'delete', 'no-such-id'], { env: t.env });
  assert.equal(del.code, 1);
  assert.match(del.stderr, /no such queue entry/);
  assert.equal((await hearth(['mail', 'queue', 'retry', 'a', 'b'], { env: t.env })).code, 2);
});

it('oidc rotate-keys starts a new key generation each time', async () => {
  const first = await hearth(['oidc', 'rotate-keys'], { env: t.env });
  assert.equal(first.code, 0, first.stderr);
  const second = await hearth(['oidc', 'rotate-keys'], { env: t.env });
  const gen = (s: string): number => Number(/generation (\d+)/.exec(s)![1]);
  assert.equal(gen(second.stdout), gen(first.stdout) + 1);
});
