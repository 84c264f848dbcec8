import type { Directory, Group, User } from '@hearth/directory';
import { BerWriter } from './ber.ts';
import { escapeDnValue } from './dn.ts';
import { normalizeAttr, normalizeValue, type Filter, type Matchable } from './filter.ts';
import { encodeAttribute, OID, type Attribute } from './protocol.ts';
import { OPERATIONAL_NAMES, SUBSCHEMA_VALUES } from './schema.ts';

/**
 * The LDAP tree over the directory (CONTRACT.md "LDAP tree"): entries built once per
 * directory reload, with their BER encodings memoized, so a search only selects
 * entries and concatenates bytes.
 */

export const BASE_DN = 'dc=cloudron';
export const USERS_DN = 'ou=users,dc=cloudron';
export const GROUPS_DN = 'ou=groups,dc=cloudron';
export const APPS_DN = 'ou=apps,dc=cloudron';

export const SUBSCHEMA_DN = 'cn=Subschema';

export type EntryKind = 'root' | 'subschema' | 'container' | 'user' | 'group';

/** Attribute names of a kind of entry, in output order, shared by all its entries. */
export class Layout {
  readonly index = new Map<string, number>();
  constructor(readonly names: readonly string[]) {
    names.forEach((n, i) => this.index.set(n.toLowerCase(), i));
  }
}

/**
 * One writer reused for every entry encoding (synchronous, so never shared in flight):
 * the memoized copies then pack densely instead of pinning pool slabs full of scratch space.
 */
const scratch = new BerWriter(64 * 1024);

function normalizedList(values: readonly string[]): readonly string[] {
  let changed = false;
  const out = values.map((v) => {
    const n = normalizeValue(v);
    if (n !== v) changed = true;
    return n;
  });
  // Ids, emails and usernames are already lowercase: share the array.
  return changed ? out : values;
}

/**
 * One entry. Kept compact because there is one per user: values in a shared layout,
 * normalized values sharing the raw arrays when equal, and the BER of the DN and all
 * attributes in one buffer with offsets, built on first use.
 */
export class Entry implements Matchable {
  readonly dnNorm: string;
  private readonly norm: (readonly string[])[];
  private enc: Buffer | null = null;
  /** enc offsets: [dn end, attr 0 end, attr 1 end, ...]; an empty attribute has zero length */
  private offs: Uint32Array | null = null;

  constructor(
    readonly kind: EntryKind,
    readonly dn: string,
    readonly layout: Layout,
    /** values per layout name; empty = absent */
    readonly vals: readonly (readonly string[])[],
    /** user id for user entries, group id for groups */
    readonly ref: string | null = null,
    /** structural object class reported by `+` */
    private readonly structural = 'top',
    /** operational attributes besides the four every entry has */
    private readonly extraOperational: readonly Attribute[] = [],
  ) {
    const lower = dn.toLowerCase();
    this.dnNorm = lower === dn ? dn : lower;
    this.norm = vals.map(normalizedList);
  }

  values(attr: string): readonly string[] | undefined {
    const i = this.layout.index.get(attr);
    if (i !== undefined) {
      const v = this.norm[i]!;
      return v.length ? v : undefined;
    }
    if (this.kind === 'root' || !OPERATIONAL_NAMES.has(attr)) return undefined;
    return this.operational()
      .find((a) => a.name.toLowerCase() === attr)
      ?.values.map(normalizeValue);
  }

  *allValues(): Iterable<string> {
    for (const vs of this.norm) yield* vs;
  }

  private operational(): Attribute[] {
    if (this.kind === 'root') return [];
    return [
      { name: 'entryDN', values: [this.dn] },
      { name: 'structuralObjectClass', values: [this.structural] },
      { name: 'hasSubordinates', values: [this.kind === 'container' ? 'TRUE' : 'FALSE'] },
      { name: 'subschemaSubentry', values: [SUBSCHEMA_DN] },
      ...this.extraOperational,
    ];
  }

  private encode(): void {
    const w = scratch.reset();
    const offs = new Uint32Array(this.vals.length + 1);
    w.writeString(this.dn);
    let pos = w.length;
    offs[0] = pos;
    this.vals.forEach((values, i) => {
      if (values.length) {
        encodeAttribute(w, { name: this.layout.names[i]!, values });
        pos = w.length;
      }
      offs[i + 1] = pos;
    });
    this.enc = w.toBuffer();
    this.offs = offs;
  }

  get dnTlv(): Buffer {
    if (!this.enc) this.encode();
    return this.enc!.subarray(0, this.offs![0]);
  }

