import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { App } from '@hearth/directory';
import { parseBasic } from '../src/basic.ts';
import { withoutCookies } from '@hearth/web';
import { appKey, isGatewayCookie, loadMasterKey } from '../src/session.ts';
import { hostOf } from '../src/server.ts';

test('gateway cookies: the app never sees them', () => {
  assert.equal(withoutCookies('a=1; hearth_proxyauth=s.m; b=x=y;c', isGatewayCookie), 'a=1; b=x=y; c');
  assert.equal(withoutCookies('hearth_proxyauth=1; __Host-hearth_proxyauth=2; hearth_proxyauth_login_abc=3; __Host-hearth_proxyauth_login_abc=4', isGatewayCookie), '');
  assert.equal(withoutCookies('x_hearth_proxyauth=1; hearth=2; __Host-other=3', isGatewayCookie), 'x_hearth_proxyauth=1; hearth=2; __Host-other=3');
});

test('keys: the master key persists; apps get distinct keys; cookieSecret wins when present', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'proxyauth-key-'));
  try {
    const k1 = loadMasterKey(dir);
    assert.equal(k1.length, 32);
    assert.deepEqual(loadMasterKey(dir), k1);
    assert.equal(fs.statSync(path.join(dir, 'proxyauth', 'cookie.key')).mode & 0o777, 0o600);
    const app = (id: string, cookieSecret?: string): App => ({ id, domain: `${id}.example.test`, manifest: { addons: { proxyAuth: {} } }, access: null, upstream: null, credentials: cookieSecret ? { proxyAuth: { cookieSecret } } : {}, createdAt: '' });
    assert.notDeepEqual(appKey(k1, app('a')), appKey(k1, app('b')));
    assert.deepEqual(appKey(k1, app('a', 'secret')), appKey(randomBytes(32), app('a', 'secret')));
    assert.notDeepEqual(appKey(k1, app('a', 'secret')), appKey(k1, app('a', 'other')));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('Basic credentials', () => {
  const b = (s: string): string => `Basic ${Buffer.from(s).toString('base64')}`;
  assert.deepEqual(parseBasic(b('alice:pa:ss')), { login: 'alice', password: 'pa:ss' });
  assert.deepEqual(parseBasic(`basic  ${Buffer.from('ä:ö').toString('base64')}`), { login: 'ä', password: 'ö' });
  for (const bad of [undefined, '', 'Basic', 'Basic !!!', b('nocolon'), b(':nologin'), 'Bearer abc']) assert.equal(parseBasic(bad), null, String(bad));
});

test('Host header', () => {
  assert.equal(hostOf('Wiki.Example.Test:4180'), 'wiki.example.test');
  assert.equal(hostOf('wiki.example.test.'), 'wiki.example.test');
  assert.equal(hostOf('[::1]:4180'), '[::1]');
  for (const bad of [undefined, '', 'a b', 'evil/x', 'x:y:z', 'host:99999999']) assert.equal(hostOf(bad), null, String(bad));
});
