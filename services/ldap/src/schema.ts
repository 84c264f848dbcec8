/**
 * The subschema Hearth publishes at `cn=Subschema` (RFC 4512 4.2): a definition for every
 * attribute type and object class the tree serves, with the syntaxes and matching rules
 * they use. Standard definitions are copied from their RFCs (4512, 4517, 4519, 4524, 4530,
 * 5020, 3045, 3672, 2798, RFC 2307 and its 2307bis draft for posix); object class MAY
 * lists are trimmed to the attributes Hearth serves. Cloudron's own attributes (username,
 * objectCategory, the `user`/`group` classes) get OIDs under a UUID arc (X.667, 2.25).
 */

/** Hearth's OID arc: 2.25.<UUID as an integer>, unique without registration. */
const ARC = '2.25.124745614401932436691867807003374525312';

/** RFC 4517 3.3 (and RFC 3672 for SubtreeSpecification). */
const SYNTAXES = {
  attributeTypeDescription: ['1.3.6.1.4.1.1466.115.121.1.3', 'Attribute Type Description'],
  boolean: ['1.3.6.1.4.1.1466.115.121.1.7', 'Boolean'],
  dn: ['1.3.6.1.4.1.1466.115.121.1.12', 'DN'],
  directoryString: ['1.3.6.1.4.1.1466.115.121.1.15', 'Directory String'],
  ia5String: ['1.3.6.1.4.1.1466.115.121.1.26', 'IA5 String'],
  integer: ['1.3.6.1.4.1.1466.115.121.1.27', 'INTEGER'],
  matchingRuleDescription: ['1.3.6.1.4.1.1466.115.121.1.30', 'Matching Rule Description'],
  objectClassDescription: ['1.3.6.1.4.1.1466.115.121.1.37', 'Object Class Description'],
  oid: ['1.3.6.1.4.1.1466.115.121.1.38', 'OID'],
  subtreeSpecification: ['1.3.6.1.4.1.1466.115.121.1.45', 'SubtreeSpecification'],
  ldapSyntaxDescription: ['1.3.6.1.4.1.1466.115.121.1.54', 'LDAP Syntax Description'],
  substringAssertion: ['1.3.6.1.4.1.1466.115.121.1.58', 'Substring Assertion'],
} as const;

/** Syntax OIDs by name. */
const S = Object.fromEntries(Object.entries(SYNTAXES).map(([name, [oid]]) => [name, oid])) as { [K in keyof typeof SYNTAXES]: string };

/** RFC 4517 4.2; caseExactIA5SubstringsMatch (RFC 2307's memberUid) has OpenLDAP's OID. */
const MATCHING_RULES: [oid: string, name: string, syntax: string][] = [
  ['2.5.13.0', 'objectIdentifierMatch', S.oid],
  ['2.5.13.1', 'distinguishedNameMatch', S.dn],
  ['2.5.13.2', 'caseIgnoreMatch', S.directoryString],
  ['2.5.13.4', 'caseIgnoreSubstringsMatch', S.substringAssertion],
  ['2.5.13.13', 'booleanMatch', S.boolean],
  ['2.5.13.14', 'integerMatch', S.integer],
  ['2.5.13.15', 'integerOrderingMatch', S.integer],
  ['2.5.13.30', 'objectIdentifierFirstComponentMatch', S.oid],
  ['1.3.6.1.4.1.1466.109.114.1', 'caseExactIA5Match', S.ia5String],
  ['1.3.6.1.4.1.1466.109.114.2', 'caseIgnoreIA5Match', S.ia5String],
  ['1.3.6.1.4.1.1466.109.114.3', 'caseIgnoreIA5SubstringsMatch', S.substringAssertion],
  ['1.3.6.1.4.1.4203.1.2.1', 'caseExactIA5SubstringsMatch', S.substringAssertion],
];

export interface AttributeType {
  oid: string;
  /** first = the name entries use */
  names: string[];
  desc?: string;
  sup?: string;
  equality?: string;
  ordering?: string;
  substr?: string;
  syntax?: string;
  /** upper bound from the RFC, e.g. mail's {256} */
  length?: number;
  singleValue?: boolean;
  noUserModification?: boolean;
  usage?: 'directoryOperation' | 'dSAOperation';
}

export interface ObjectClass {
  oid: string;
  name: string;
  desc?: string;
  sup?: string;
  kind: 'ABSTRACT' | 'STRUCTURAL' | 'AUXILIARY';
  must?: string[];
  may?: string[];
}