  /** Encoded PartialAttributes for a selection: `*` in layout order, `+`, then named ones. */
  select(sel: Selection): Buffer[] {
    if (!this.enc) this.encode();
    const enc = this.enc!;
    const offs = this.offs!;
    // The root DSE's attributes are operational, but clients expect them for a plain read.
    const allUser = sel.allUser || (this.kind === 'root' && sel.allOper);
    const out: Buffer[] = [];
    if (allUser) out.push(enc.subarray(offs[0], offs[this.vals.length]));
    else {
      for (const n of sel.names) {
        const i = this.layout.index.get(n);
        if (i !== undefined && offs[i + 1]! > offs[i]!) out.push(enc.subarray(offs[i], offs[i + 1]));
      }
    }
    const oper = this.operational();
    if (oper.length && (sel.allOper || sel.names.some((n) => OPERATIONAL_NAMES.has(n)))) {
      const w = new BerWriter(128);
      for (const a of oper) if (sel.allOper || sel.names.includes(a.name.toLowerCase())) encodeAttribute(w, a);
      out.push(w.toBuffer());
    }
    return out;
  }

  /** Attributes of a selection with their values left out (typesOnly searches). */
  selectTypesOnly(sel: Selection): Buffer[] {
    const allUser = sel.allUser || (this.kind === 'root' && sel.allOper);
    const w = new BerWriter(128);
    this.vals.forEach((values, i) => {
      const name = this.layout.names[i]!;
      if (values.length && (allUser || sel.names.includes(name.toLowerCase()))) encodeAttribute(w, { name, values }, true);
    });
    for (const a of this.operational()) if (sel.allOper || sel.names.includes(a.name.toLowerCase())) encodeAttribute(w, a, true);
    return [w.toBuffer()];
  }
}

/** Which attributes a search asked for (RFC 4511 4.5.1.8). */
export interface Selection {
  allUser: boolean;
  allOper: boolean;
  /** normalized names besides `*` and `+` */
  names: string[];
}

/** The selection for a request's attribute list: none means all user attributes; `1.1` alone means none. */
export function selection(requested: readonly string[]): Selection {
  if (requested.length === 0) return { allUser: true, allOper: false, names: [] };
  const sel: Selection = { allUser: false, allOper: false, names: [] };
  for (const r of requested) {
    if (r === '*') sel.allUser = true;
    else if (r === '+') sel.allOper = true;
    else if (r !== '1.1') sel.names.push(normalizeAttr(r));
  }
  return sel;
}

function present(...values: (string | null | undefined)[]): string[] {
  return values.filter((v): v is string => typeof v === 'string' && v !== '');
}

/** "Ada King Lovelace" → given "Ada", surname "King Lovelace"; one word is both. */
function splitName(displayName: string, fallback: string): [string, string] {
  const parts = displayName.trim().split(/\s+/).filter(Boolean);
  if (parts.length === 0) return [fallback, fallback];
  if (parts.length === 1) return [parts[0]!, parts[0]!];
  return [parts[0]!, parts.slice(1).join(' ')];
}

export function userDn(user: User): string {
  return userDnOf(user.id);
}

function userDnOf(userId: string): string {
  return `cn=${escapeDnValue(userId)},${USERS_DN}`;
}

export function groupDn(group: Group): string {
  return `cn=${escapeDnValue(group.name)},${GROUPS_DN}`;
}

const USER_LAYOUT = new Layout([
  'objectclass',
  'objectcategory',
  'cn',
  'uid',
  'entryuuid',
  'mail',
  'displayName',
  'mailAlternateAddress',
  'givenName',
  'sn',
  'username',
  'samaccountname',
  'memberof',
  // RFC 2307 posixAccount, for NSS clients (nslcd, SSSD); beyond the seed
  'uidNumber',
  'gidNumber',
  'homeDirectory',
  'loginShell',
]);
const USER_CLASSES = ['top', 'person', 'organizationalPerson', 'inetOrgPerson', 'user', 'posixAccount'];
const PERSON = ['person'];
/** Every user's primary group: gid 100, `users` on Debian and most Linux systems (NSS clients can map it). */
const USER_GID_NUMBER = ['100'];
/** No shell: Hearth accounts are for apps, not host logins (nslcd `map passwd loginShell` overrides it). */
const LOGIN_SHELL = ['/usr/sbin/nologin'];

function userEntry(user: User, memberOf: readonly string[]): Entry {
  const [given, sn] = splitName(user.displayName, user.username);
  const id = [user.id];
  const username = [user.username];
  return new Entry(
    'user',
    userDn(user),
    USER_LAYOUT,
    [
      USER_CLASSES,
      PERSON,
      id,
      id,
      id,
      [user.email],
      [user.displayName || user.username],
      present(user.fallbackEmail),
      [given],
      [sn],
      username,
      username,
      memberOf,
      [String(user.uidNumber)],
      USER_GID_NUMBER,
      // the username never changes, so neither does the home directory
      [`/home/${user.username}`],
      LOGIN_SHELL,
    ],
    user.id,
    'inetOrgPerson',
  );
}

