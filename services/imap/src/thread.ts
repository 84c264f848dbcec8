import { sentDate, sortFields, sortItems, type SortItem } from './sort.ts';

/**
 * THREAD (RFC 5256 §3): ORDEREDSUBJECT and REFERENCES over the sort keys of sort.ts, with the
 * choices RFC 5256 leaves open made as Dovecot makes them (ties by UID, a dummy root with one
 * child promoted only once the roots are sorted). Pure.
 */

export interface ThreadTree {
  /** sequence number or UID; null for a dummy (a root whose message is not there) */
  num: number | null;
  children: ThreadTree[];
}

const NO_FIELDS = sortFields([]);

/** ORDEREDSUBJECT: messages of one base subject in a thread (sorted by sent date), threads by their first message's date. */
export function orderedSubjectThreads(items: SortItem[], uid: boolean): ThreadTree[] {
  const sorted = sortItems(items, [
    { key: 'SUBJECT', reverse: false },
    { key: 'DATE', reverse: false },
  ]);
  const threads: { date: number; first: number; tree: ThreadTree }[] = [];
  let subject: string | null = null;
  for (const m of sorted) {
    const num = uid ? m.uid : m.seq;
    const s = (m.fields ?? NO_FIELDS).subject;
    if (s === subject && threads.length) threads[threads.length - 1]!.tree.children.push({ num, children: [] });
    else threads.push({ date: sentDate(m), first: num, tree: { num, children: [] } });
    subject = s;
  }
  threads.sort((a, b) => a.date - b.date || a.first - b.first);
  return threads.map((t) => t.tree);
}

interface Container {
  item: SortItem | null;
  parent: Container | null;
  /** some container has this one as its parent (only such a one can be another's ancestor) */
  isParent: boolean;
  /** real messages under this one once dummies are gone (step 3) */
  children: Container[];
}

interface Root {
  c: Container;
  /** sent date and UID it sorts by (a dummy's: its oldest child's) */
  date: number;
  uid: number;
  ignore: boolean;
  /** the root whose subject-table entry replaced this one (step 5.B) */
  up: Root | null;
  replyOrForward: boolean;
}

const byDate = (a: { date: number; uid: number }, b: { date: number; uid: number }): number => a.date - b.date || a.uid - b.uid;

/** Children by sent date, then UID (step 6; a container's children are all real messages), sorted in place. */
const byItemDate = (a: Container, b: Container): number => sentDate(a.item!) - sentDate(b.item!) || a.item!.uid - b.item!.uid;

function sortedChildren(c: Container): Container[] {
  if (c.children.length > 1) c.children.sort(byItemDate);
  return c.children;
}

function isAncestor(node: Container, of: Container): boolean {
  for (let n: Container | null = of; n; n = n.parent) if (n === node) return true;
  return false;
}

/** RFC 5256 step 1.A: parent → child unless it would make a loop; an existing parent is kept. */
function link(parent: Container, child: Container): void {
  if (child.parent || child === parent || (child.isParent && isAncestor(child, parent))) return;
  child.parent = parent;
  parent.isParent = true;
}

/** RFC 5256 §3 REFERENCES steps 1 to 3, which REFS shares: the roots, each real message under its nearest real ancestor. */
function linkedRoots(items: readonly SortItem[]): Root[] {
  // (1) containers by msg-id, linked along References
  const byId = new Map<string, Container>();
  const all: Container[] = [];
  const container = (id: string): Container => {
    let c = byId.get(id);
    if (!c) {
      c = { item: null, parent: null, isParent: false, children: [] };
      byId.set(id, c);
      all.push(c);
    }
    return c;
  };
  for (const m of items) {
    const f = m.fields ?? NO_FIELDS;
    const taken = f.messageId === null ? undefined : byId.get(f.messageId);
    let own: Container;
    if (f.messageId !== null && !taken?.item) own = taken ?? container(f.messageId);
    else {
      // no Message-ID, or one another message already has: a container of its own
      own = { item: null, parent: null, isParent: false, children: [] };
      all.push(own);
    }
    own.item = m;
    let parent: Container | null = null;
    for (const id of f.references) {
      const c = container(id);
      if (parent) link(parent, c);
      parent = c;
    }
    // (1.B) the last reference is the parent; a different one set earlier is dropped
    if (own.parent !== parent) own.parent = null;
    if (parent) link(parent, own);
  }
  // (2) roots, (3) dummies gone: each message under its nearest real ancestor, else the top dummy
  const roots: Root[] = [];
  for (const c of all) {
    if (!c.parent) {
      roots.push({ c, date: 0, uid: 0, ignore: false, up: null, replyOrForward: false });
      continue;
    }
    if (!c.item) continue;
    let p = c.parent;
    while (!p.item && p.parent) p = p.parent;
    p.children.push(c);
  }
  return roots;
}

