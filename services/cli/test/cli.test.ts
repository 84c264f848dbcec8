import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hearth, MANIFESTS, parseEnvLines, tempDir, testEnv, type TestEnv } from '@hearth/testkit';

const manifest = (name: string): string => path.join(MANIFESTS, name);

/** Snapshot of everything the CLI can list, to prove a failed command changed nothing. */
async function state(env: Record<string, string>): Promise<string> {
  const parts = await Promise.all([['user', 'list'], ['group', 'list'], ['app', 'list'], ['mailbox', 'list']].map((c) => hearth([...c, '--json'], { env })));
  return parts.map((p) => p.stdout).join('\n');
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`hearth CLI on ${backend}`, () => {
    let t: TestEnv;
    let env: Record<string, string>;
    before(async () => {
      t = await testEnv({ backend });
      env = t.env;
    });
    after(() => t.cleanup());

    it('adds users from --password and --password-stdin and lists them as a table and as JSON', async () => {
      let r = await hearth(['user', 'add', 'alice', '--email', 'alice@example.test', '--password', 'alice password', '--display-name', 'Alice Liddell'], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /added user alice \(uid-/);
      r = await hearth(['user', 'add', 'bob', '--email', 'bob@example.test', '--password-stdin'], { env, input: 'bob password\n' });
      assert.equal(r.code, 0, r.stderr);
      r = await hearth(['user', 'list'], { env });
      assert.match(r.stdout, /^USERNAME\s+EMAIL/m);
      assert.match(r.stdout, /alice\s+alice@example\.test\s+Alice Liddell/);
      const users = JSON.parse((await hearth(['user', 'list', '--json'], { env })).stdout);
      assert.deepEqual(users.map((u: { username: string }) => u.username), ['alice', 'bob']);
      assert.equal(JSON.stringify(users).includes('argon2'), false, 'no password hashes in listings');
    });

    it('refuses bad input with one line, exit 1, and an unchanged store', async () => {
      const before = await state(env);
      const cases: [string[], RegExp, string?][] = [
        [['user', 'add', 'alice', '--email', 'x@example.test', '--password', 'long enough'], /username already exists/],
        [['user', 'add', 'carol', '--email', 'ALICE@example.test', '--password', 'long enough'], /email already in use/],
        [['user', 'add', 'admin', '--email', 'adm@example.test', '--password', 'long enough'], /reserved/],
        [['user', 'add', 'Carol!', '--email', 'c@example.test', '--password', 'long enough'], /username must be/],
        [['user', 'add', 'carol', '--email', 'c@example.test', '--password', 'short'], /at least 8/],
        [['user', 'add', 'carol', '--email', 'c@example.test', '--password-stdin'], /at least 8/, ''],
        [['user', 'show', 'nobody'], /no such user: nobody/],
        [['group', 'add-member', 'nogroup', 'alice'], /no such group: nogroup/],
        [['app', 'env', 'noapp'], /no such app: noapp/],
        [['app', 'install', path.join(import.meta.dirname, 'fixtures/bad-unknown-addon.json'), '--id', 'broken', '--domain', 'broken.example.test'], /unknown addon: teleport/],
        [['app', 'install', manifest('wiki.json'), '--id', 'wiki', '--domain', 'not a domain'], /FQDN/],
        [['app', 'install', manifest('wiki.json'), '--id', 'bad id', '--domain', 'wiki.example.test'], /app id must be/],
        [['app', 'install', manifest('wiki.json'), '--id', 'wiki', '--domain', 'wiki.example.test', '--access', 'users:ghost'], /no such user: ghost/],
        [['app', 'install', '/nonexistent/manifest.json', '--id', 'wiki', '--domain', 'wiki.example.test'], /ENOENT|no such file/],
        [['mailbox', 'add', 'x@example.test', '--owner', 'ghost'], /no such user or app: ghost/],
      ];
      for (const [args, message, input] of cases) {
        const r = await hearth(args, { env, input });
        assert.equal(r.code, 1, `${args.join(' ')} → ${r.code} ${r.stderr}`);
        assert.match(r.stderr, message, args.join(' '));
        assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      }
      assert.equal(await state(env), before);
    });

    it('refuses malformed manifests and options by name', async () => {
      const dir = tempDir();
      const write = (name: string, body: unknown): string => {
        const p = path.join(dir, name);
        fs.writeFileSync(p, typeof body === 'string' ? body : JSON.stringify(body));
        return p;
      };
      const cases: [string, RegExp][] = [
        [write('notjson.json', '{ "addons": '), /not valid JSON/],
        [write('field.json', { title: 'x', addons: {}, colour: 'blue' }), /unknown manifest field: colour/],
        [write('opt.json', { addons: { oidc: { tokenSignatureAlgorithm: 'HS256' } } }), /invalid oidc addon option\.tokenSignatureAlgorithm/],
        [write('unknownopt.json', { addons: { sendmail: { bogus: true } } }), /invalid sendmail addon option: unknown option bogus/],
        [write('path.json', { addons: { proxyAuth: { path: 'admin' } } }), /path must start with/],
        [write('noimage.json', { addons: { scheduler: {} } }), /the scheduler addon runs tasks in the app's image/],
        [write('image.json', { dockerImage: 'Not An Image', addons: {} }), /invalid manifest \(dockerImage\): image must be a Docker image reference/],
        [write('memory.json', { memoryLimit: 1024, addons: {} }), /memoryLimit must be at least 6 MiB/],
        [write('addons.json', { addons: [] }), /invalid manifest \(addons\)/],
      ];
      const before = await state(env);
      for (const [file, message] of cases) {
        const r = await hearth(['app', 'install', file, '--id', 'x', '--domain', 'x.example.test', '--upstream', 'http://127.0.0.1:9'], { env });
        assert.equal(r.code, 1, `${file}: ${r.stderr}`);
        assert.match(r.stderr, message);
      }
      assert.equal(await state(env), before);
    });

    it('bad usage exits 2', async () => {
      for (const args of [[], ['frobnicate'], ['user', 'add'], ['user', 'add', 'x', '--emial', 'x@example.test'], ['user', 'add', 'x', '--email', 'x@example.test'], ['app', 'install', manifest('wiki.json')]]) {
        const r = await hearth(args, { env });
        assert.equal(r.code, 2, `${args.join(' ')} → ${r.code}: ${r.stderr}`);
      }
    });

    it('installs wiki.json and prints the seed\'s ldap and sendmail variables, stable until rotate', async () => {
      await hearth(['group', 'add', 'staff'], { env });
      await hearth(['group', 'add-member', 'staff', 'bob'], { env });
      const r = await hearth(['app', 'install', manifest('wiki.json'), '--id', 'wiki', '--domain', 'wiki.example.test', '--access', 'users:alice groups:staff'], { env });
      assert.equal(r.code, 0, r.stderr);
      const vars = parseEnvLines((await hearth(['app', 'env', 'wiki'], { env })).stdout);
      assert.deepEqual(Object.keys(vars), [
        'CLOUDRON_LDAP_SERVER', 'CLOUDRON_LDAP_HOST', 'CLOUDRON_LDAP_PORT', 'CLOUDRON_LDAP_URL', 'CLOUDRON_LDAP_USERS_BASE_DN',
        'CLOUDRON_LDAP_GROUPS_BASE_DN', 'CLOUDRON_LDAP_BIND_DN', 'CLOUDRON_LDAP_BIND_PASSWORD',
        'CLOUDRON_MAIL_SMTP_SERVER', 'CLOUDRON_MAIL_SMTP_PORT', 'CLOUDRON_MAIL_SMTPS_PORT', 'CLOUDRON_MAIL_SMTP_USERNAME',
        'CLOUDRON_MAIL_SMTP_PASSWORD', 'CLOUDRON_MAIL_FROM', 'CLOUDRON_MAIL_FROM_DISPLAY_NAME', 'CLOUDRON_MAIL_DOMAIN',
      ]);
      assert.equal(vars.CLOUDRON_LDAP_URL, 'ldap://127.0.0.1:3890');
      assert.equal(vars.CLOUDRON_LDAP_BIND_DN, 'cn=wiki,ou=apps,dc=cloudron');
      assert.equal(vars.CLOUDRON_LDAP_USERS_BASE_DN, 'ou=users,dc=cloudron');
      assert.equal(vars.CLOUDRON_MAIL_SMTP_USERNAME, 'wiki.app@example.test');
      assert.equal(vars.CLOUDRON_MAIL_FROM, 'wiki.app@example.test');
      assert.equal(vars.CLOUDRON_MAIL_FROM_DISPLAY_NAME, 'Wiki');
      assert.equal(vars.CLOUDRON_MAIL_SMTP_PORT, '2525');
      assert.equal(vars.CLOUDRON_MAIL_SMTPS_PORT, '2465');
      assert.ok(vars.CLOUDRON_LDAP_BIND_PASSWORD!.length >= 24);
      assert.ok(fs.existsSync(path.join(t.dataDir, 'apps/wiki/data')), 'localstorage folder');
      // Stable across runs; re-install keeps credentials.
      assert.deepEqual(parseEnvLines((await hearth(['app', 'env', 'wiki'], { env })).stdout), vars);
      assert.equal((await hearth(['app', 'install', manifest('wiki.json'), '--id', 'wiki', '--domain', 'wiki.example.test'], { env })).code, 0);
      assert.deepEqual(parseEnvLines((await hearth(['app', 'env', 'wiki'], { env })).stdout), vars);
      const show = JSON.parse((await hearth(['app', 'show', 'wiki', '--json'], { env })).stdout);
      assert.equal(show.access, 'users:alice groups:staff');
      // rotate changes every secret and nothing else
      assert.equal((await hearth(['app', 'rotate', 'wiki'], { env })).code, 0);
      const rotated = parseEnvLines((await hearth(['app', 'env', 'wiki'], { env })).stdout);
      assert.notEqual(rotated.CLOUDRON_LDAP_BIND_PASSWORD, vars.CLOUDRON_LDAP_BIND_PASSWORD);
      assert.notEqual(rotated.CLOUDRON_MAIL_SMTP_PASSWORD, vars.CLOUDRON_MAIL_SMTP_PASSWORD);
      assert.equal(rotated.CLOUDRON_MAIL_SMTP_USERNAME, vars.CLOUDRON_MAIL_SMTP_USERNAME);
    });

    it('prints recvmail, email, oidc, turn variables with the seed\'s names and honours sendmail optional', async () => {
      let r = await hearth(['app', 'install', manifest('helpdesk.json'), '--id', 'helpdesk', '--domain', 'helpdesk.example.test'], { env });
      assert.equal(r.code, 0, r.stderr);
      const hd = parseEnvLines((await hearth(['app', 'env', 'helpdesk'], { env })).stdout);
      for (const k of ['IMAP_SERVER', 'IMAP_PORT', 'IMAPS_PORT', 'POP3_PORT', 'POP3S_PORT', 'IMAP_USERNAME', 'IMAP_PASSWORD', 'TO', 'TO_DOMAIN']) assert.ok(`CLOUDRON_MAIL_${k}` in hd, k);
      for (const k of ['DISCOVERY_URL', 'ISSUER', 'AUTH_ENDPOINT', 'TOKEN_ENDPOINT', 'KEYS_ENDPOINT', 'PROFILE_ENDPOINT', 'CLIENT_ID', 'CLIENT_SECRET']) assert.ok(`CLOUDRON_OIDC_${k}` in hd, k);
      assert.equal(hd.CLOUDRON_OIDC_DISCOVERY_URL, 'http://127.0.0.1:4000/.well-known/openid-configuration');
      assert.equal(hd.CLOUDRON_MAIL_TO, 'helpdesk.app@example.test');
      assert.equal(hd.CLOUDRON_MAIL_IMAP_PORT, '1143');
      assert.equal('CLOUDRON_MAIL_FROM_DISPLAY_NAME' in hd, false, 'only with supportsDisplayName');
      const boxes = JSON.parse((await hearth(['mailbox', 'list', '--json'], { env })).stdout);
      assert.deepEqual(boxes, [{ address: 'helpdesk.app@example.test', ownerType: 'app', owner: 'helpdesk' }]);

      r = await hearth(['app', 'install', manifest('webmail.json'), '--id', 'webmail', '--domain', 'webmail.example.test'], { env });
      assert.equal(r.code, 0, r.stderr);
      const wm = parseEnvLines((await hearth(['app', 'env', 'webmail'], { env })).stdout);
      for (const k of ['SMTP_SERVER', 'SMTP_PORT', 'IMAP_SERVER', 'IMAP_PORT', 'IMAPS_PORT', 'SIEVE_SERVER', 'SIEVE_PORT', 'DOMAIN', 'DOMAINS', 'SERVER_HOST']) assert.ok(`CLOUDRON_EMAIL_${k}` in wm, k);
      assert.equal(wm.CLOUDRON_EMAIL_SIEVE_PORT, '4190');

      r = await hearth(['app', 'install', manifest('meet.json'), '--id', 'meet', '--domain', 'meet.example.test'], { env });
      assert.equal(r.code, 0, r.stderr);
      const meet = parseEnvLines((await hearth(['app', 'env', 'meet'], { env })).stdout);
      assert.deepEqual(Object.keys(meet).filter((k) => k.startsWith('CLOUDRON_TURN_')), ['CLOUDRON_TURN_SERVER', 'CLOUDRON_TURN_PORT', 'CLOUDRON_TURN_TLS_PORT', 'CLOUDRON_TURN_SECRET']);
      assert.equal(meet.CLOUDRON_TURN_PORT, '3478');
      assert.equal(meet.CLOUDRON_TURN_TLS_PORT, '5349');

      // dashboard: proxyAuth needs an upstream; sendmail optional → no variables at all
      r = await hearth(['app', 'install', manifest('dashboard.json'), '--id', 'dashboard', '--domain', 'dashboard.example.test'], { env });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /--upstream/);
      r = await hearth(['app', 'install', manifest('dashboard.json'), '--id', 'dashboard', '--domain', 'dashboard.example.test', '--upstream', 'http://127.0.0.1:9000'], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await hearth(['app', 'env', 'dashboard'], { env })).stdout, '');
    });

    it('refuses an update that adds ldap, oidc or proxyAuth to an installed app', async () => {
      const dir = tempDir();
      const plain = path.join(dir, 'plain.json');
      fs.writeFileSync(plain, JSON.stringify({ title: 'Plain', addons: { sendmail: {} } }));
      assert.equal((await hearth(['app', 'install', plain, '--id', 'plain', '--domain', 'plain.example.test'], { env })).code, 0);
      for (const addon of ['ldap', 'oidc', 'proxyAuth']) {
        const upd = path.join(dir, `${addon}.json`);
        fs.writeFileSync(upd, JSON.stringify({ title: 'Plain', addons: { sendmail: {}, [addon]: {} } }));
        const r = await hearth(['app', 'install', upd, '--id', 'plain', '--domain', 'plain.example.test', '--upstream', 'http://127.0.0.1:9'], { env });
        assert.equal(r.code, 1);
        assert.match(r.stderr, new RegExp(`the ${addon} addon cannot be added to an installed app`));
      }
      // adding an ordinary addon is fine
      const withTurn = path.join(dir, 'turn.json');
      fs.writeFileSync(withTurn, JSON.stringify({ title: 'Plain', addons: { sendmail: {}, turn: {} } }));
      assert.equal((await hearth(['app', 'install', withTurn, '--id', 'plain', '--domain', 'plain.example.test'], { env })).code, 0);
      assert.match((await hearth(['app', 'env', 'plain'], { env })).stdout, /CLOUDRON_TURN_SECRET=/);
    });

    it('uninstall removes the app, its mailboxes and its data folder', async () => {
      assert.equal((await hearth(['app', 'uninstall', 'helpdesk'], { env })).code, 0);
      assert.equal(fs.existsSync(path.join(t.dataDir, 'apps/helpdesk')), false);
      const boxes = JSON.parse((await hearth(['mailbox', 'list', '--json'], { env })).stdout);
      assert.equal(boxes.some((b: { address: string }) => b.address.startsWith('helpdesk')), false);
      assert.equal((await hearth(['app', 'env', 'helpdesk'], { env })).code, 1);
    });

    it('user and group lifecycle commands', async () => {
      const ok = async (args: string[], input?: string): Promise<string> => {
        const r = await hearth(args, { env, input });
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
        return r.stdout;
      };
      await ok(['user', 'set', 'bob', '--display-name', 'Robert', '--role', 'admin', '--fallback-email', 'bob@elsewhere.test']);
      const bob = JSON.parse(await ok(['user', 'show', 'bob', '--json']));
      assert.equal(bob.displayName, 'Robert');
      assert.equal(bob.role, 'admin');
      assert.deepEqual(bob.groups, ['staff']);
      await ok(['user', 'passwd', 'bob', '--password-stdin'], 'a new password\n');
      await ok(['user', 'disable', 'bob']);
      assert.equal(JSON.parse(await ok(['user', 'show', 'bob', '--json'])).active, false);
      await ok(['user', 'enable', 'bob']);
      const totp = JSON.parse(await ok(['user', 'totp', 'enable', 'bob', '--json']));
      assert.match(totp.secret, /^[A-Z2-7]{32}$/);
      assert.match(totp.uri, /^otpauth:\/\/totp\/Hearth:bob%40example\.test\?secret=/);
      await ok(['mailbox', 'add', 'bob@example.test', '--owner', 'bob']);
      await ok(['group', 'remove-member', 'staff', 'bob']);
      const groups = JSON.parse(await ok(['group', 'list', '--json']));
      assert.deepEqual(groups.find((g: { name: string }) => g.name === 'staff').members, []);
      await ok(['group', 'del', 'staff']);
      await ok(['user', 'del', 'bob']);
      assert.equal((await hearth(['user', 'show', 'bob'], { env })).code, 1);
      const audit = JSON.parse(await ok(['audit', '--json']));
      assert.ok(Array.isArray(audit));
    });
  });
}
