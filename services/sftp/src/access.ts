import type { App, Directory, User } from '@hearth/directory';

/**
 * Who reaches which app's files. As on Cloudron, the SSH user name names both: `<user>@<app domain>`
 * (the user part may itself be an e-mail address; the app part is after the last "@"; an app id is
 * accepted too). Only apps whose manifest has `localstorage.ftp` are reachable, and only by users
 * on the app's access list, and admins.
 */
export function parseLogin(sshUser: string): { login: string; appRef: string } | null {
  const at = sshUser.lastIndexOf('@');
  if (at < 1 || at === sshUser.length - 1 || sshUser.length > 320) return null;
  return { login: sshUser.slice(0, at), appRef: sshUser.slice(at + 1).toLowerCase() };
}

export interface FtpApp {
  app: App;
  /** files are written as this uid (and gid) */
  uid: number;
}

export function ftpApp(directory: Directory, appRef: string): FtpApp | null {
  const app = directory.appByDomain(appRef) ?? directory.app(appRef);
  const ftp = app?.manifest.addons.localstorage?.ftp as { uid?: unknown } | undefined;
  if (!app || !ftp || typeof ftp.uid !== 'number') return null;
  return { app, uid: ftp.uid };
}

export function isAdmin(user: User): boolean {
  return user.role === 'admin' || user.role === 'owner';
}

/** Still allowed now: active, and an admin or on the access list of an app that still has ftp. */
export function mayUse(directory: Directory, userId: string, appId: string): FtpApp | null {
  const user = directory.userById(userId);
  const target = ftpApp(directory, appId);
  if (!user || !user.active || !target) return null;
  return isAdmin(user) || directory.canUseApp(target.app, user) ? target : null;
}
