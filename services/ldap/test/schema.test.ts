import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseLdif, run, startFixture, type Fixture } from './fixture.ts';

/**
 * The subschema (RFC 4512 4.2) as real clients read it: ldapsearch, and python3-ldap3, which
 * loads it with get_info=ALL and then types every attribute by it.
 */

const LDAP3_CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'ldap3-client.py');

const SYNTAX = {
  boolean: '1.3.6.1.4.1.1466.115.121.1.7',
  dn: '1.3.6.1.4.1.1466.115.121.1.12',
  directoryString: '1.3.6.1.4.1.1466.115.121.1.15',
  ia5: '1.3.6.1.4.1.1466.115.121.1.26',
  integer: '1.3.6.1.4.1.1466.115.121.1.27',
  oid: '1.3.6.1.4.1.1466.115.121.1.38',
};

/** Definitions as the RFCs give them: [OID, syntax or superior type, single-valued]. */
const EXPECTED: Record<string, [string, string | { sup: string }, boolean]> = {
  objectclass: ['2.5.4.0', SYNTAX.oid, false], // RFC 4512
  cn: ['2.5.4.3', { sup: 'name' }, false], // RFC 4519
  sn: ['2.5.4.4', { sup: 'name' }, false],
  givenname: ['2.5.4.42', { sup: 'name' }, false],
  ou: ['2.5.4.11', { sup: 'name' }, false],
  member: ['2.5.4.31', { sup: 'distinguishedName' }, false],
  uid: ['0.9.2342.19200300.100.1.1', SYNTAX.directoryString, false],
  dc: ['0.9.2342.19200300.100.1.25', SYNTAX.ia5, true],
  mail: ['0.9.2342.19200300.100.1.3', SYNTAX.ia5, false], // RFC 4524
  displayname: ['2.16.840.1.113730.3.1.241', SYNTAX.directoryString, true], // RFC 2798
  uidnumber: ['1.3.6.1.1.1.1.0', SYNTAX.integer, true], // RFC 2307
  gidnumber: ['1.3.6.1.1.1.1.1', SYNTAX.integer, true],
  homedirectory: ['1.3.6.1.1.1.1.3', SYNTAX.ia5, true],
  loginshell: ['1.3.6.1.1.1.1.4', SYNTAX.ia5, true],
  memberuid: ['1.3.6.1.1.1.1.12', SYNTAX.ia5, false],
  memberof: ['1.2.840.113556.1.2.102', SYNTAX.dn, false], // Active Directory
  samaccountname: ['1.2.840.113556.1.4.221', SYNTAX.directoryString, true],
  entrydn: ['1.3.6.1.1.20', SYNTAX.dn, true], // RFC 5020
  structuralobjectclass: ['2.5.21.9', SYNTAX.oid, true], // RFC 4512
  subschemasubentry: ['2.5.18.10', SYNTAX.dn, true],
  hassubordinates: ['2.5.18.9', SYNTAX.boolean, true], // X.501
  namingcontexts: ['1.3.6.1.4.1.1466.101.120.5', SYNTAX.dn, false],
  supportedldapversion: ['1.3.6.1.4.1.1466.101.120.15', SYNTAX.integer, false],
};

interface Ldap3Result {
  subschemaSubentry: string[] | null;
  schemaLoaded: boolean;
  attributeTypes: Record<string, { oid: string; names: string[]; syntax: string | null; singleValue: boolean; superior: string[]; operational: boolean }>;
  objectClasses: Record<string, { oid: string; kind: string; superior: string[]; must: string[]; may: string[] }>;
  entries: { dn: string; attributes: Record<string, { type: string; value: unknown }> }[];
}

let f: Fixture;

