import type { Directory, Protocol } from '@hearth/directory';

/** Who a mail session belongs to, re-checked whenever the directory changes. */
export type Principal = { kind: 'user'; id: string; name: string } | { kind: 'app'; id: string; name: string };

export type MailLogin = { ok: true; principal: Principal; address: string } | { ok: false; reason: 'invalid_credentials' | 'throttled' | 'disabled' | 'not_allowed' | 'no_mailbox' };

/**
 * IMAP/POP3 login rules: an app's recvmail credentials open the mailbox that app owns;
 * a user (username or email) opens the mailbox at their email address if they own it,
 * otherwise the first mailbox they own. Throttling and audit happen in the directory.
 */
export async function mailLogin(directory: Directory, req: { login: string; password: string; protocol: Protocol; remote: string | null }): Promise<MailLogin> {
  if (directory.appByCredential('recvmail', req.login)) {
    const app = await directory.authenticateApp({ addon: 'recvmail', login: req.login, password: req.password, protocol: req.protocol, remote: req.remote });
    if (!app) return { ok: false, reason: 'invalid_credentials' };
    const owned = directory.mailboxesOf('app', app.id);
    const wanted = app.credentials.recvmail?.address?.toLowerCase();
    const mailbox = owned.find((m) => m.address === wanted) ?? owned[0];
    if (!mailbox) return { ok: false, reason: 'no_mailbox' };
    return { ok: true, principal: { kind: 'app', id: app.id, name: req.login }, address: mailbox.address };
  }
  const res = await directory.authenticate({ login: req.login, password: req.password, protocol: req.protocol, remote: req.remote });
  if (!res.ok) return { ok: false, reason: res.reason };
  const user = res.user;
  const byEmail = directory.mailbox(user.email);
  const mailbox = byEmail && byEmail.ownerType === 'user' && byEmail.ownerId === user.id ? byEmail : directory.mailboxesOf('user', user.id)[0];
  if (!mailbox) return { ok: false, reason: 'no_mailbox' };
  return { ok: true, principal: { kind: 'user', id: user.id, name: user.username }, address: mailbox.address };
}

/** Whether a logged-in principal may still use its mailbox (user active, app still installed). */
export function stillAllowed(directory: Directory, p: Principal, address: string): boolean {
  if (p.kind === 'user') {
    const u = directory.userById(p.id);
    if (!u || !u.active) return false;
  } else if (!directory.app(p.id)) return false;
  const m = directory.mailbox(address);
  return !!m && m.ownerType === p.kind && m.ownerId === p.id;
}