const nameSyntax = { equality: 'caseIgnoreMatch', substr: 'caseIgnoreSubstringsMatch', syntax: S.directoryString };
const operational = { singleValue: true, noUserModification: true, usage: 'directoryOperation' } as const;
const subschemaAttr = { equality: 'objectIdentifierFirstComponentMatch', usage: 'directoryOperation' } as const;

export const ATTRIBUTE_TYPES: AttributeType[] = [
  // RFC 4512 / X.501 / RFC 5020 / RFC 3672: operational attributes every entry (or the subschema) carries
  { oid: '2.5.4.0', names: ['objectClass'], equality: 'objectIdentifierMatch', syntax: S.oid },
  { oid: '2.5.21.9', names: ['structuralObjectClass'], equality: 'objectIdentifierMatch', syntax: S.oid, ...operational },
  { oid: '2.5.18.9', names: ['hasSubordinates'], equality: 'booleanMatch', syntax: S.boolean, ...operational },
  { oid: '2.5.18.10', names: ['subschemaSubentry'], equality: 'distinguishedNameMatch', syntax: S.dn, ...operational },
  { oid: '1.3.6.1.1.20', names: ['entryDN'], desc: 'DN of the entry', equality: 'distinguishedNameMatch', syntax: S.dn, ...operational },
  { oid: '2.5.18.6', names: ['subtreeSpecification'], syntax: S.subtreeSpecification, singleValue: true, usage: 'directoryOperation' },
  { oid: '2.5.21.4', names: ['matchingRules'], syntax: S.matchingRuleDescription, ...subschemaAttr },
  { oid: '2.5.21.5', names: ['attributeTypes'], syntax: S.attributeTypeDescription, ...subschemaAttr },
  { oid: '2.5.21.6', names: ['objectClasses'], syntax: S.objectClassDescription, ...subschemaAttr },
  { oid: '1.3.6.1.4.1.1466.101.120.16', names: ['ldapSyntaxes'], syntax: S.ldapSyntaxDescription, ...subschemaAttr },
  // RFC 4512 5.1 and RFC 3045: the root DSE
  { oid: '1.3.6.1.4.1.1466.101.120.5', names: ['namingContexts'], syntax: S.dn, usage: 'dSAOperation' },
  { oid: '1.3.6.1.4.1.1466.101.120.13', names: ['supportedControl'], syntax: S.oid, usage: 'dSAOperation' },
  { oid: '1.3.6.1.4.1.1466.101.120.7', names: ['supportedExtension'], syntax: S.oid, usage: 'dSAOperation' },
  { oid: '1.3.6.1.4.1.4203.1.3.5', names: ['supportedFeatures'], equality: 'objectIdentifierMatch', syntax: S.oid, usage: 'dSAOperation' },
  { oid: '1.3.6.1.4.1.1466.101.120.15', names: ['supportedLDAPVersion'], syntax: S.integer, usage: 'dSAOperation' },
  {
    oid: '1.3.6.1.1.4',
    names: ['vendorName'],
    equality: 'caseExactIA5Match',
    syntax: S.directoryString,
    singleValue: true,
    noUserModification: true,
    usage: 'dSAOperation',
  },
  // RFC 4519, 4524, 2798: names, people, containers
  { oid: '2.5.4.41', names: ['name'], ...nameSyntax },
  { oid: '2.5.4.3', names: ['cn', 'commonName'], sup: 'name' },
  { oid: '2.5.4.4', names: ['sn', 'surname'], sup: 'name' },
  { oid: '2.5.4.42', names: ['givenName'], sup: 'name' },
  { oid: '2.5.4.11', names: ['ou', 'organizationalUnitName'], sup: 'name' },
  { oid: '0.9.2342.19200300.100.1.1', names: ['uid'], ...nameSyntax },
  { oid: '0.9.2342.19200300.100.1.25', names: ['dc'], equality: 'caseIgnoreIA5Match', substr: 'caseIgnoreIA5SubstringsMatch', syntax: S.ia5String, singleValue: true },
  { oid: '0.9.2342.19200300.100.1.3', names: ['mail', 'rfc822Mailbox'], equality: 'caseIgnoreIA5Match', substr: 'caseIgnoreIA5SubstringsMatch', syntax: S.ia5String, length: 256 },
  { oid: '2.16.840.1.113730.3.1.241', names: ['displayName'], ...nameSyntax, singleValue: true },
  // Netscape Messaging Server's (as in 389 DS)
  { oid: '2.16.840.1.113730.3.1.13', names: ['mailAlternateAddress'], equality: 'caseIgnoreIA5Match', syntax: S.ia5String },
  // RFC 4530's entryUUID, served under `*` as the seed does; its values are Hearth user ids (uid-<uuid>), so a string syntax
  { oid: '1.3.6.1.1.16.4', names: ['entryUUID'], desc: 'the user id', equality: 'caseIgnoreMatch', syntax: S.directoryString, singleValue: true },
  // Active Directory's, for AD-minded clients
  { oid: '1.2.840.113556.1.4.221', names: ['sAMAccountName'], equality: 'caseIgnoreMatch', syntax: S.directoryString, singleValue: true },
  { oid: '1.2.840.113556.1.2.102', names: ['memberOf'], desc: 'groups the user belongs to', equality: 'distinguishedNameMatch', syntax: S.dn },
  // Cloudron's
  { oid: `${ARC}.1.1`, names: ['username'], desc: 'login name', ...nameSyntax, singleValue: true },
  { oid: `${ARC}.1.2`, names: ['objectCategory'], desc: 'person for every user (Cloudron; not the DN Active Directory stores)', equality: 'caseIgnoreMatch', syntax: S.directoryString, singleValue: true },
  // RFC 4519: groupOfNames members
  { oid: '2.5.4.49', names: ['distinguishedName'], equality: 'distinguishedNameMatch', syntax: S.dn },
  { oid: '2.5.4.31', names: ['member'], sup: 'distinguishedName' },
  // RFC 2307 with 2307bis orderings
  { oid: '1.3.6.1.1.1.1.0', names: ['uidNumber'], equality: 'integerMatch', ordering: 'integerOrderingMatch', syntax: S.integer, singleValue: true },
  { oid: '1.3.6.1.1.1.1.1', names: ['gidNumber'], equality: 'integerMatch', ordering: 'integerOrderingMatch', syntax: S.integer, singleValue: true },
  { oid: '1.3.6.1.1.1.1.3', names: ['homeDirectory'], equality: 'caseExactIA5Match', syntax: S.ia5String, singleValue: true },
  { oid: '1.3.6.1.1.1.1.4', names: ['loginShell'], equality: 'caseExactIA5Match', syntax: S.ia5String, singleValue: true },
  { oid: '1.3.6.1.1.1.1.12', names: ['memberUid'], equality: 'caseExactIA5Match', substr: 'caseExactIA5SubstringsMatch', syntax: S.ia5String },
];