async function ldap3(bases: string[], bind: [string, string] = [f.appDn, f.appPassword]): Promise<Ldap3Result> {
  const r = await run('/usr/bin/python3', [LDAP3_CLIENT, f.url, ...bind, ...bases]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Ldap3Result;
}

before(async () => {
  f = await startFixture();
});
after(async () => {
  await f?.close();
});

describe('cn=Subschema', () => {
  it('is read by ldapsearch with a base search for (objectClass=subschema), anonymously too', async () => {
    const rootDse = await run('ldapsearch', ['-x', '-LLL', '-o', 'ldif-wrap=no', '-H', f.url, '-b', '', '-s', 'base', 'subschemaSubentry']);
    const dn = parseLdif(rootDse.stdout).get('')?.get('subschemaSubentry')?.[0];
    assert.equal(dn, 'cn=Subschema');
    const r = await run('ldapsearch', ['-x', '-LLL', '-o', 'ldif-wrap=no', '-H', f.url, '-b', dn, '-s', 'base', '(objectClass=subschema)', 'objectClasses', 'attributeTypes', 'ldapSyntaxes', 'matchingRules']);
    assert.equal(r.code, 0, r.stderr);
    const e = parseLdif(r.stdout).get('cn=Subschema');
    assert.ok(e, r.stdout);
    assert.deepEqual([...e.keys()].sort(), ['attributeTypes', 'ldapSyntaxes', 'matchingRules', 'objectClasses']);
    assert.ok(e.get('attributeTypes')!.includes("( 2.5.18.10 NAME 'subschemaSubentry' EQUALITY distinguishedNameMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )"));
    assert.ok(e.get('ldapSyntaxes')!.includes("( 1.3.6.1.4.1.1466.115.121.1.27 DESC 'INTEGER' )"));
    assert.ok(e.get('matchingRules')!.includes("( 2.5.13.2 NAME 'caseIgnoreMatch' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )"));
  });

  it('returns its definitions only when asked for by name or with +', async () => {
    const plain = await run('ldapsearch', ['-x', '-LLL', '-o', 'ldif-wrap=no', '-H', f.url, '-D', f.appDn, '-w', f.appPassword, '-b', 'cn=Subschema', '-s', 'base', '(objectClass=*)']);
    assert.equal(plain.code, 0, plain.stderr);
    const e = parseLdif(plain.stdout).get('cn=Subschema')!;
    assert.deepEqual([...e.keys()].sort(), ['cn', 'objectClass']);
    assert.deepEqual(e.get('objectClass'), ['top', 'subentry', 'subschema']);
    const all = await run('ldapsearch', ['-x', '-LLL', '-o', 'ldif-wrap=no', '-H', f.url, '-b', 'cn=subschema', '-s', 'base', '(objectClass=subschema)', '+']);
    const o = parseLdif(all.stdout).get('cn=Subschema')!;
    for (const a of ['attributeTypes', 'objectClasses', 'ldapSyntaxes', 'matchingRules', 'structuralObjectClass', 'subtreeSpecification']) assert.ok(o.has(a), a);
    assert.deepEqual(o.get('structuralObjectClass'), ['subentry']);
    const miss = await run('ldapsearch', ['-x', '-LLL', '-H', f.url, '-b', 'cn=Subschema', '-s', 'base', '(objectClass=person)']);
    assert.equal(miss.code, 0);
    assert.equal(parseLdif(miss.stdout).size, 0);
  });

  it('is loaded by ldap3 (get_info=ALL) and defines every attribute and class Hearth serves', async () => {
    const r = await ldap3(['dc=cloudron', 'cn=Subschema']);
    assert.deepEqual(r.subschemaSubentry, ['cn=Subschema']);
    assert.ok(r.schemaLoaded, 'ldap3 found no schema');
    for (const [name, [oid, syntax, single]] of Object.entries(EXPECTED)) {
      const t = r.attributeTypes[name];
      assert.ok(t, `no attributeType ${name}`);
      assert.equal(t.oid, oid, name);
      if (typeof syntax === 'string') assert.equal(t.syntax, syntax, name);
      else assert.deepEqual(t.superior, [syntax.sup], name);
      assert.equal(t.singleValue, single, `${name} SINGLE-VALUE`);
    }
    const dns = r.entries.map((e) => e.dn);
    for (const dn of ['cn=Subschema', 'dc=cloudron', 'ou=users,dc=cloudron', `cn=${f.users.alice.id},ou=users,dc=cloudron`, 'cn=staff,ou=groups,dc=cloudron']) assert.ok(dns.includes(dn), dn);
    for (const e of r.entries) {
      // every attribute served is defined; every class is defined and its MUST attributes are present
      for (const name of Object.keys(e.attributes)) assert.ok(r.attributeTypes[name.toLowerCase()], `${e.dn}: ${name} has no definition`);
      const classes = e.attributes.objectClass ?? e.attributes.objectclass;
      assert.ok(classes, e.dn);
      const present = new Set(Object.keys(e.attributes).map((n) => n.toLowerCase()));
      const allowed = new Set<string>();
      let structural = 0;
      for (const c of classes.value as string[]) {
        const def = r.objectClasses[c.toLowerCase()];
        assert.ok(def, `${e.dn}: class ${c} has no definition`);
        if (def.kind === 'STRUCTURAL') structural++;
        for (const m of def.must) {
          const t = r.attributeTypes[m.toLowerCase()]!;
          assert.ok(t.names.some((n) => present.has(n.toLowerCase())), `${e.dn}: ${c} requires ${m}`);
        }
        for (const n of [...def.must, ...def.may]) for (const alias of r.attributeTypes[n.toLowerCase()]!.names) allowed.add(alias.toLowerCase());
      }
      assert.ok(structural >= 1, `${e.dn}: no structural class`);
      for (const n of present) assert.ok(allowed.has(n) || r.attributeTypes[n]!.operational, `${e.dn}: ${n} is allowed by none of its classes`);
    }
  });

  it('makes ldap3 type values by their syntax and SINGLE-VALUE flag', async () => {
    const r = await ldap3(['ou=users,dc=cloudron', 'ou=groups,dc=cloudron']);
    const alice = r.entries.find((e) => e.dn === `cn=${f.users.alice.id},ou=users,dc=cloudron`)!.attributes;
    assert.deepEqual(alice.displayName, { type: 'str', value: 'Alice Liddell' });
    assert.deepEqual(alice.username, { type: 'str', value: 'alice' });
    assert.deepEqual(alice.mail, { type: 'list', value: ['alice@example.test'] });
    assert.deepEqual(alice.memberof, { type: 'list', value: ['cn=others,ou=groups,dc=cloudron'] });
    assert.deepEqual(alice.hasSubordinates, { type: 'bool', value: false });
    assert.deepEqual(alice.structuralObjectClass, { type: 'str', value: 'inetOrgPerson' });
    assert.deepEqual(alice.uidNumber, { type: 'int', value: f.users.alice.uidNumber });
    assert.deepEqual(alice.homeDirectory, { type: 'str', value: '/home/alice' });
    const staff = r.entries.find((e) => e.dn === 'cn=staff,ou=groups,dc=cloudron')!.attributes;
    const gid = f.directory.groupByName('staff')!.gidNumber;
    assert.deepEqual(staff.gidnumber, { type: 'int', value: gid });
    const ou = r.entries.find((e) => e.dn === 'ou=users,dc=cloudron')!.attributes;
    assert.deepEqual(ou.hasSubordinates, { type: 'bool', value: true });
  });
});
