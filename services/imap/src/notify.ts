import { DELIMITER, type Account, type Folder, type MailboxChange } from '@hearth/mailstore';
import { atom, untagged, type Value } from './imap-encoder.ts';
import { parseFetch } from './fetch.ts';
import { ParseError, type NotifyCommand, type NotifyGroupSpec, type Token } from './imap-parser.ts';

/**
 * IMAP NOTIFY (RFC 5465): which events a session asked for, for which mailboxes, and the watch
 * that turns changes of mailboxes other than the selected one into untagged STATUS and LIST
 * responses. Changes are learnt the way IDLE learns them: the Folder's 'change' event (inotify
 * plus its stat poll, so SMTP deliveries and other processes count) and the Account's 'mailbox'
 * event for names and subscriptions. The selected mailbox stays the session's business; it only
 * asks here which of its events are wanted.
 */

export type NotifyEvent =
  | 'MessageNew'
  | 'MessageExpunge'
  | 'FlagChange'
  | 'AnnotationChange'
  | 'MailboxName'
  | 'SubscriptionChange'
  | 'MailboxMetadataChange'
  | 'ServerMetadataChange';

const KNOWN_EVENTS: readonly NotifyEvent[] = [
  'MessageNew',
  'MessageExpunge',
  'FlagChange',
  'AnnotationChange',
  'MailboxName',
  'SubscriptionChange',
  'MailboxMetadataChange',
  'ServerMetadataChange',
];
/**
 * What Hearth delivers. AnnotationChange needs ANNOTATE, the metadata events METADATA (RFC 5465
 * §5 makes them required only with those extensions); none is offered, so they are BADEVENT.
 */
export const SUPPORTED_EVENTS: readonly NotifyEvent[] = ['MessageNew', 'MessageExpunge', 'FlagChange', 'MailboxName', 'SubscriptionChange'];
const MESSAGE_EVENTS = new Set<NotifyEvent>(['MessageNew', 'MessageExpunge', 'FlagChange', 'AnnotationChange']);
/** mailboxes one NOTIFY may watch beyond the selected one; more is NO [NOTIFICATIONOVERFLOW] */
export const MAX_WATCHED = 100;

type OtherFilter = 'INBOXES' | 'PERSONAL' | 'SUBSCRIBED' | 'SUBTREE' | 'MAILBOXES';

interface OtherGroup {
  filter: OtherFilter;
  /** SUBTREE/MAILBOXES: folder names as the store keeps them */
  names: string[];
  /** null: NONE, this group's mailboxes get no events even if a later group names them */
  events: ReadonlySet<NotifyEvent> | null;
}

export interface SelectedEvents {
  /** SELECTED: everything at once; SELECTED-DELAYED: expunges wait for a command that may carry them */
  immediate: boolean;
  events: ReadonlySet<NotifyEvent>;
  /** MessageNew's fetch-att list: a FETCH of these follows each new message's EXISTS */
  fetch: Token[] | null;
}

export interface NotifyConfig {
  status: boolean;
  /** null: no events for the selected mailbox (none asked for, or NOTIFY NONE) */
  selected: SelectedEvents | null;
  groups: OtherGroup[];
}

/** A NOTIFY the server cannot honour: tagged NO with this response code. */
export class NotifyRefused extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export const NOTIFY_NONE: NotifyConfig = { status: false, selected: null, groups: [] };

/**
 * The rules of RFC 5465 §3.1 and §5 over a parsed NOTIFY: an unknown or unsupported event is
 * NO [BADEVENT (the supported ones)]; one SELECTED/SELECTED-DELAYED group at most, with message
 * events only, MessageNew and MessageExpunge together and FlagChange only beside them (else BAD).
 * `folderName` turns a mailbox argument into the store's name (it refuses invalid ones).
 */
export function notifyConfig(cmd: NotifyCommand, folderName: (t: Token) => string): NotifyConfig {
  if (cmd.kind === 'none') return NOTIFY_NONE;
  let selected: SelectedEvents | null = null;
  let sawSelected = false;
  const groups: OtherGroup[] = [];
  for (const g of cmd.groups) {
    const events = g.events ? eventSet(g) : null;
    if (g.filter === 'SELECTED' || g.filter === 'SELECTED-DELAYED') {
      if (sawSelected) throw new ParseError('only one SELECTED or SELECTED-DELAYED group');
      sawSelected = true;
      if (!events) continue;
      for (const e of events) if (!MESSAGE_EVENTS.has(e)) throw new ParseError(`${e} is not a message event, so not for the selected mailbox`);
      if (events.has('MessageNew') !== events.has('MessageExpunge')) throw new ParseError('MessageNew and MessageExpunge go together');
      if (events.has('FlagChange') && !events.has('MessageNew')) throw new ParseError('FlagChange needs MessageNew and MessageExpunge');
      const fetch = g.events!.find((e) => e.fetch)?.fetch ?? null;
      // the fetch-att list is checked as FETCH would check it
      if (fetch) parseFetch([{ kind: 'list', items: fetch }]);
      selected = { immediate: g.filter === 'SELECTED', events, fetch };
      continue;
    }
    groups.push({ filter: g.filter, names: g.mailboxes.map(folderName), events });
  }
  return { status: cmd.status, selected, groups };
}

