import type { Directory } from '@hearth/directory';
import type { App, User } from '@hearth/directory';
import type { FromAddress } from './message.ts';

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
 * Header From: the same owned addresses. An app's display name is fixed unless its
 * manifest says supportsDisplayName (then any name; the address still may not change).
 */
export function checkHeaderFrom(directory: Directory, sender: Sender, from: FromAddress[]): Verdict {
  if (from.length === 0) return { ok: false, reason: '550 5.7.1 message has no From header' };
  if (sender.kind === 'app') {
    const app = directory.app(sender.appId);
    if (!app) return { ok: false, reason: '535 5.7.8 app credentials no longer valid' };
    const own = appAddress(app);
    const supportsDisplayName = app.manifest.addons.sendmail?.supportsDisplayName === true;
    const fixedName = app.credentials.sendmail?.displayName ?? '';
    for (const f of from) {
      if (f.address !== own) return { ok: false, reason: `550 5.7.1 From <${f.address}> not allowed for app ${app.id}; use <${own}>` };
      if (!supportsDisplayName && f.name !== '' && f.name !== fixedName) return { ok: false, reason: `550 5.7.1 app ${app.id} may not set a From display name` };
    }
    return { ok: true };
  }
  const user = directory.userById(sender.userId);
  if (!user) return { ok: false, reason: '535 5.7.8 account no longer valid' };
  const own = userAddresses(directory, user);
  for (const f of from) if (!own.has(f.address)) return { ok: false, reason: `550 5.7.1 From <${f.address}> not owned by user ${user.username}` };
  return { ok: true };
}