export const OBJECT_CLASSES: ObjectClass[] = [
  { oid: '2.5.6.0', name: 'top', kind: 'ABSTRACT', must: ['objectClass'] },
  { oid: '0.9.2342.19200300.100.4.13', name: 'domain', sup: 'top', kind: 'STRUCTURAL', must: ['dc'] },
  { oid: '2.5.6.5', name: 'organizationalUnit', sup: 'top', kind: 'STRUCTURAL', must: ['ou'] },
  { oid: '2.5.17.0', name: 'subentry', sup: 'top', kind: 'STRUCTURAL', must: ['cn', 'subtreeSpecification'] },
  { oid: '2.5.20.1', name: 'subschema', kind: 'AUXILIARY', may: ['objectClasses', 'attributeTypes', 'matchingRules'] },
  { oid: '2.5.6.6', name: 'person', sup: 'top', kind: 'STRUCTURAL', must: ['sn', 'cn'] },
  { oid: '2.5.6.7', name: 'organizationalPerson', sup: 'person', kind: 'STRUCTURAL' },
  { oid: '2.16.840.1.113730.3.2.2', name: 'inetOrgPerson', sup: 'organizationalPerson', kind: 'STRUCTURAL', may: ['displayName', 'givenName', 'mail', 'uid'] },
  {
    oid: `${ARC}.2.1`,
    name: 'user',
    desc: 'Cloudron user (Active Directory-style attributes)',
    sup: 'top',
    kind: 'AUXILIARY',
    may: ['entryUUID', 'mailAlternateAddress', 'memberOf', 'objectCategory', 'sAMAccountName', 'username'],
  },
  { oid: '1.3.6.1.1.1.2.0', name: 'posixAccount', sup: 'top', kind: 'AUXILIARY', must: ['cn', 'uid', 'uidNumber', 'gidNumber', 'homeDirectory'], may: ['loginShell'] },
  // 389 DS's relaxation of RFC 4519 (MUST member), so that a group without members conforms
  { oid: '2.5.6.9', name: 'groupOfNames', sup: 'top', kind: 'STRUCTURAL', must: ['cn'], may: ['member'] },
  // RFC 2307bis: auxiliary, beside groupOfNames
  { oid: '1.3.6.1.1.1.2.2', name: 'posixGroup', sup: 'top', kind: 'AUXILIARY', must: ['gidNumber'], may: ['memberUid'] },
  { oid: `${ARC}.2.2`, name: 'group', desc: 'Cloudron group', sup: 'top', kind: 'AUXILIARY' },
];

