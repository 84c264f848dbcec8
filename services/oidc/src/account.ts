import type { Directory, User } from '@hearth/directory';
import type { Account, AccountClaims, FindAccount } from 'oidc-provider';
import type { ClientRegistry } from './clients.ts';

/**
 * Cloudron's claim set, except that sub is the user's immutable id: a user deleted and re-created
 * under the same name is another account to every app. The username is preferred_username; groups
 * carries the user's group names.
 */
export function userClaims(directory: Directory, user: User): AccountClaims {
  const display = user.displayName.trim() || user.username;
  const space = display.indexOf(' ');
  return {
    sub: user.id,
    preferred_username: user.username,
    name: display,
    given_name: space > 0 ? display.slice(0, space) : display,
    family_name: space > 0 ? display.slice(space + 1).trim() : '',
    locale: 'en-US',
    email: user.email,
    email_verified: true,
    groups: directory.groupsOf(user.id).map((g) => g.name),
  };
}

/**
 * Whether an account (the user's id, which sessions, grants and tokens carry) may still hold a session
 * or tokens for this client: the user exists, is active and is on the app's access list. Checked on every
 * use, so what a deleted user held dies even if the deletion happened while no provider was running.
 */
export function accountUsable(directory: Directory, clients: ClientRegistry, accountId: string, clientId: string | undefined): User | undefined {
  const user = directory.userById(accountId);
  if (!user || !user.active) return undefined;
  if (clientId === undefined) return user;
  const reg = clients.get(clientId);
  const app = reg && directory.app(reg.appId);
  return app && directory.canUseApp(app, user) ? user : undefined;
}

/**
 * Looked up on every session use, code exchange, refresh and userinfo call, against the
 * in-memory directory: a disabled or deleted user (or one removed from the app's access
 * list) stops working as soon as the directory reloads.
 */
export function findAccountIn(directory: Directory, clients: ClientRegistry): FindAccount {
  return (_ctx, sub, token): Account | undefined => {
    const clientId = token && 'clientId' in token && typeof token.clientId === 'string' ? token.clientId : undefined;
    const user = accountUsable(directory, clients, sub, clientId);
    if (!user) return undefined;
    return {
      accountId: user.id,
      claims: () => {
        const current = directory.userById(user.id) ?? user;
        return userClaims(directory, current);
      },
    };
  };
}

/** For logs and the audit trail: the username behind an account id (the id itself once the user is gone). */
export function accountName(directory: Directory, accountId: string | undefined | null): string | null {
  if (!accountId) return null;
  return directory.userById(accountId)?.username ?? accountId;
}