function eventSet(g: NotifyGroupSpec): Set<NotifyEvent> {
  const out = new Set<NotifyEvent>();
  for (const e of g.events!) {
    const known = KNOWN_EVENTS.find((k) => k.toLowerCase() === e.name.toLowerCase());
    if (!known || !SUPPORTED_EVENTS.includes(known)) throw new NotifyRefused(`Unsupported NOTIFY event ${e.name.slice(0, 40)}`, `BADEVENT (${SUPPORTED_EVENTS.join(' ')})`);
    out.add(known);
  }
  return out;
}

/** What a watched mailbox looked like when last reported (or taken in). */
interface Snapshot {
  messages: number;
  uidNext: number;
  uidValidity: number;
  highestModseq: number;
  expunges: number;
}

const snapshotOf = (f: Folder): Snapshot => ({ messages: f.messages.length, uidNext: f.uidNext, uidValidity: f.uidValidity, highestModseq: f.highestModseq, expunges: f.expunges });
const unseenOf = (f: Folder): number => f.messages.filter((m) => !m.flags.includes('\\Seen')).length;

interface Watched {
  folder: Folder;
  snapshot: Snapshot;
  stop: () => void;
}

/** What the notifier needs from its session. */
export interface NotifyHost {
  readonly account: Account;
  /** the selected mailbox's store name, if any */
  selectedName(): string | null;
  /** CONDSTORE is on: STATUS responses carry HIGHESTMODSEQ */
  condstore(): boolean;
  /** a store name as this client reads it (UTF-8 after ENABLE UTF8=ACCEPT) */
  shownName(name: string): Value;
  /** untagged responses to go out now if the session is idle, else after its current command */
  deliver(responses: Buffer[]): void;
}

/** One session's NOTIFY SET in force: the watches on the mailboxes its groups name. */
export class Notifier {
  private readonly watched = new Map<string, Watched>();
  private subscriptions = new Set<string>();
  private stopped = false;
  /** rewatches run one after another */
  private rewatching: Promise<void> = Promise.resolve();

  constructor(
    readonly config: NotifyConfig,
    private readonly host: NotifyHost,
    /** the session, which Account names as `by` on its own changes */
    private readonly self: object,
  ) {}

  /**
   * Takes in the mailboxes the groups name (NOTIFICATIONOVERFLOW beyond MAX_WATCHED) and starts
   * listening; returns the STATUS responses of NOTIFY SET STATUS (RFC 5465 §3.1), for every
   * mailbox with message events except the selected one.
   */
  async start(): Promise<Buffer[]> {
    this.subscriptions = new Set(await this.host.account.subscriptions());
    const names = await this.wantedNames();
    if (names.length > MAX_WATCHED) throw new NotifyRefused(`NOTIFY can watch at most ${MAX_WATCHED} mailboxes`, 'NOTIFICATIONOVERFLOW');
    for (const name of names) await this.watch(name);
    this.host.account.on('mailbox', this.onMailbox);
    if (!this.config.status) return [];
    const out: Buffer[] = [];
    for (const [name, w] of this.watched) if (name !== this.host.selectedName()) out.push(this.statusResponse(name, w.folder));
    return out;
  }

  stop(): void {
    this.stopped = true;
    this.host.account.off('mailbox', this.onMailbox);
    for (const w of this.watched.values()) w.stop();
    this.watched.clear();
  }

  /** After the client leaves a mailbox: its later changes count from what it looks like now. */
  resync(name: string): void {
    const w = this.watched.get(name);
    if (w) w.snapshot = snapshotOf(w.folder);
  }

  /**
   * Whether `event` in `mailbox` is to be reported: the first group naming the mailbox with that
   * event (or with NONE) decides. Message events of the selected mailbox are not asked here.
   */
  wants(event: NotifyEvent, mailbox: string): boolean {
    for (const g of this.config.groups) {
      if (!this.names(g, mailbox)) continue;
      if (!g.events) return false;
      if (g.events.has(event)) return true;
    }
    return false;
  }

  private names(g: OtherGroup, mailbox: string): boolean {
    switch (g.filter) {
      case 'PERSONAL':
        return true;
      case 'INBOXES':
        // SMTP delivers to INBOX; Sieve filing elsewhere is the user's own rule, not an inbox
        return mailbox === 'INBOX';
      case 'SUBSCRIBED':
        // as LIST shows it: INBOX always counts as subscribed
        return mailbox === 'INBOX' || this.subscriptions.has(mailbox);
      case 'SUBTREE':
        return g.names.some((n) => mailbox === n || mailbox.startsWith(n + DELIMITER));
      case 'MAILBOXES':
        return g.names.includes(mailbox);
    }
  }

