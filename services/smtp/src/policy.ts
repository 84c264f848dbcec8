import type { Directory } from '@hearth/directory';
import type { App, User } from '@hearth/directory';
import type { Mailbox } from '@hearth/message';
import type { AuthorFields } from './message.ts';

/** Who an SMTP session is, once authenticated. */
export type Sender = { kind: 'app'; appId: string } | { kind: 'user'; userId: string };

export type Verdict = { ok: true } | { ok: false; reason: string };

/** The app's one sending address (credentials.sendmail.from). */
function appAddress(app: App): string | null {
  return app.credentials.sendmail?.from?.toLowerCase() ?? null;
}

/** A user's own addresses: their email and every mailbox they own. */
export function userAddresses(directory: Directory, user: User): Set<string> {
  const out = new Set([user.email.toLowerCase()]);
  for (const m of directory.mailboxesOf('user', user.id)) out.add(m.address.toLowerCase());
  return out;
}

/** Envelope MAIL FROM: an app only as its own address, a user only as one of theirs. */
export function checkEnvelopeSender(directory: Directory, sender: Sender, mailFrom: string): Verdict {
  const from = mailFrom.toLowerCase();
  if (from === '') return { ok: false, reason: '553 5.7.1 the null sender is not allowed on submission' };
  if (sender.kind === 'app') {
    const app = directory.app(sender.appId);
    if (!app || !app.credentials.sendmail) return { ok: false, reason: '535 5.7.8 app credentials no longer valid' };
    return from === appAddress(app) ? { ok: true } : { ok: false, reason: `553 5.7.1 sender <${mailFrom}> not owned by app ${app.id}; use <${appAddress(app)}>` };
  }
  const user = directory.userById(sender.userId);
  if (!user || !user.active) return { ok: false, reason: '535 5.7.8 account no longer valid' };
  return userAddresses(directory, user).has(from) ? { ok: true } : { ok: false, reason: `553 5.7.1 sender <${mailFrom}> not owned by user ${user.username}` };
}

/**
 * The author fields of the message exactly as it is stored and signed (so every reader sees
 * what was checked): one From field, at most one Sender (a single mailbox), and every address
 * in From, Sender, Resent-From and Resent-Sender owned as for MAIL FROM. An app's display name
 * is fixed unless its manifest says supportsDisplayName (then any name; the address still may not change).
 */
export function checkAuthorFields(directory: Directory, sender: Sender, fields: AuthorFields): Verdict {
  if (fields.from.length === 0) return { ok: false, reason: '550 5.7.1 message has no From header' };
  if (fields.from.length > 1) return { ok: false, reason: '550 5.7.1 message has more than one From header (RFC 5322 3.6)' };
  if (fields.from[0]!.length === 0) return { ok: false, reason: '550 5.7.1 From header has no address' };
  if (fields.sender.length > 1 || fields.sender.some((s) => s.length !== 1)) return { ok: false, reason: '550 5.7.1 Sender must be one header with one address (RFC 5322 3.6.2)' };
  const named: [string, Mailbox[]][] = [
    ...fields.from.map((m): [string, Mailbox[]] => ['From', m]),
    ...fields.sender.map((m): [string, Mailbox[]] => ['Sender', m]),
    ...fields.resentFrom.map((m): [string, Mailbox[]] => ['Resent-From', m]),
    ...fields.resentSender.map((m): [string, Mailbox[]] => ['Resent-Sender', m]),
  ];
  if (sender.kind === 'app') {
    const app = directory.app(sender.appId);
    if (!app) return { ok: false, reason: '535 5.7.8 app credentials no longer valid' };
    const own = appAddress(app);
    const supportsDisplayName = app.manifest.addons.sendmail?.supportsDisplayName === true;
    const fixedName = app.credentials.sendmail?.displayName ?? '';
    for (const [field, list] of named) {
      for (const m of list) {
        if (m.address !== own) return { ok: false, reason: `550 5.7.1 ${field} <${m.address}> not allowed for app ${app.id}; use <${own}>` };
        if (!supportsDisplayName && m.name !== '' && m.name !== fixedName) return { ok: false, reason: `550 5.7.1 app ${app.id} may not set a ${field} display name` };
      }
    }
    return { ok: true };
  }
  const user = directory.userById(sender.userId);
  if (!user) return { ok: false, reason: '535 5.7.8 account no longer valid' };
  const own = userAddresses(directory, user);
  for (const [field, list] of named) {
    for (const m of list) if (!own.has(m.address)) return { ok: false, reason: `550 5.7.1 ${field} <${m.address}> not owned by user ${user.username}` };
  }
  return { ok: true };
}
