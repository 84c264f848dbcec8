import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '@hearth/config';
import { loadSettings } from '../src/settings.ts';

/** The console registers passkeys under the RP ID the sign-in page uses, or refuses a setting that leaves it out. */

function settingsFor(env: Record<string, string>): ReturnType<typeof loadSettings> {
  return loadSettings(loadConfig(env), env);
}

test('passkeys use the configured RP ID when the console is under it', () => {
  const s = settingsFor({ HEARTH_OIDC_ISSUER: 'https://auth.example.com', HEARTH_CONSOLE_URL: 'https://console.example.com', HEARTH_WEBAUTHN_RP_ID: 'example.com' });
  assert.equal(s.passkeyRpId, 'example.com');
  assert.equal(s.passkeysOff, null);
});

test('an explicit RP ID that leaves the console out stops it at start, naming the setting', () => {
  assert.throws(
    () => settingsFor({ HEARTH_OIDC_ISSUER: 'https://auth.example.com', HEARTH_CONSOLE_URL: 'https://console.other.example', HEARTH_WEBAUTHN_RP_ID: 'example.com' }),
    { message: "invalid setting HEARTH_WEBAUTHN_RP_ID: example.com must also be HEARTH_CONSOLE_URL's host (console.other.example) or a domain it is under, where passkeys are registered" },
  );
});

test('without a shared name, passkeys are off in the console and the page says why', () => {
  const byAddress = settingsFor({});
  assert.equal(byAddress.passkeyRpId, null);
  assert.match(byAddress.passkeysOff!, /IP address/);
  const apart = settingsFor({ HEARTH_OIDC_ISSUER: 'https://auth.example.com', HEARTH_CONSOLE_URL: 'https://console.example.com' });
  assert.equal(apart.passkeyRpId, null);
  assert.match(apart.passkeysOff!, /set HEARTH_WEBAUTHN_RP_ID to a domain both are under/);
});
