import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addOidcApp, addUser, authorizationRequest, Browser, formOf, PASSWORD, rpConfig, startStack, type Stack } from './helpers.ts';

/**
 * Port 4000 is reachable directly, so a client's X-Forwarded-For must not choose the address that
 * throttling and audit see (issue 12: 51 bad logins "from" 127.0.0.77 locked that address out of LDAP).
 */

async function failedLogins(stack: Stack, times: number, forwardedFor: string): Promise<void> {
  const app = await addOidcApp(stack.directory, `notes${Math.random().toString(36).slice(2, 8)}`, { loginRedirectUri: '/cb' });
  const rp = await rpConfig(stack.issuer, app.clientId, app.clientSecret);
  const browser = new Browser(stack.issuer);
  const req = await authorizationRequest(rp, app.redirectUri, 'openid');
  const form = formOf(await (await browser.go(req.url)).res.text(), '/login');
  for (let i = 0; i < times; i++) {
    const r = await browser.go(form.action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': forwardedFor },
      body: new URLSearchParams({ ...form.fields, login: 'alice', password: 'wrong password' }).toString(),
    });
    assert.ok(r.res.status === 401 || r.res.status === 429, `status ${r.res.status}`);
    await r.res.body?.cancel();
  }
}

async function remotesOfFailures(stack: Stack): Promise<Set<string | null>> {
  const events = await stack.directory.store.listAudit({ protocol: 'oidc', limit: 500 });
  return new Set(events.filter((e) => !e.ok).map((e) => e.remote));
}

describe('X-Forwarded-For at the OIDC provider', () => {
  it('is ignored from a peer outside HEARTH_TRUSTED_PROXIES (the default: nobody)', async () => {
    const stack = await startStack({ throttle: { perUser: 1000, perAddress: 3, windowSeconds: 60 } });
    try {
      await addUser(stack.directory, 'alice');
      await failedLogins(stack, 4, '127.0.0.77');
      assert.deepEqual(await remotesOfFailures(stack), new Set(['127.0.0.1']));
      // An LDAP bind from the address the attacker named is not throttled.
      const bind = await stack.directory.authenticate({ login: 'alice', password: PASSWORD, protocol: 'ldap', remote: '127.0.0.77' });
      assert.equal(bind.ok, true);
    } finally {
      await stack.close();
    }
  });

  it('from a trusted proxy names the client: the nearest hop that is not a trusted proxy', async () => {
    const stack = await startStack({ env: { HEARTH_TRUSTED_PROXIES: '127.0.0.1, 10.0.0.0/8' } });
    try {
      await addUser(stack.directory, 'alice');
      await failedLogins(stack, 1, '198.51.100.9');
      await failedLogins(stack, 1, '203.0.113.5, 198.51.100.10, 10.1.2.3');
      assert.deepEqual(await remotesOfFailures(stack), new Set(['198.51.100.9', '198.51.100.10']));
    } finally {
      await stack.close();
    }
  });
});
