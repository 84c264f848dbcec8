import type { Directory, Group, User } from '@hearth/directory';
import { BerWriter } from './ber.ts';
import { escapeDnValue } from './dn.ts';
import { normalizeValue, type Filter, type Matchable } from './filter.ts';
import { encodeAttribute, OID, type Attribute } from './protocol.ts';

/**
 * The LDAP tree over the directory (CONTRACT.md "LDAP tree"): entries built once per
 * directory reload, with their BER encodings memoized, so a search only selects
 * entries and concatenates bytes.
 */

export const BASE_DN = 'dc=cloudron';
export const USERS_DN = 'ou=users,dc=cloudron';
export const GROUPS_DN = 'ou=groups,dc=cloudron';
export const APPS_DN = 'ou=apps,dc=cloudron';

export type EntryKind = 'root' | 'container' | 'user' | 'group';

export class Entry implements Matchable {
  readonly dnNorm: string;
  private readonly norm = new Map<string, string[]>();
  private readonly operationalNames: Set<string>;
  private tlvs: Map<string, Buffer> | null = null;
  private userTlvs: Buffer[] | null = null;
  private operTlvs: Buffer[] | null = null;
  private dnBuf: Buffer | null = null;

  constructor(
    readonly kind: EntryKind,
    readonly dn: string,
    readonly attrs: readonly Attribute[],
    readonly operational: readonly Attribute[],
    /** user id for user entries, group id for groups */
    readonly ref: string | null = null,
  ) {
    this.dnNorm = dn.toLowerCase();
    for (const a of attrs) this.norm.set(a.name.toLowerCase(), a.values.map(normalizeValue));
    for (const a of operational) this.norm.set(a.name.toLowerCase(), a.values.map(normalizeValue));
    this.operationalNames = new Set(operational.map((a) => a.name.toLowerCase()));
  }

  values(attr: string): readonly string[] | undefined {
    return this.norm.get(attr);
  }

  *allValues(): Iterable<string> {
    for (const vs of this.norm.values()) yield* vs;
  }

  get dnTlv(): Buffer {
    return (this.dnBuf ??= new BerWriter(this.dn.length + 4).writeString(this.dn).toBuffer());
  }

  private encodeAll(): Map<string, Buffer> {
    if (this.tlvs) return this.tlvs;
    const m = new Map<string, Buffer>();
    const w = new BerWriter(256);
    for (const a of [...this.attrs, ...this.operational]) {
      encodeAttribute(w.reset(), a);
      m.set(a.name.toLowerCase(), w.toBuffer());
    }
    this.userTlvs = this.attrs.map((a) => m.get(a.name.toLowerCase())!);
    this.operTlvs = this.operational.map((a) => m.get(a.name.toLowerCase())!);
    return (this.tlvs = m);
  }

  /** Encoded PartialAttributes for a selection, in entry order for `*`/`+`, then named ones. */
  select(sel: Selection): Buffer[] {
    const m = this.encodeAll();
    // The root DSE's attributes are operational, but clients expect them for a plain read.
    const allUser = sel.allUser || (this.kind === 'root' && sel.allOper);
    const allOper = sel.allOper || (this.kind === 'root' && sel.allUser);
    if (allUser && allOper) return [...this.userTlvs!, ...this.operTlvs!];
    if (allUser && sel.names.length === 0) return this.userTlvs!;
    const out: Buffer[] = [];
    if (allUser) out.push(...this.userTlvs!);
    if (allOper) out.push(...this.operTlvs!);
    for (const n of sel.names) {
      const isOper = this.operationalNames.has(n);
      if ((isOper && allOper) || (!isOper && allUser)) continue;
      const b = m.get(n);
      if (b) out.push(b);
    }
    return out;
  }

  /** Attributes of a selection with their values left out (typesOnly searches). */
  selectTypesOnly(sel: Selection): Buffer[] {
    const w = new BerWriter(128);
    const names = new Set(this.selectedNames(sel));
    return [...this.attrs, ...this.operational]
      .filter((a) => names.has(a.name.toLowerCase()))
      .map((a) => {
        encodeAttribute(w.reset(), a, true);
        return w.toBuffer();
      });
  }