/** The seed's attributes, then `member` (the users' DNs) for groupOfNames readers. */
const GROUP_LAYOUT = new Layout(['objectclass', 'cn', 'gidnumber', 'memberuid', 'member']);
const GROUP_CLASSES = ['top', 'group', 'groupOfNames', 'posixGroup'];

function groupEntry(group: Group, memberIds: readonly string[]): Entry {
  return new Entry('group', groupDn(group), GROUP_LAYOUT, [GROUP_CLASSES, [group.name], [String(group.gidNumber)], memberIds, memberIds.map(userDnOf)], group.id, 'groupOfNames');
}

function container(dn: string, structural: string, rdnAttr: string, rdnValue: string): Entry {
  return new Entry('container', dn, new Layout(['objectclass', rdnAttr]), [['top', structural], [rdnValue]], null, structural);
}

const ROOT_DSE = new Entry(
  'root',
  '',
  new Layout(['objectClass', 'namingContexts', 'supportedControl', 'supportedExtension', 'supportedLDAPVersion', 'supportedFeatures', 'vendorName', 'subschemaSubentry']),
  [
    ['top'],
    [BASE_DN],
    [OID.pagedResults, OID.manageDsaIT],
    [OID.whoAmI, OID.passwordModify, OID.startTls],
    ['3'],
    ['1.3.6.1.4.1.4203.1.5.1' /* all operational attributes (+) */],
    ['Hearth'],
    [SUBSCHEMA_DN],
  ],
);

/** The subschema subentry (RFC 4512 4.2) every entry's subschemaSubentry names; readable by anyone, like the root DSE. */
const SUBSCHEMA = new Entry(
  'subschema',
  SUBSCHEMA_DN,
  new Layout(['objectClass', 'cn']),
  [['top', 'subentry', 'subschema'], ['Subschema']],
  null,
  'subentry',
  [
    // RFC 3672: the empty specification, the whole subtree
    { name: 'subtreeSpecification', values: ['{}'] },
    ...Object.entries(SUBSCHEMA_VALUES).map(([name, values]) => ({ name, values })),
  ],
);

/** Attributes with an equality index (what apps search users by), and the index each uses: uid, cn and entryuuid all hold the id. */
const INDEX_OF: Record<string, 'id' | 'username' | 'mail'> = { uid: 'id', cn: 'id', entryuuid: 'id', username: 'username', samaccountname: 'username', mail: 'mail' };

/** Who is asking decides what the tree shows. */
export type Viewer = { kind: 'app'; appId: string } | { kind: 'user'; userId: string };

/** One immutable generation of the tree, rebuilt when the directory changes. */
export class Tree {
  readonly root = ROOT_DSE;
  readonly subschema = SUBSCHEMA;
  readonly base = container(BASE_DN, 'domain', 'dc', 'cloudron');
  readonly usersOu = container(USERS_DN, 'organizationalUnit', 'ou', 'users');
  readonly groupsOu = container(GROUPS_DN, 'organizationalUnit', 'ou', 'groups');
  readonly users: Entry[];
  private readonly userById = new Map<string, Entry>();
  /** normalized value → entry (or entries, for the rare shared value) */
  private readonly index = { id: new Map<string, Entry | Entry[]>(), username: new Map<string, Entry | Entry[]>(), mail: new Map<string, Entry | Entry[]>() };
  private readonly allowedByApp = new Map<string, Set<string>>();
  private readonly groupsByApp = new Map<string, Entry[]>();

  constructor(
    readonly directory: Directory,
    readonly snapshot = directory.snapshot,
  ) {
    // One array of group DNs per distinct membership, shared by every user who has it.
    const memberOfCache = new Map<string, string[]>();
    const memberOf = (groups: Group[]): string[] => {
      const key = groups.map((g) => g.id).join(' ');
      let dns = memberOfCache.get(key);
      if (!dns) memberOfCache.set(key, (dns = groups.map(groupDn)));
      return dns;
    };
    this.users = snapshot.users.map((u) => userEntry(u, memberOf(directory.groupsOf(u.id))));
    for (const e of this.users) {
      this.userById.set(e.ref!, e);
      Tree.addToIndex(this.index.id, e.values('uid'), e);
      Tree.addToIndex(this.index.username, e.values('username'), e);
      Tree.addToIndex(this.index.mail, e.values('mail'), e);
    }
  }

  private static addToIndex(idx: Map<string, Entry | Entry[]>, values: readonly string[] | undefined, e: Entry): void {
    for (const v of values ?? []) {
      const hit = idx.get(v);
      if (hit === undefined) idx.set(v, e);
      else if (Array.isArray(hit)) hit.push(e);
      else idx.set(v, [hit, e]);
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
      case 'eq': {
        const which = INDEX_OF[f.attr];
        if (!which) return null;
        const hit = this.index[which].get(f.value);
        return hit === undefined ? [] : Array.isArray(hit) ? hit : [hit];
      }
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