const treeOf = (c: Container, uid: boolean): ThreadTree => ({ num: c.item ? (uid ? c.item.uid : c.item.seq) : null, children: sortedChildren(c).map((x) => treeOf(x, uid)) });

/**
 * REFS (draft-ietf-morg-inthread, Dovecot's THREAD=REFS): the threads of REFERENCES without the
 * merging by subject, the threads ordered by their latest message (sent date), then by the
 * root's UID (a dummy root's counts as 0, as in Dovecot).
 */
export function refsThreads(items: readonly SortItem[], uid: boolean): ThreadTree[] {
  const latest = (c: Container): number => c.children.reduce((max, x) => Math.max(max, latest(x)), c.item ? sentDate(c.item) : -Infinity);
  return linkedRoots(items)
    .filter((r) => r.c.item || r.c.children.length)
    .map((r) => ({ r, date: latest(r.c), uid: r.c.item?.uid ?? 0 }))
    .sort(byDate)
    .map((e) => treeOf(e.r.c, uid));
}

/** REFERENCES (RFC 5256 §3, Jamie Zawinski's algorithm). `items` in UID order. */
export function referenceThreads(items: readonly SortItem[], uid: boolean): ThreadTree[] {
  const roots = linkedRoots(items);
  // (4) roots by sent date; a dummy with one child becomes that child
  const sortRoots = (): void => {
    for (const r of roots) {
      if (r.ignore) continue;
      if (!r.c.item) {
        const kids = sortedChildren(r.c);
        if (kids.length === 0) {
          r.ignore = true;
          continue;
        }
        if (kids.length === 1) r.c = kids[0]!;
        else {
          r.date = sentDate(kids[0]!.item!);
          r.uid = kids[0]!.item!.uid;
          continue;
        }
      }
      r.date = sentDate(r.c.item!);
      r.uid = r.c.item!.uid;
    }
    roots.sort(byDate);
  };
  sortRoots();
  // (5.A/B) the subject table: one root per base subject, preferring a dummy, then a non-reply
  const table = new Map<string, Root>();
  for (const r of roots) {
    if (r.ignore) continue;
    const f = (r.c.item ?? sortedChildren(r.c)[0]!.item!).fields ?? NO_FIELDS;
    if (!f.hasSubject || f.subject === '') continue;
    const held = table.get(f.subject);
    if (!held) table.set(f.subject, r);
    else if (held.c.item && (!r.c.item || (held.replyOrForward && !f.replyOrForward))) {
      held.up = r;
      table.set(f.subject, r);
    } else r.up = held;
    r.replyOrForward = f.replyOrForward;
  }
  // (5.C) roots of one subject merged into the table's
  let merged = false;
  for (const cur of [...roots]) {
    if (!cur.up || cur.ignore) continue;
    merged = true;
    let top = cur.up;
    while (top.up) top = top.up;
    if (!cur.c.item) {
      // both dummies: the children become siblings
      top.c.children.push(...cur.c.children);
      cur.c.children = [];
      cur.ignore = true;
    } else if (!top.c.item || (cur.replyOrForward && !top.replyOrForward)) {
      top.c.children.push(cur.c);
      cur.ignore = true;
    } else {
      // neither is a reply: both under a new dummy, which takes the table's place
      const dummy: Root = { c: { item: null, parent: null, isParent: true, children: [top.c, cur.c] }, date: 0, uid: 0, ignore: false, up: null, replyOrForward: false };
      top.up = dummy;
      top.ignore = true;
      cur.ignore = true;
      roots.push(dummy);
    }
  }
  if (merged) sortRoots();
  // (6) siblings by sent date, all the way down
  return roots.filter((r) => !r.ignore).map((r) => treeOf(r.c, uid));
}

/** The THREAD response's thread-list (RFC 5256 §4): a single child follows its parent, several are each parenthesized. */
export function formatThreads(threads: readonly ThreadTree[]): string {
  const under = (kids: readonly ThreadTree[]): string => {
    if (kids.length === 1) {
      const k = kids[0]!;
      return `${k.num}${k.children.length ? ` ${under(k.children)}` : ''}`;
    }
    return kids.map(node).join('');
  };
  const node = (t: ThreadTree): string => (t.children.length ? `(${t.num === null ? '' : `${t.num} `}${under(t.children)})` : `(${t.num})`);
  return threads.map(node).join('');
}
