import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { freePort, hearth, runCommand, startDaemon, tempDir, testEnv, type TestEnv } from '@hearth/testkit';

/**
 * The directory store in PostgreSQL (HEARTH_DATABASE_URL): backed up with pg_dump, restored with
 * one pg_restore transaction; a user removed after the backup is back and binds with the old
 * password, one added after it is gone.
 */

let t: TestEnv;
let outside: string;

before(async () => {
  outside = tempDir('hearth-backup-pg-store-');
  const passwordFile = path.join(outside, 'password');
  fs.writeFileSync(passwordFile, 'pg store password\n', { mode: 0o600 });
  t = await testEnv({
    backend: 'postgres',
    env: {
      HEARTH_BACKUP_REPOSITORY: path.join(outside, 'repo'),
      HEARTH_BACKUP_PASSWORD_FILE: passwordFile,
      HEARTH_LDAP_PORT: String(await freePort()),
      HEARTH_LDAPS_PORT: String(await freePort()),
      HEARTH_LOG_LEVEL: 'info',
    },
  });
});
after(async () => {
  await t?.cleanup();
  fs.rmSync(outside, { recursive: true, force: true });
});

async function ok(args: string[], input?: string): Promise<string> {
  const r = await hearth(args, { env: t.env, input });
  assert.equal(r.code, 0, `hearth ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

it('a PostgreSQL directory store is backed up and restored: users log in with their old passwords', { timeout: 300_000 }, async () => {
  await ok(['user', 'add', 'carol', '--email', 'carol@example.test', '--password-stdin'], 'carol-password-1\n');
  assert.match(await ok(['backup', 'create']), /snapshot [0-9a-f]{8} of the platform/);
  await ok(['user', 'del', 'carol']);
  await ok(['user', 'add', 'dave', '--email', 'dave@example.test', '--password-stdin'], 'dave-password-1\n');
  assert.match(await ok(['backup', 'restore', 'latest']), /the directory store \(PostgreSQL\)/);
  const users = (JSON.parse(await ok(['user', 'list', '--json'])) as { username: string }[]).map((u) => u.username).sort();
  assert.deepEqual(users, ['carol']);
  const ldap = await startDaemon('services/ldap/src/main.ts', t.env, (o) => o.includes('"msg":"ready"'));
  try {
    const bind = (password: string) =>
      runCommand('ldapsearch', ['-x', '-H', `ldap://127.0.0.1:${t.env.HEARTH_LDAP_PORT}`, '-D', 'cn=carol,ou=users,dc=cloudron', '-w', password, '-b', 'ou=users,dc=cloudron', '(username=carol)', 'mail'], { timeoutMs: 20_000 });
    const good = await bind('carol-password-1');
    assert.equal(good.code, 0, good.out);
    assert.match(good.out, /mail: carol@example.test/);
    assert.notEqual((await bind('wrong-password')).code, 0);
  } finally {
    await ldap.stop();
  }
});
