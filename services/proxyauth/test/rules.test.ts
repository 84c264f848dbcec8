import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizePath, parseOptions, requiresAuth, safeRedirect, type NormalizedTarget, type WallRule } from '../src/rules.ts';

function norm(t: string): NormalizedTarget {
  const n = normalizePath(t);
  assert.ok(n, `normalizePath(${t}) returned null`);
  return n;
}

test('normalizePath: vectors', () => {
  const cases: [string, string, string][] = [
    ['/', '/', ''],
    ['/a/b?x=1&y=%2F', '/a/b', '?x=1&y=%2F'],
    ['/admin/../admin', '/admin', ''],
    ['/public/../admin/x', '/admin/x', ''],
    ['/%2e%2e/admin', '/admin', ''],
    ['/public/%2E%2E/admin', '/admin', ''],
    ['/public/.%2e/admin', '/admin', ''],
    ['//admin', '/admin', ''],
    ['/a//b///c/', '/a/b/c/', ''],
    ['/a/./b/.', '/a/b/', ''],
    ['/a/b/..', '/a/', ''],
    ['/../../etc', '/etc', ''],
    ['/%61dmin', '/admin', ''],
    ['/%7euser', '/~user', ''],
    ['/a%20b', '/a%20b', ''],
    ['/ADMIN', '/ADMIN', ''],
    ['/static/app.min.js', '/static/app.min.js', ''],
    ['/.well-known/x', '/.well-known/x', ''],
    ['/a..b/c.', '/a..b/c.', ''],
    ['/a/..', '/', ''],
    ['/..', '/', ''],
    ['/.', '/', ''],
    ['http://x.example.test/a/../b?q', '/b', '?q'],
    ['http://x.example.test', '/', ''],
  ];
  for (const [input, path, query] of cases) {
    const n = norm(input);
    assert.equal(n.path, path, input);
    assert.equal(n.query, query, input);
  }
});

test('normalizePath: refuses what no app should see', () => {
  for (const bad of ['', '*', 'admin', '/a%zz', '/a%2', '/a%00b', '/a b', '/a\x01', '/é']) {
    assert.equal(normalizePath(bad), null, JSON.stringify(bad));
  }
});

test('normalizePath: refuses escapes of "%", "/" and "\\" that survive one decode (issue 12)', () => {
  for (const bad of ['/%2561dmin', '/%252e%252e/admin', '/a%2fb', '/webhooks%2F..%2Fadmin', '/webhooks%5C..%5Cadmin', '/admin%2Fx', '/%25']) {
    assert.equal(normalizePath(bad), null, JSON.stringify(bad));
  }
});

test('normalizePath: backslashes and ;params give a second reading', () => {
  assert.deepEqual(norm('/webhooks\\..\\admin').readings, ['/webhooks\\..\\admin', '/admin']);
  assert.deepEqual(norm('/webhooks/..;/admin').readings, ['/webhooks/..;/admin', '/admin']);
  // escaped "/" in the query is the app's business
  assert.equal(norm('/a?p=%2F%25').query, '?p=%2F%25');
  assert.deepEqual(norm('/plain/path').readings, ['/plain/path']);
});

test('parseOptions: the seed rules', () => {
  assert.deepEqual(parseOptions({}).options.rule, { kind: 'all' });
  assert.deepEqual(parseOptions(undefined).options.rule, { kind: 'all' });
  assert.deepEqual(parseOptions({ path: '/admin' }).options.rule, { kind: 'only', prefix: '/admin' });
  assert.deepEqual(parseOptions({ path: '!/webhooks' }).options.rule, { kind: 'except', prefix: '/webhooks' });
  const full = parseOptions({ path: '!/webhooks', basicAuth: true, supportsBearerAuth: true });
  assert.equal(full.error, null);
  assert.equal(full.options.basicAuth, true);
  assert.equal(full.options.supportsBearerAuth, true);
  assert.equal(parseOptions({}).options.basicAuth, false);
  assert.equal(parseOptions({}).options.supportsBearerAuth, false);
});

