import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { PASSWORD, startConsoleStack, type ConsoleStack } from './stack.ts';

/**
 * Behind TLS (an https HEARTH_CONSOLE_URL, the proxy in front): cookies are `__Host-` ones —
 * Secure, Path=/, no Domain, as RFC 6265bis 4.1.3.2 requires for the prefix — with HttpOnly and
 * SameSite=Lax, HSTS is sent, and every answer carries the strict CSP (CSP Level 3 directives:
 * nothing by default, scripts only from the console, styles only by hash, no framing).
 */

const PUBLIC = 'https://console.example.test';
let stack: ConsoleStack;

before(async () => {
  stack = await startConsoleStack(async (d) => {
    await d.addUser({ username: 'root', email: 'root@example.test', password: PASSWORD, role: 'admin' });
  }, { env: { HEARTH_CONSOLE_URL: PUBLIC } });
});

after(async () => {
  await stack?.close();
});

/** The console's own listening address (the stack's URL names its port). */
function local(p: string): string {
  return `http://127.0.0.1:${new URL(stack.url).port}${p}`;
}

function directives(csp: string): Map<string, string[]> {
  return new Map(csp.split(';').map((d) => d.trim().split(/\s+/)).filter((d) => d[0]).map(([name, ...values]) => [name!.toLowerCase(), values]));
}

test('behind TLS the sign-in cookie is a __Host- cookie (Secure, Path=/, no Domain, HttpOnly, SameSite=Lax) and HSTS is on', async () => {
  const res = await fetch(local('/login'), { redirect: 'manual' });
  assert.equal(res.status, 303);
  assert.equal(new URL(res.headers.get('location')!).origin, new URL(stack.issuer).origin);
  const cookies = res.headers.getSetCookie();
  assert.equal(cookies.length, 1);
  const [pair, ...attrs] = cookies[0]!.split(';').map((p) => p.trim());
  assert.match(pair!, /^__Host-hearth_console_login=[^;]+$/);
  const names = attrs.map((a) => a.split('=')[0]!.toLowerCase());
  assert.ok(names.includes('secure'), cookies[0]);
  assert.ok(names.includes('httponly'), cookies[0]);
  assert.ok(!names.includes('domain'), cookies[0]);
  assert.ok(attrs.some((a) => a.toLowerCase() === 'path=/'), cookies[0]);
  assert.ok(attrs.some((a) => a.toLowerCase() === 'samesite=lax'), cookies[0]);
  assert.match(res.headers.get('strict-transport-security') ?? '', /^max-age=\d{7,}/);
});

test('every page carries the strict CSP: nothing by default, no inline or eval script, styles by hash only, no framing', async () => {
  for (const p of ['/signed-out', '/', '/no-such-page']) {
    const res = await fetch(local(p), { redirect: 'manual' });
    const csp = directives(res.headers.get('content-security-policy') ?? '');
    assert.deepEqual(csp.get('default-src'), ["'none'"], p);
    assert.deepEqual(csp.get('script-src'), ["'self'"], p);
    assert.equal(csp.get('style-src')?.length, 1, p);
    assert.match(csp.get('style-src')![0]!, /^'sha256-[A-Za-z0-9+/]{43}='$/, p);
    assert.deepEqual(csp.get('frame-ancestors'), ["'none'"], p);
    assert.deepEqual(csp.get('base-uri'), ["'none'"], p);
    assert.deepEqual(csp.get('form-action'), ["'self'", new URL(stack.issuer).origin], p);
    assert.equal(res.headers.get('x-frame-options'), 'DENY', p);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', p);
  }
});