  /** Existing selectable mailboxes some group wants a message event for. */
  private async wantedNames(): Promise<string[]> {
    const folders = await this.host.account.listFolders();
    return folders.filter((f) => !f.noSelect && [...MESSAGE_EVENTS].some((e) => this.wants(e, f.name))).map((f) => f.name);
  }

  private async watch(name: string): Promise<void> {
    if (this.watched.has(name) || this.stopped) return;
    const folder = await this.host.account.folder(name).catch(() => null);
    if (!folder || this.stopped || this.watched.has(name)) return;
    await folder.refresh().catch(() => {});
    const onChange = (): void => this.folderChanged(name);
    folder.on('change', onChange);
    const unwatch = folder.watch();
    this.watched.set(name, {
      folder,
      snapshot: snapshotOf(folder),
      stop: () => {
        folder.off('change', onChange);
        unwatch();
      },
    });
  }

  /** Mailboxes came, went or were (un)subscribed: watch what the groups now name. */
  private rewatch(): void {
    this.rewatching = this.rewatching.then(async () => {
      if (this.stopped) return;
      const names = new Set(await this.wantedNames().catch(() => [...this.watched.keys()]));
      for (const [name, w] of this.watched) {
        if (names.has(name) && !w.folder.gone) continue;
        w.stop();
        this.watched.delete(name);
      }
      for (const name of names) if (this.watched.size < MAX_WATCHED) await this.watch(name);
    });
  }

  /** RFC 5465 §5: a mailbox other than the selected one says what changed as a STATUS response. */
  private folderChanged(name: string): void {
    const w = this.watched.get(name);
    if (!w || this.stopped) return;
    const before = w.snapshot;
    const now = snapshotOf(w.folder);
    w.snapshot = now;
    if (w.folder.gone || name === this.host.selectedName()) return;
    const added = now.uidNext !== before.uidNext || now.uidValidity !== before.uidValidity;
    const expunged = now.expunges !== before.expunges;
    const flagged = !added && !expunged && now.highestModseq !== before.highestModseq;
    if ((added && this.wants('MessageNew', name)) || (expunged && this.wants('MessageExpunge', name)) || (flagged && this.wants('FlagChange', name))) {
      this.host.deliver([this.statusResponse(name, w.folder)]);
    }
  }

  /**
   * MESSAGES UIDNEXT UIDVALIDITY UNSEEN, HIGHESTMODSEQ once CONDSTORE is on: what changed and
   * whether the client's UIDs still hold (Dovecot sends the same four).
   */
  private statusResponse(name: string, f: Folder): Buffer {
    const items: Value[] = [atom('MESSAGES'), f.messages.length, atom('UIDNEXT'), f.uidNext, atom('UIDVALIDITY'), f.uidValidity, atom('UNSEEN'), unseenOf(f)];
    if (this.host.condstore()) items.push(atom('HIGHESTMODSEQ'), f.highestModseq);
    return untagged(atom('STATUS'), this.host.shownName(name), items);
  }

  /** RFC 5465 §5: names and subscriptions change as LIST responses (the client's own changes it knows already). */
  private onMailbox = (change: MailboxChange): void => {
    if (this.stopped) return;
    // SUBSCRIBED names a mailbox before its unsubscription and after its subscription: either tells
    const subscriptionWanted = this.wants('SubscriptionChange', change.name);
    if (change.kind === 'subscribed') this.subscriptions.add(change.name);
    else if (change.kind === 'unsubscribed') this.subscriptions.delete(change.name);
    this.rewatch();
    if (change.by === this.self) return;
    const list = (attrs: string[], name: string, extra: Value[] = []): Buffer => untagged(atom('LIST'), attrs.map(atom), DELIMITER, this.host.shownName(name), ...extra);
    let response: Buffer | null = null;
    if (change.kind === 'created' && this.wants('MailboxName', change.name)) response = list([], change.name);
    else if (change.kind === 'deleted' && this.wants('MailboxName', change.name)) response = list(['\\NonExistent'], change.name);
    else if (change.kind === 'renamed' && (this.wants('MailboxName', change.name) || this.wants('MailboxName', change.oldName)))
      // RFC 5258 §3 OLDNAME extended data item
      response = list([], change.name, [['OLDNAME', [this.host.shownName(change.oldName)]]]);
    else if (change.kind === 'subscribed' && (subscriptionWanted || this.wants('SubscriptionChange', change.name))) response = list(['\\Subscribed'], change.name);
    else if (change.kind === 'unsubscribed' && subscriptionWanted) response = list([], change.name);
    if (response) this.host.deliver([response]);
  };
}
