import type { Directory, User } from '@hearth/directory';
import type { Account, AccountClaims, FindAccount } from 'oidc-provider';
import type { ClientRegistry } from './clients.ts';

/** Cloudron's claim set: sub is the username; groups carries the user's group names. */
export function userClaims(directory: Directory, user: User): AccountClaims {
  const display = user.displayName.trim() || user.username;
  const space = display.indexOf(' ');
  return {
    sub: user.username,
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

/** Whether a user (by username) may still hold a session or tokens for this client. */
export function accountUsable(directory: Directory, clients: ClientRegistry, username: string, clientId: string | undefined): User | undefined {
  const user = directory.userByUsername(username);
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
      accountId: user.username,
      claims: () => {
        const current = directory.userById(user.id) ?? user;
        return userClaims(directory, current);
      },
    };
  };
}
