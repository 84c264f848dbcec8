import type { z } from 'zod';
import type { HearthConfig } from '@hearth/config';
import type { Directory, Manifest } from '@hearth/directory';

export type Credentials = Record<string, string>;

/** Passwords, client and cookie secrets: only `app env` prints them. */
const SECRET_FIELD = /password|secret/i;

/** An addon's stored credentials without the secret fields (usernames, DNs, client ids, hosts stay). */
export function publicCredentials(creds: Credentials): Credentials {
  return Object.fromEntries(Object.entries(creds).filter(([k]) => !SECRET_FIELD.test(k)));
}

export interface AddonContext {
  config: HearthConfig;
  directory: Directory;
  app: { id: string; domain: string; manifest: Manifest; title: string };
  /** the addon's options from the manifest, validated by optionsSchema */
  options: Record<string, unknown>;
}

/**
 * One addon's provisioning. `provision` is given the credentials the app already has
 * (re-install keeps them); `rotate` makes new ones; `deprovision` removes whatever the
 * addon created outside the store. All three must leave nothing half-done on failure.
 */
export interface Addon {
  name: string;
  optionsSchema: z.ZodType;
  /** cannot be added to an app that is already installed (the seed's "sso" rule) */
  installOnly?: boolean;
  provision(ctx: AddonContext, existing: Credentials | undefined): Promise<Credentials>;
  rotate?(ctx: AddonContext, existing: Credentials): Promise<Credentials>;
  deprovision?(ctx: AddonContext, existing: Credentials): Promise<void>;
  /** CLOUDRON_* variables, in the seed's order */
  env(ctx: AddonContext, creds: Credentials): [string, string][];
  /** mailbox addresses the app owns through this addon */
  mailboxes?(ctx: AddonContext, creds: Credentials): string[];
}

export class ProvisionError extends Error {}
