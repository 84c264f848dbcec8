import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from '@hearth/testkit';
import { parseLdif, run, startFixture, type Fixture } from './fixture.ts';

/**
 * What NSS clients and groupOfNames readers need beyond the seed: posixAccount attributes on
 * users, `member` DNs and posixGroup on groups, checked with ldapsearch and with Debian's
 * nslcd + libnss-ldapd answering getent and id.
 */

const NSS_LOOKUP = path.join(path.dirname(fileURLToPath(import.meta.url)), 'nss-lookup.sh');

let f: Fixture;
const userDn = (id: string): string => `cn=${id},ou=users,dc=cloudron`;

function ldapsearch(args: string[]): ReturnType<typeof run> {
  return run('ldapsearch', ['-x', '-LLL', '-o', 'ldif-wrap=no', '-H', f.url, '-D', f.appDn, '-w', f.appPassword, ...args]);
}

before(async () => {
  f = await startFixture();
});
after(async () => {
  await f?.close();
});

describe('posixAccount and groupOfNames attributes', () => {
  it('give every user a stable uid number, the users group, a home directory and a shell, besides the seed attributes', async () => {
    const { alice, carol } = f.users;
    assert.ok(Number.isInteger(alice.uidNumber) && alice.uidNumber >= 1000, String(alice.uidNumber));
    assert.notEqual(alice.uidNumber, carol.uidNumber);
    const r = await ldapsearch(['-b', 'ou=users,dc=cloudron', '(objectClass=posixAccount)']);
    assert.equal(r.code, 0, r.stderr);
    const a = parseLdif(r.stdout).get(userDn(alice.id))!;
    assert.ok(a, r.stdout);
    assert.deepEqual(a.get('objectclass'), ['top', 'person', 'organizationalPerson', 'inetOrgPerson', 'user', 'posixAccount']);
    assert.deepEqual(a.get('uidNumber'), [String(alice.uidNumber)]);
    assert.deepEqual(a.get('gidNumber'), ['100']);
    assert.deepEqual(a.get('homeDirectory'), ['/home/alice']);
    assert.deepEqual(a.get('loginShell'), ['/usr/sbin/nologin']);
    // the seed's attributes are all still there, unchanged
    assert.deepEqual(a.get('uid'), [alice.id]);
    assert.deepEqual(a.get('username'), ['alice']);
    const byNumber = await ldapsearch(['-b', 'ou=users,dc=cloudron', `(uidNumber=${carol.uidNumber})`, 'username']);
    assert.deepEqual([...parseLdif(byNumber.stdout).keys()], [userDn(carol.id)]);
  });

  it('list member DNs next to memberuid, as groupOfNames and posixGroup, and filter on member', async () => {
    const { alice, carol, dave } = f.users;
    const r = await ldapsearch(['-b', 'ou=groups,dc=cloudron', '(objectClass=groupOfNames)']);
    assert.equal(r.code, 0, r.stderr);
    const staff = parseLdif(r.stdout).get('cn=staff,ou=groups,dc=cloudron')!;
    assert.deepEqual(staff.get('objectclass'), ['top', 'group', 'groupOfNames', 'posixGroup']);
    // erin is a member but disabled, so the app sees neither her memberuid nor her member DN
    assert.deepEqual(staff.get('memberuid')!.sort(), [carol.id, dave.id].sort());
    assert.deepEqual(staff.get('member')!.sort(), [userDn(carol.id), userDn(dave.id)].sort());
    // DN matching: any case and spacing
    const byMember = await ldapsearch(['-b', 'ou=groups,dc=cloudron', `(member=CN=${alice.id.toUpperCase()}, OU=Users, DC=cloudron)`, 'cn']);
    assert.deepEqual([...parseLdif(byMember.stdout).keys()], ['cn=others,ou=groups,dc=cloudron']);
    const both = await ldapsearch(['-b', 'ou=groups,dc=cloudron', `(&(objectClass=posixGroup)(|(memberUid=${carol.id})(member=${userDn(carol.id)})))`, 'cn']);
    assert.deepEqual([...parseLdif(both.stdout).keys()], ['cn=staff,ou=groups,dc=cloudron']);
  });

  it('shows a user bound as itself only itself as member', async () => {
    const { dave } = f.users;
    const r = await run('ldapsearch', ['-x', '-LLL', '-H', f.url, '-D', `cn=dave,ou=users,dc=cloudron`, '-w', 'correct horse battery', '-b', 'cn=staff,ou=groups,dc=cloudron', '-s', 'base', 'member']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(parseLdif(r.stdout).get('cn=staff,ou=groups,dc=cloudron')?.get('member'), [userDn(dave.id)]);
  });
});

describe('nslcd (libnss-ldapd)', { skip: process.getuid?.() !== 0 && 'needs root for a private mount namespace' }, () => {
  it('resolves users and groups for getent and id through an app bind', async () => {
    const dir = tempDir();
    fs.chmodSync(dir, 0o755);
    // The configuration an operator would write (services/ldap/README.md "NSS clients").
    fs.writeFileSync(
      path.join(dir, 'nslcd.conf'),
      [
        'uid nslcd',
        'gid nslcd',
        `uri ldap://127.0.0.1:${f.server.port}/`,
        'base dc=cloudron',
        `binddn ${f.appDn}`,
        `bindpw ${f.appPassword}`,
        'map passwd uid username',
        'map passwd gecos displayName',
        'map group memberUid uniqueMember',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    // ldap before files: Debian has a local group named staff (gid 50) that would answer first.
    fs.writeFileSync(path.join(dir, 'nsswitch.conf'), 'passwd: ldap files\ngroup: ldap files\nshadow: files\nhosts: files\n');
    const { alice, carol } = f.users;
    const staffGid = f.directory.groupByName('staff')!.gidNumber;
    const lookups = ['getent passwd alice', `getent passwd ${carol.uidNumber}`, 'getent passwd bob', 'getent group staff', `getent group ${staffGid}`, 'id -Gn dave'];
    const r = await run('unshare', ['--mount', '--propagation', 'private', NSS_LOOKUP, dir, ...lookups]);
    const log = fs.existsSync(path.join(dir, 'nslcd.log')) ? fs.readFileSync(path.join(dir, 'nslcd.log'), 'utf8') : '';
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(r.code, 0, `${r.stderr}\n${log}`);
    const answers = new Map<string, { out: string; rc: number }>();
    for (const block of r.stdout.split(/^### cmd: /m).slice(1)) {
      const m = /^(.*)\n([\s\S]*?)### rc=(\d+)\n$/.exec(block);
      assert.ok(m, block);
      answers.set(m[1]!, { out: m[2]!.trim(), rc: Number(m[3]) });
    }
    const answer = (cmd: string): string => {
      const a = answers.get(cmd)!;
      assert.equal(a.rc, 0, `${cmd}: exit ${a.rc}\n${log}`);
      return a.out;
    };
    // passwd(5): name:password:uid:gid:gecos:home:shell
    assert.equal(answer('getent passwd alice'), `alice:*:${alice.uidNumber}:100:Alice Liddell:/home/alice:/usr/sbin/nologin`);
    assert.equal(answer(`getent passwd ${carol.uidNumber}`), `carol:*:${carol.uidNumber}:100:Carol Ann Smith:/home/carol:/usr/sbin/nologin`);
    assert.equal(answers.get('getent passwd bob')!.rc, 2, 'bob is not allowed to use the app');
    // group(5): name:password:gid:members (login names, from member; erin is disabled)
    const [name, , gid, members] = answer('getent group staff').split(':');
    assert.deepEqual([name, Number(gid), members!.split(',').sort()], ['staff', staffGid, ['carol', 'dave']]);
    assert.equal(answer(`getent group ${staffGid}`).split(':')[0], 'staff');
    assert.deepEqual(answer('id -Gn dave').split(' ').sort(), ['staff', 'users']);
  });
});
