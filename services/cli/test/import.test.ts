import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, hearth, MANIFESTS, parseEnvLines, runCommand, startDaemon, testEnv, waitFor, type Daemon, type TestEnv } from '@hearth/testkit';

/**
 * `hearth user import` / `group import` as an operator runs them: files written here, the CLI
 * as a process, and what they created seen through ldap-utils against the LDAP daemon.
 */

async function state(env: Record<string, string>): Promise<string> {
  const parts = await Promise.all([['user', 'list'], ['group', 'list']].map((c) => hearth([...c, '--json'], { env })));
  return parts.map((p) => p.stdout).join('\n');
}

/** An argon2id hash made by the reference implementation's CLI (Debian "argon2"), not by Hearth. */
async function referenceHash(password: string): Promise<string> {
  const r = await runCommand('argon2', ['hearthsalt123456', '-id', '-t', '1', '-k', '1024', '-p', '1', '-e'], { input: password });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

describe('hearth user import of 1,000 users (sqlite) seen over LDAP', () => {
  let t: TestEnv;
  let daemon: Daemon;
  let dir: string;
  let vars: Record<string, string>;
  const ldap = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    runCommand('ldapsearch', ['-x', '-LLL', '-o', 'ldif-wrap=no', '-H', vars.CLOUDRON_LDAP_URL!, '-D', vars.CLOUDRON_LDAP_BIND_DN!, '-w', vars.CLOUDRON_LDAP_BIND_PASSWORD!, '-b', vars.CLOUDRON_LDAP_USERS_BASE_DN!, ...args]);
  const whoami = async (user: string, password: string): Promise<number | null> =>
    (await runCommand('ldapwhoami', ['-x', '-H', vars.CLOUDRON_LDAP_URL!, '-D', `cn=${user},ou=users,dc=cloudron`, '-w', password])).code;

  /** The daemon reloads its view shortly after a write (a loaded machine may take seconds for 1,000 users). */
  const eventually = (check: () => Promise<boolean>): Promise<boolean> => waitFor(check, 20000, 200).catch(() => false);
  const refusals = (): string => daemon.output().split('\n').filter((l) => l.includes('login refused')).join('\n');

  before(async () => {
    t = await testEnv({ env: { HEARTH_LDAP_PORT: String(await freePort()), HEARTH_LDAPS_PORT: String(await freePort()), HEARTH_LOG_LEVEL: 'info' } });
    dir = t.dataDir;
    assert.equal((await hearth(['app', 'install', `${MANIFESTS}/wiki.json`, '--id', 'wiki', '--domain', 'wiki.example.test'], { env: t.env })).code, 0);
    vars = parseEnvLines((await hearth(['app', 'env', 'wiki'], { env: t.env })).stdout);
    daemon = await startDaemon('services/ldap/src/main.ts', t.env, (out) => out.includes('"msg":"ready"'));
  });
  after(async () => {
    await daemon?.stop();
    await t?.cleanup();
  });

  it('imports 1,000 CSV rows in one process; ldapsearch and user list --json see every one', async () => {
    const hash = await referenceHash('hashed password 1');
    const lines = ['username,email,displayName,role,password'];
    for (let i = 0; i < 1000; i++) {
      const password = i === 1 ? `"${hash}"` : i === 2 ? '' : `password ${i}`;
      lines.push(`user${i},user${i}@example.test,"Imported, No. ${i}",${i === 0 ? 'admin' : 'user'},${password}`);
    }
    const file = path.join(dir, 'users.csv');
    fs.writeFileSync(file, lines.join('\r\n') + '\r\n');
    const r = await hearth(['user', 'import', file, '--json'], { env: t.env });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.accepted, 1000);
    assert.equal(out.refused, 0);
    assert.equal(out.rows.filter((row: { result: string }) => row.result === 'created').length, 1000);

    const users = JSON.parse((await hearth(['user', 'list', '--json'], { env: t.env })).stdout) as { username: string; displayName: string; role: string }[];
    assert.equal(users.length, 1000);
    assert.equal(users.find((u) => u.username === 'user0')?.role, 'admin');
    assert.equal(users.find((u) => u.username === 'user7')?.displayName, 'Imported, No. 7');

    let names = new Set<string>();
    await eventually(async () => {
      const search = await ldap(['(objectclass=user)', 'username']);
      assert.equal(search.code, 0, search.stderr);
      names = new Set([...search.stdout.matchAll(/^username: (.+)$/gm)].map((m) => m[1]!));
      return names.size === 1000;
    });
    assert.equal(names.size, 1000);
    for (const n of ['user0', 'user500', 'user999']) assert.ok(names.has(n), n);

    assert.equal(await whoami('user500', 'password 500'), 0, `a plain password column is hashed and works\n${refusals()}`);
    assert.equal(await whoami('user1', 'hashed password 1'), 0, `an argon2id hash from the reference CLI is taken as is\n${refusals()}`);
    assert.equal(await whoami('user2', 'anything at all'), 49, 'no password column: no login until one is set');
  });

  it('refuses bad rows each with its line number and imports the rest', async () => {
    const file = path.join(dir, 'mixed.csv');
    fs.writeFileSync(
      file,
      [
        'username,email,password',
        'good1,good1@example.test,good password',
        'Bad!,bad@example.test,good password',
        'user5,fresh@example.test,good password', // exists already
        'good2,"two',
        'lines"@example.test,good password', // a quoted newline: the row still starts on line 5
        'good3,good3@example.test,short',
        'good4,good1@example.test,good password', // same email as line 2
        'good5,good5@example.test,"$argon2i$v=19$m=16,t=2,p=1$c29tZXNhbHQ$Tq1iL0G3xsSVu0Zx6Z8Arw"',
        'good6,good6@example.test',
        'good7,good7@example.test,good password',
      ].join('\n'),
    );
    const r = await hearth(['user', 'import', file], { env: t.env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^hearth: 7 of 9 row\(s\) refused; 2 created\n$/);
    const row = (line: number): string => r.stdout.split('\n').find((l) => l.startsWith(`${line} `)) ?? '';
    assert.match(row(2), /good1\s+created/);
    assert.match(row(3), /refused\s+username must be/);
    assert.match(row(4), /refused\s+username already exists/);
    assert.match(row(5), /refused\s+not a valid email address/);
    assert.match(row(7), /refused\s+password must be at least 8/);
    assert.match(row(8), /refused\s+email already used on line 2/);
    assert.match(row(9), /refused\s+not an argon2id hash/);
    assert.match(row(10), /refused\s+2 fields where the header has 3/);
    assert.match(row(11), /good7\s+created/);
    assert.ok(await eventually(async () => (await whoami('good7', 'good password')) === 0), refusals());
  });

  it('--atomic and --dry-run leave the store unchanged', async () => {
    const file = path.join(dir, 'atomic.csv');
    fs.writeFileSync(file, 'username,email,password\nnew1,new1@example.test,good password\nnew2,not-an-email,good password\n');
    const before = await state(t.env);
    let r = await hearth(['user', 'import', file, '--atomic', '--json'], { env: t.env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /1 of 2 row\(s\) refused; nothing imported \(--atomic\)/);
    assert.deepEqual(
      JSON.parse(r.stdout).rows.map((x: { line: number; result: string }) => [x.line, x.result]),
      [
        [2, 'not imported'],
        [3, 'refused'],
      ],
    );
    assert.equal(await state(t.env), before);

    fs.writeFileSync(file, 'username,email,password\nnew1,new1@example.test,good password\n');
    r = await hearth(['user', 'import', file, '--dry-run'], { env: t.env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /new1\s+would be created/);
    assert.equal(await state(t.env), before);
    assert.equal((await ldap(['(username=new1)', 'username'])).stdout.trim(), '');
  });

  it('imports users and groups from LDIF (folded lines, base64, {ARGON2} hashes, member DNs)', async () => {
    const hash = await referenceHash('ldif password 2');
    const users = path.join(dir, 'people.ldif');
    fs.writeFileSync(
      users,
      [
        'version: 1',
        '',
        '# exported from another directory',
        'dn: uid=lena,ou=people,dc=example,dc=org',
        'objectClass: inetOrgPerson',
        'uid: lena',
        'cn: Lena S',
        ' chmidt',
        'mail: lena@example.test',
        `userPassword:: ${Buffer.from('ldif password 1').toString('base64')}`,
        '',
        'dn: uid=mo,ou=people,dc=example,dc=org',
        'uid: mo',
        'mail: mo@example.test',
        `userPassword: {ARGON2}${hash}`,
        '',
        'dn: uid=noemail,ou=people,dc=example,dc=org',
        'uid: noemail',
        '',
      ].join('\n'),
    );
    let r = await hearth(['user', 'import', users], { env: t.env });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^17\s+noemail\s+refused\s+not a valid email address$/m);
    assert.ok(await eventually(async () => (await whoami('lena', 'ldif password 1')) === 0), refusals());
    assert.equal(await whoami('mo', 'ldif password 2'), 0);
    const lena = await ldap(['(username=lena)', 'displayname']);
    assert.match(lena.stdout, /^displayname: Lena Schmidt$/im);

    const groups = path.join(dir, 'groups.ldif');
    fs.writeFileSync(groups, ['dn: cn=crew,ou=groups,dc=example,dc=org', 'objectClass: groupOfNames', 'cn: crew', 'member: uid=lena,ou=people,dc=example,dc=org', 'member: uid=mo,ou=people,dc=example,dc=org', '', 'dn: cn=ghosts,ou=groups,dc=example,dc=org', 'cn: ghosts', 'memberUid: casper', ''].join('\n'));
    r = await hearth(['group', 'import', groups, '--json'], { env: t.env });
    assert.equal(r.code, 1);
    assert.deepEqual(
      JSON.parse(r.stdout).rows.map((x: { line: number; name: string; result: string; reason: string }) => [x.line, x.name, x.result, x.reason]),
      [
        [1, 'crew', 'created', '2 member(s)'],
        [7, 'ghosts', 'refused', 'no such user: casper'],
      ],
    );
    const crewSearch = (): ReturnType<typeof runCommand> => runCommand('ldapsearch', ['-x', '-LLL', '-H', vars.CLOUDRON_LDAP_URL!, '-D', vars.CLOUDRON_LDAP_BIND_DN!, '-w', vars.CLOUDRON_LDAP_BIND_PASSWORD!, '-b', vars.CLOUDRON_LDAP_GROUPS_BASE_DN!, '(cn=crew)', 'memberuid']);
    await eventually(async () => (await crewSearch()).stdout.includes('memberuid'));
    const crew = await crewSearch();
    const ids = (JSON.parse((await hearth(['user', 'list', '--json'], { env: t.env })).stdout) as { id: string; username: string }[]).filter((u) => ['lena', 'mo'].includes(u.username)).map((u) => u.id);
    assert.deepEqual([...crew.stdout.matchAll(/^memberuid: (.+)$/gim)].map((m) => m[1]).sort(), ids.sort());
  });
});

describe('hearth group import on postgres', () => {
  let t: TestEnv;
  before(async () => {
    t = await testEnv({ backend: 'postgres' });
  });
  after(() => t.cleanup());

  it('imports CSV groups with members in one transaction; --atomic refuses all on one bad row', async () => {
    const users = path.join(t.dataDir, 'u.csv');
    fs.writeFileSync(users, 'username,email,password\npia,pia@example.test,pia password\nraj,raj@example.test,raj password\n');
    assert.equal((await hearth(['user', 'import', users], { env: t.env })).code, 0);
    const file = path.join(t.dataDir, 'g.csv');
    fs.writeFileSync(file, 'name,members\ndevs,"pia raj"\nops,nobody\n');
    const before = await state(t.env);
    let r = await hearth(['group', 'import', file, '--atomic'], { env: t.env });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^3\s+ops\s+refused\s+no such user: nobody$/m);
    assert.equal(await state(t.env), before);
    fs.writeFileSync(file, 'name,members\ndevs,"pia,raj"\nops,pia@example.test\n');
    r = await hearth(['group', 'import', file], { env: t.env });
    assert.equal(r.code, 0, r.stderr);
    const groups = JSON.parse((await hearth(['group', 'list', '--json'], { env: t.env })).stdout) as { name: string; members: string[] }[];
    assert.deepEqual(groups.map((g) => [g.name, [...g.members].sort()]), [
      ['devs', ['pia', 'raj']],
      ['ops', ['pia']],
    ]);
  });
});