const qdescrs = (names: readonly string[]): string => (names.length === 1 ? `'${names[0]}'` : `( ${names.map((n) => `'${n}'`).join(' ')} )`);
const oids = (names: readonly string[]): string => (names.length === 1 ? names[0]! : `( ${names.join(' $ ')} )`);

/** RFC 4512 4.1.2 AttributeTypeDescription. */
export function attributeTypeDescription(a: AttributeType): string {
  const parts = [a.oid, `NAME ${qdescrs(a.names)}`];
  if (a.desc) parts.push(`DESC '${a.desc}'`);
  if (a.sup) parts.push(`SUP ${a.sup}`);
  if (a.equality) parts.push(`EQUALITY ${a.equality}`);
  if (a.ordering) parts.push(`ORDERING ${a.ordering}`);
  if (a.substr) parts.push(`SUBSTR ${a.substr}`);
  if (a.syntax) parts.push(`SYNTAX ${a.syntax}${a.length ? `{${a.length}}` : ''}`);
  if (a.singleValue) parts.push('SINGLE-VALUE');
  if (a.noUserModification) parts.push('NO-USER-MODIFICATION');
  if (a.usage) parts.push(`USAGE ${a.usage}`);
  return `( ${parts.join(' ')} )`;
}

/** RFC 4512 4.1.1 ObjectClassDescription. */
export function objectClassDescription(c: ObjectClass): string {
  const parts = [c.oid, `NAME '${c.name}'`];
  if (c.desc) parts.push(`DESC '${c.desc}'`);
  if (c.sup) parts.push(`SUP ${c.sup}`);
  parts.push(c.kind);
  if (c.must?.length) parts.push(`MUST ${oids(c.must)}`);
  if (c.may?.length) parts.push(`MAY ${oids(c.may)}`);
  return `( ${parts.join(' ')} )`;
}

/** The subschema entry's operational attributes, rendered once. */
export const SUBSCHEMA_VALUES = {
  objectClasses: OBJECT_CLASSES.map(objectClassDescription),
  attributeTypes: ATTRIBUTE_TYPES.map(attributeTypeDescription),
  matchingRules: MATCHING_RULES.map(([oid, name, syntax]) => `( ${oid} NAME '${name}' SYNTAX ${syntax} )`),
  ldapSyntaxes: Object.values(SYNTAXES).map(([oid, desc]) => `( ${oid} DESC '${desc}' )`),
};

/** Lowercased names of the operational attributes (returned only for `+` or by name). */
export const OPERATIONAL_NAMES: ReadonlySet<string> = new Set(ATTRIBUTE_TYPES.filter((a) => a.usage).map((a) => a.names[0]!.toLowerCase()));

function effectiveSyntax(a: AttributeType): string | undefined {
  const sup = a.sup && ATTRIBUTE_TYPES.find((t) => t.names.includes(a.sup!));
  return a.syntax ?? (sup ? effectiveSyntax(sup) : undefined);
}

/** Every OID and alternative name → the lowercased name entries use (`2.5.4.3`, `commonname` → `cn`). */
export const ATTRIBUTE_ALIASES: ReadonlyMap<string, string> = new Map(
  ATTRIBUTE_TYPES.flatMap((a) => {
    const name = a.names[0]!.toLowerCase();
    return [a.oid, ...a.names.slice(1).map((n) => n.toLowerCase())].map((alias) => [alias, name] as [string, string]);
  }),
);

/** Lowercased names of the attributes holding DNs (compared with distinguishedNameMatch). */
export const DN_ATTRIBUTES: ReadonlySet<string> = new Set(ATTRIBUTE_TYPES.filter((a) => effectiveSyntax(a) === S.dn).map((a) => a.names[0]!.toLowerCase()));
