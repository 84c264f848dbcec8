import type http from 'node:http';
import { ConfigError, type HearthConfig } from '@hearth/config';
import { DirectoryError, ValidationError, type Directory, type User } from '@hearth/directory';
import type { Logger } from '@hearth/log';
import type { OidcStorage } from '@hearth/oidc/storage';
import { ManifestError, ProvisionError } from '@hearth/provisioning';
import { CertError, EngineError } from '@hearth/runtime';
import { BackupError } from '@hearth/backup';
import type { BackupJobs } from './backups-page.ts';
import type { Form } from './http.ts';
import { page, type Html, type Shell } from './pages/layout.ts';
import type { ConsoleSessions, Session } from './session.ts';
import type { ConsoleSettings } from './settings.ts';

/** What every route handler gets, and what it answers. */

export interface Services {
  config: HearthConfig;
  directory: Directory;
  logger: Logger;
  settings: ConsoleSettings;
  sessions: ConsoleSessions;
  /** the provider's sessions, grants and tokens (the store or Redis, as services/oidc keeps them) */
  oidcStorage: OidcStorage;
  /** the running or last backup, restore, check or prune (the backups page) */
  backupJobs: BackupJobs;
}

export interface RequestContext extends Services {
  req: http.IncomingMessage;
  url: URL;
  /** the path's captured parts */
  params: string[];
  user: User;
  session: Session;
  /** the submitted form (POST only) */
  form: Form;
  remote: string | null;
}

export type Result = { status: number; html: string } | { redirect: string } | { status: number; json: unknown };

export interface Route {
  method: 'GET' | 'POST';
  path: RegExp;
  /** admin pages refuse everyone else with 403 before the handler runs */
  admin?: boolean;
  handler: (c: RequestContext) => Promise<Result> | Result;
}

/** Messages a redirect after a successful POST names by key (`?done=key`), so no text travels in URLs. */
export const NOTICES: Record<string, string> = {
  profile: 'Profile saved.',
  password: 'Password changed.',
  totp: 'Two-factor authentication is on.',
  'totp-off': 'Two-factor authentication is off.',
  'session-ended': 'The session was signed out.',
  'sessions-ended': 'Every other session was signed out.',
  'user-signed-out': 'The user is signed out everywhere: console, apps and single sign-on.',
  'user-created': 'User created.',
  'user-saved': 'User saved.',
  'user-disabled': 'User disabled; their sessions are ended.',
  'user-enabled': 'User enabled.',
  'user-deleted': 'User deleted.',
  'user-password': 'Password reset.',
  'user-2fa': 'Two-factor authentication and passkeys reset.',
  'group-created': 'Group created.',
  'group-deleted': 'Group deleted.',
  'member-added': 'Member added.',
  'member-removed': 'Member removed.',
  'app-installed': 'App installed.',
  'app-rotated': 'New credentials issued; an app with an image runs in a new container with them, any other must be restarted to read them.',
  'app-uninstalled': 'App uninstalled.',
  'app-start': 'App started.',
  'app-stop': 'App stopped.',
  'app-restart': 'App restarted.',
  'backup-started': 'The job has started; this page shows its state until it ends.',
  'cert-installed': 'Certificate installed; the app reads it when it starts.',
  'cert-installed-restarted': 'Certificate installed; the app was restarted to read it.',
  'keys-rotated': 'New signing keys made; tokens signed with the previous ones stay valid.',
  'mailbox-added': 'Mailbox added.',
  'mailbox-deleted': 'Mailbox deleted.',
  'queue-retry': 'Delivery will be attempted now.',
  'queue-deleted': 'Message removed from the queue.',
  'passkey-added': 'Passkey added.',
  'passkey-deleted': 'Passkey removed.',
  'ssh-key-added': 'SSH key added.',
  'ssh-key-deleted': 'SSH key deleted.',
};

/** Renders a page in the shell for the signed-in user. */
export function view(c: RequestContext, title: string, body: Html, o: { status?: number; current?: string; error?: string; script?: string } = {}): Result {
  const done = c.url.searchParams.get('done');
  const notice: Shell['notice'] = o.error ? { kind: 'error', text: o.error } : done && NOTICES[done] ? { kind: 'ok', text: NOTICES[done]! } : undefined;
  return { status: o.status ?? (o.error ? 400 : 200), html: page({ title, user: c.user, csrf: c.session.record.csrf, current: o.current ?? c.url.pathname, notice, script: o.script }, body) };
}

export function done(path: string, key: keyof typeof NOTICES): Result {
  return { redirect: `${path}${path.includes('?') ? '&' : '?'}done=${key}` };
}

/** A change the console itself refuses (confirming box unticked, acting on one's own account). */
export class Refusal extends Error {}

/** The user's message for a refused change: these errors are one clear line already; anything else is a bug and propagates. */
export function userError(err: unknown): string {
  if (err instanceof ValidationError || err instanceof DirectoryError || err instanceof ProvisionError || err instanceof ManifestError || err instanceof Refusal || err instanceof EngineError || err instanceof CertError || err instanceof BackupError || err instanceof ConfigError) return err.message;
  throw err;
}
