import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressMatcher } from '@hearth/config';
import { loadSettings } from '../src/settings.ts';

test('settings: defaults', () => {
  assert.deepEqual(loadSettings({}), {
    upstreamTimeoutMs: 60000,
    maxHeaderSize: 16384,
    sessionIdleSeconds: 43200,
    sessionMaxSeconds: 604800,
    oidcInternalUrl: null,
  });
});

test('settings: values and refusals', () => {
  const s = loadSettings({ HEARTH_PROXYAUTH_UPSTREAM_TIMEOUT_MS: '1500', HEARTH_PROXYAUTH_SESSION_IDLE_SECONDS: '60', HEARTH_PROXYAUTH_SESSION_MAX_SECONDS: '60' });
  assert.equal(s.upstreamTimeoutMs, 1500);
  assert.equal(loadSettings({ HEARTH_PROXYAUTH_OIDC_INTERNAL_URL: 'http://oidc:4000' }).oidcInternalUrl, 'http://oidc:4000');
  const bad: Record<string, string>[] = [
    { HEARTH_PROXYAUTH_UPSTREAM_TIMEOUT_MS: 'soon' },
    { HEARTH_PROXYAUTH_MAX_HEADER_SIZE: '10' },
    // replaced by the shared HEARTH_TRUSTED_PROXIES: refused rather than silently ignored
    { HEARTH_PROXYAUTH_TRUSTED_PROXIES: '127.0.0.1' },
    { HEARTH_PROXYAUTH_OIDC_INTERNAL_URL: 'oidc:4000' },
    { HEARTH_PROXYAUTH_OIDC_INTERNAL_URL: 'http://oidc:4000/path' },
    { HEARTH_PROXYAUTH_SESSION_IDLE_SECONDS: '7200', HEARTH_PROXYAUTH_SESSION_MAX_SECONDS: '3600' },
  ];
  for (const env of bad) assert.throws(() => loadSettings(env), /invalid setting HEARTH_PROXYAUTH_/, JSON.stringify(env));
});

test('trusted proxy ranges', () => {
  const m = addressMatcher(['127.0.0.1', '::1', '10.0.0.0/8']);
  for (const a of ['127.0.0.1', '::ffff:127.0.0.1', '::1', '10.1.2.3']) assert.equal(m(a), true, a);
  for (const a of ['127.0.0.2', '11.0.0.1', '::2', 'garbage', '']) assert.equal(m(a), false, a);
  assert.equal(addressMatcher([])('127.0.0.1'), false);
});