  private selectedNames(sel: Selection): string[] {
    const allUser = sel.allUser || (this.kind === 'root' && sel.allOper);
    const allOper = sel.allOper || (this.kind === 'root' && sel.allUser);
    const out: string[] = [];
    for (const a of this.attrs) if (allUser || sel.names.includes(a.name.toLowerCase())) out.push(a.name.toLowerCase());
    for (const a of this.operational) if (allOper || sel.names.includes(a.name.toLowerCase())) out.push(a.name.toLowerCase());
    return out;
  }
}

/** Which attributes a search asked for (RFC 4511 4.5.1.8). */
export interface Selection {
  allUser: boolean;
  allOper: boolean;
  /** normalized names besides `*` and `+` */
  names: string[];
}

export function selection(requested: readonly string[], normalize: (s: string) => string): Selection {
  if (requested.length === 0) return { allUser: true, allOper: false, names: [] };
  const sel: Selection = { allUser: false, allOper: false, names: [] };
  for (const r of requested) {
    if (r === '*') sel.allUser = true;
    else if (r === '+') sel.allOper = true;
    else if (r !== '1.1') sel.names.push(normalize(r));
  }
  return sel;
}

function attr(name: string, ...values: (string | null | undefined)[]): Attribute {
  return { name, values: values.filter((v): v is string => typeof v === 'string' && v !== '') };
}

function attrs(...list: Attribute[]): Attribute[] {
  return list.filter((a) => a.values.length > 0);
}

/** "Ada King Lovelace" → given "Ada", surname "King Lovelace"; one word is both. */
function splitName(displayName: string, fallback: string): [string, string] {
  const parts = displayName.trim().split(/\s+/).filter(Boolean);
  if (parts.length === 0) return [fallback, fallback];
  if (parts.length === 1) return [parts[0]!, parts[0]!];
  return [parts[0]!, parts.slice(1).join(' ')];
}

export function userDn(user: User): string {
  return `cn=${escapeDnValue(user.id)},${USERS_DN}`;
}

export function groupDn(group: Group): string {
  return `cn=${escapeDnValue(group.name)},${GROUPS_DN}`;
}

function leafOperational(dn: string, structural: string): Attribute[] {
  return [attr('entryDN', dn), attr('structuralObjectClass', structural), attr('hasSubordinates', 'FALSE'), attr('subschemaSubentry', 'cn=Subschema')];
}

function userEntry(user: User, groups: Group[]): Entry {
  const dn = userDn(user);
  const [given, sn] = splitName(user.displayName, user.username);
  return new Entry(
    'user',
    dn,
    attrs(
      attr('objectclass', 'top', 'person', 'organizationalPerson', 'inetOrgPerson', 'user'),
      attr('objectcategory', 'person'),
      attr('cn', user.id),
      attr('uid', user.id),
      attr('entryuuid', user.id),
      attr('mail', user.email),
      attr('displayName', user.displayName || user.username),
      attr('mailAlternateAddress', user.fallbackEmail),
      attr('givenName', given),
      attr('sn', sn),
      attr('username', user.username),
      attr('samaccountname', user.username),
      attr('memberof', ...groups.map(groupDn)),
    ),
    leafOperational(dn, 'inetOrgPerson'),
    user.id,
  );
}

function groupEntry(group: Group, memberIds: readonly string[]): Entry {
  const dn = groupDn(group);
  return new Entry(
    'group',
    dn,
    attrs(attr('objectclass', 'top', 'group'), attr('cn', group.name), attr('gidnumber', String(group.gidNumber)), attr('memberuid', ...memberIds)),
    leafOperational(dn, 'group'),
    group.id,
  );
}

function container(dn: string, classes: string[], rdnAttr: string, rdnValue: string): Entry {
  return new Entry(
    'container',
    dn,
    attrs(attr('objectclass', 'top', ...classes), attr(rdnAttr, rdnValue)),
    [attr('entryDN', dn), attr('structuralObjectClass', classes[classes.length - 1]), attr('hasSubordinates', 'TRUE'), attr('subschemaSubentry', 'cn=Subschema')],
  );
}

const ROOT_DSE = new Entry(
  'root',
  '',
  [attr('objectClass', 'top')],
  [
    attr('namingContexts', BASE_DN),
    attr('supportedControl', OID.pagedResults, OID.manageDsaIT),
    attr('supportedExtension', OID.whoAmI, OID.passwordModify, OID.startTls),
    attr('supportedLDAPVersion', '3'),
    attr('supportedFeatures', '1.3.6.1.4.1.4203.1.5.1' /* all operational attributes (+) */),
    attr('vendorName', 'Hearth'),
    attr('subschemaSubentry', 'cn=Subschema'),
  ],
);

