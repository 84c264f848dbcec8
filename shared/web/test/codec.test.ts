import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clearCookie, readCookie, serializeCookie, withoutCookies } from '../src/cookies.ts';
import { loadKeyFile, seal, signSessionId, unseal, verifySessionCookie } from '../src/sealed.ts';

test('cookies: read, drop one, serialise', () => {
  const h = 'a=1; hearth_proxyauth=s.m; b=x=y;c';
  assert.equal(readCookie(h, 'hearth_proxyauth'), 's.m');
  assert.equal(readCookie(h, 'b'), 'x=y');
  assert.equal(readCookie(h, 'missing'), undefined);
  assert.equal(readCookie(undefined, 'a'), undefined);
  assert.equal(withoutCookies(h, (n) => n === 'hearth_proxyauth'), 'a=1; b=x=y; c');
  assert.equal(serializeCookie('n', 'v', { secure: true, maxAgeSeconds: 60.7 }), 'n=v; Path=/; SameSite=Lax; HttpOnly; Secure; Max-Age=60');
  assert.equal(serializeCookie('n', 'v', { secure: false }), 'n=v; Path=/; SameSite=Lax; HttpOnly');
  assert.equal(clearCookie('n', { secure: false }), 'n=; Path=/; SameSite=Lax; HttpOnly; Max-Age=0');
});

test('session ids: signed, and any change to id or MAC is refused', () => {
  const key = randomBytes(32);
  const sid = randomBytes(32).toString('base64url');
  const cookie = signSessionId(key, sid);
  assert.equal(verifySessionCookie(key, cookie), sid);
  assert.equal(verifySessionCookie(randomBytes(32), cookie), null);
  const flipped = cookie.slice(0, -2) + (cookie.at(-2) === 'A' ? 'B' : 'A') + cookie.at(-1);
  assert.equal(verifySessionCookie(key, flipped), null);
  assert.equal(verifySessionCookie(key, `${randomBytes(32).toString('base64url')}${cookie.slice(cookie.indexOf('.'))}`), null);
  for (const bad of ['', '.', 'abc', `${sid}.`, `${sid}`, `short.${cookie.split('.')[1]}`]) assert.equal(verifySessionCookie(key, bad), null, bad);
});

test('sealed login state: round trip; tampering or another key yields null', () => {
  const key = randomBytes(32);
  const value = { state: 's', verifier: 'v', redirect: '/x' };
  const sealed = seal(key, value);
  assert.deepEqual(unseal(key, sealed), value);
  assert.notEqual(seal(key, value), sealed, 'a fresh IV every time');
  assert.equal(unseal(randomBytes(32), sealed), null);
  const raw = Buffer.from(sealed, 'base64url');
  raw[raw.length - 1]! ^= 1;
  assert.equal(unseal(key, raw.toString('base64url')), null);
  assert.equal(unseal(key, 'not-base64!'), null);
  assert.equal(unseal(key, ''), null);
});

test('key files: generated once as 0600, then read back', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'web-key-'));
  try {
    const file = path.join(dir, 'sub', 'cookie.key');
    const k1 = loadKeyFile(file);
    assert.equal(k1.length, 32);
    assert.deepEqual(loadKeyFile(file), k1);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    fs.writeFileSync(file, 'not hex\n');
    assert.throws(() => loadKeyFile(file), /not a 32-byte hex key/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