test('parseOptions: malformed options fail closed', () => {
  for (const bad of [{ path: 'admin' }, { path: 42 }, { basicAuth: 'yes' }, 'x', { path: '/a%zz' }]) {
    const r = parseOptions(bad);
    assert.notEqual(r.error, null, JSON.stringify(bad));
    assert.deepEqual(r.options, { rule: { kind: 'all' }, basicAuth: false, supportsBearerAuth: false });
  }
});

test('requiresAuth: a manifest prefix in capitals walls the lower-case path too', () => {
  const rule = parseOptions({ path: '/Admin' }).options.rule;
  for (const p of ['/admin', '/ADMIN/x', '/Admin']) assert.equal(requiresAuth(rule, norm(p)), true, p);
});

test('requiresAuth: no path walls everything', () => {
  const rule: WallRule = { kind: 'all' };
  for (const p of ['/', '/x', '/webhooks', '/admin']) assert.equal(requiresAuth(rule, norm(p)), true, p);
});

test('requiresAuth: "/admin" walls only that prefix, path tricks included', () => {
  const rule = parseOptions({ path: '/admin' }).options.rule;
  const walled = ['/admin', '/admin/', '/admin/users', '/admin/../admin', '/x/../admin', '/%2e%2e/admin', '//admin', '/%61dmin', '/public/..;/admin', '/public\\..\\admin', '/admin;x', '/ADMIN', '/Admin/x', '/%41DMIN'];
  const open = ['/', '/public', '/x/admin', '/admin/..', '/adm'];
  for (const p of walled) assert.equal(requiresAuth(rule, norm(p)), true, p);
  for (const p of open) assert.equal(requiresAuth(rule, norm(p)), false, p);
});

test('requiresAuth: "!/webhooks" walls everything else, path tricks included', () => {
  const rule = parseOptions({ path: '!/webhooks' }).options.rule;
  const open = ['/webhooks', '/webhooks/', '/webhooks/github', '/x/../webhooks/a', '//webhooks/a', '/WEBHOOKS/github'];
  const walled = ['/', '/admin', '/webhooks/../admin', '/webhooks/%2e%2e/admin', '/webhooks/..;/admin', '/webhooks\\..\\admin', '/x/webhooks'];
  for (const p of open) assert.equal(requiresAuth(rule, norm(p)), false, p);
  for (const p of walled) assert.equal(requiresAuth(rule, norm(p)), true, p);
});

test('safeRedirect: same-site paths pass, everything else is "/"', () => {
  const host = 'app.example.test';
  const good: [string, string][] = [
    ['/', '/'],
    ['/dashboard?tab=2#top', '/dashboard?tab=2#top'],
    ['/a/../b', '/b'],
    ['https://app.example.test/x?y', '/x?y'],
    ['http://APP.example.test:4180/x', '/x'],
  ];
  for (const [v, want] of good) assert.equal(safeRedirect(v, host), want, v);
  const bad = [
    'https://evil.example',
    'https://evil.example/x',
    '//evil',
    '//evil.example/x',
    '/\\evil',
    '/\\/evil',
    '\\\\evil',
    '/\t/evil',
    '/\n/evil',
    ' //evil',
    'javascript:alert(1)',
    'evil.example',
    'https://app.example.test.evil.example/',
    'https://app.example.test@evil.example/',
    'https://user:pw@app.example.test/',
    'ftp://app.example.test/',
    '',
  ];
  for (const v of bad) assert.equal(safeRedirect(v, host), '/', JSON.stringify(v));
  assert.equal(safeRedirect(undefined, host), '/');
  assert.equal(safeRedirect(`/${'x'.repeat(1990)}`, host), `/${'x'.repeat(1990)}`);
  assert.equal(safeRedirect(`/${'x'.repeat(2000)}`, host), '/');
  assert.equal(safeRedirect('/.//evil', host), '/evil');
});