/** Attributes with an equality index (what apps search users by). */
const INDEXED = ['uid', 'cn', 'entryuuid', 'username', 'samaccountname', 'mail'];

/** Who is asking decides what the tree shows. */
export type Viewer = { kind: 'app'; appId: string } | { kind: 'user'; userId: string };

/** One immutable generation of the tree, rebuilt when the directory changes. */
export class Tree {
  readonly root = ROOT_DSE;
  readonly base = container(BASE_DN, ['domain'], 'dc', 'cloudron');
  readonly usersOu = container(USERS_DN, ['organizationalUnit'], 'ou', 'users');
  readonly groupsOu = container(GROUPS_DN, ['organizationalUnit'], 'ou', 'groups');
  readonly users: Entry[];
  private readonly userById = new Map<string, Entry>();
  private readonly index = new Map<string, Map<string, Entry[]>>();
  private readonly allowedByApp = new Map<string, Set<string>>();
  private readonly groupsByApp = new Map<string, Entry[]>();

  constructor(
    readonly directory: Directory,
    readonly snapshot = directory.snapshot,
  ) {
    this.users = snapshot.users.map((u) => userEntry(u, directory.groupsOf(u.id)));
    for (const attrName of INDEXED) this.index.set(attrName, new Map());
    for (const e of this.users) {
      this.userById.set(e.ref!, e);
      for (const attrName of INDEXED) {
        const idx = this.index.get(attrName)!;
        for (const v of e.values(attrName) ?? []) {
          const list = idx.get(v);
          if (list) list.push(e);
          else idx.set(v, [e]);
        }
      }
    }
  }

  /** Users the app may see: those on its access list (only active users ever are). */
  private allowedFor(appId: string): Set<string> {
    let set = this.allowedByApp.get(appId);
    if (!set) {
      const app = this.directory.app(appId);
      set = new Set(app ? this.snapshot.users.filter((u) => this.directory.canUseApp(app, u)).map((u) => u.id) : []);
      this.allowedByApp.set(appId, set);
    }
    return set;
  }

  canSeeUser(viewer: Viewer, userId: string): boolean {
    if (viewer.kind === 'user') return viewer.userId === userId && this.directory.userById(userId)?.active === true;
    return this.allowedFor(viewer.appId).has(userId);
  }

  /** Group entries as the viewer sees them: members limited to visible users. */
  groupsFor(viewer: Viewer): Entry[] {
    if (viewer.kind === 'user') {
      if (!this.canSeeUser(viewer, viewer.userId)) return [];
      return this.directory.groupsOf(viewer.userId).map((g) => groupEntry(g, [viewer.userId]));
    }
    let list = this.groupsByApp.get(viewer.appId);
    if (!list) {
      const allowed = this.allowedFor(viewer.appId);
      list = this.snapshot.groups.map((g) => groupEntry(g, g.memberIds.filter((id) => allowed.has(id))));
      this.groupsByApp.set(viewer.appId, list);
    }
    return list;
  }

  /** Users visible to the viewer, narrowed by the filter's indexed equalities when it has some. */
  usersFor(viewer: Viewer, filter: Filter | null): Entry[] {
    const candidates = (filter && this.candidates(filter)) ?? (viewer.kind === 'user' ? [this.userById.get(viewer.userId)].filter((e) => e !== undefined) : this.users);
    return candidates.filter((e) => this.canSeeUser(viewer, e.ref!));
  }

  userEntry(userId: string): Entry | undefined {
    return this.userById.get(userId);
  }

  /** Entries that can match, from the indexes; null when the filter needs a full scan. */
  private candidates(f: Filter): Entry[] | null {
    switch (f.type) {
      case 'eq':
        return this.index.get(f.attr)?.get(f.value) ?? (this.index.has(f.attr) ? [] : null);
      case 'and': {
        let best: Entry[] | null = null;
        for (const c of f.filters) {
          const r = this.candidates(c);
          if (r && (!best || r.length < best.length)) best = r;
        }
        return best;
      }
      case 'or': {
        const seen = new Set<Entry>();
        for (const c of f.filters) {
          const r = this.candidates(c);
          if (!r) return null;
          for (const e of r) seen.add(e);
        }
        return [...seen];
      }
      default:
        return null;
    }
  }
}
