import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { HearthConfig } from '@hearth/config';
import { check, domainSchema, DirectoryError, type AccessRestriction, type App, type Directory, type Manifest } from '@hearth/directory';
import { ProvisionError, type Addon, type AddonContext, type Credentials } from './addon.ts';
import { imageRefSchema, parseManifest } from './manifest.ts';
import { ADDONS, findAddon } from './registry.ts';

export const appIdSchema = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/, 'app id must be 1–64 characters of letters, digits, ".", "_" and "-"');

const upstreamSchema = z
  .string()
  .url('upstream must be a URL such as http://127.0.0.1:8000')
  .refine((u) => /^https?:\/\//.test(u), { message: 'upstream must be an http:// or https:// URL' });

export interface InstallRequest {
  manifestText: string;
  id: string;
  domain: string;
  /** e.g. ["users:alice,bob", "groups:staff"]; empty/undefined = everyone */
  access?: string[];
  upstream?: string;
  /** the Docker image to run (overrides the manifest's dockerImage; an update keeps the one installed) */
  image?: string;
}

/**
 * Runs the app's container (@hearth/runtime): called with the app as it will be stored and the
 * variables its addons give it, after provisioning and before the store is written; commit once
 * the app is stored, undo when a later step fails.
 */
export interface AppDeployer {
  deploy(app: App, env: [string, string][]): Promise<{ commit(): Promise<void>; undo(): Promise<void> }>;
}

/** "users:a,b groups:g" → ids, refusing names that do not exist. */
export function parseAccess(directory: Directory, specs: string[] | undefined): AccessRestriction | null {
  const parts = (specs ?? []).flatMap((s) => s.split(/\s+/)).filter(Boolean);
  if (parts.length === 0) return null;
  const access: AccessRestriction = { userIds: [], groupIds: [] };
  for (const part of parts) {
    const m = /^(users|groups):(.*)$/.exec(part);
    if (!m) throw new ProvisionError(`invalid --access "${part}": use users:a,b and/or groups:g`);
    for (const name of m[2]!.split(',').filter(Boolean)) {
      if (m[1] === 'users') {
        const u = directory.findUser(name);
        if (!u) throw new DirectoryError(`no such user: ${name}`, 'not_found');
        access.userIds.push(u.id);
      } else {
        const g = directory.groupByName(name);
        if (!g) throw new DirectoryError(`no such group: ${name}`, 'not_found');
        access.groupIds.push(g.id);
      }
    }
  }
  return access;
}

function addonsOf(manifest: Manifest): [Addon, Record<string, unknown>][] {
  const out: [Addon, Record<string, unknown>][] = [];
  for (const [name, rawOptions] of Object.entries(manifest.addons)) {
    const addon = findAddon(name);
    if (!addon) throw new ProvisionError(`unknown addon: ${name}`);
    const r = addon.optionsSchema.safeParse(rawOptions ?? {});
    if (!r.success) {
      const issue = r.error.issues[0]!;
      const where = issue.path.length ? `.${issue.path.join('.')}` : '';
      throw new ProvisionError(`invalid ${name} addon option${where}: ${issue.code === 'unrecognized_keys' ? `unknown option ${issue.keys.join(', ')}` : issue.message}`);
    }
    out.push([addon, r.data as Record<string, unknown>]);
  }
  return out.sort((a, b) => ADDONS.indexOf(a[0]) - ADDONS.indexOf(b[0]));
}

function context(config: HearthConfig, directory: Directory, app: Pick<App, 'id' | 'domain' | 'manifest'>, options: Record<string, unknown>): AddonContext {
  return { config, directory, app: { id: app.id, domain: app.domain, manifest: app.manifest, title: app.manifest.title ?? app.id }, options };
}

/**
 * Installs an app, or updates it when the id exists: validates everything first, provisions
 * each addon (keeping existing credentials), and writes the app in one transaction. If a
 * step fails, what this call created is removed again and the store is unchanged.
 */
export async function installApp(config: HearthConfig, directory: Directory, req: InstallRequest, deployer?: AppDeployer): Promise<App> {
  const id = check(appIdSchema, req.id);
  const domain = check(domainSchema, req.domain);
  const manifest = parseManifest(req.manifestText);
  const existing = directory.app(id);
  const image = req.image !== undefined ? check(imageRefSchema, req.image) : (manifest.dockerImage ?? existing?.manifest.dockerImage);
  if (image !== undefined) manifest.dockerImage = image;
  const addons = addonsOf(manifest);
  const other = directory.appByDomain(domain);
  if (other && other.id !== id) throw new ProvisionError(`domain ${domain} is already used by app ${other.id}`);
  if (existing) {
    for (const [addon] of addons) {
      if (addon.installOnly && !existing.manifest.addons[addon.name]) {
        throw new ProvisionError(`the ${addon.name} addon cannot be added to an installed app; uninstall and install it again`);
      }
    }
  }
  const access = req.access === undefined && existing ? existing.access : parseAccess(directory, req.access);
  // A running app with an httpPort listens (or is published) on the host's loopback: that is its upstream unless told otherwise.
  const ownPort = image !== undefined && manifest.httpPort ? `http://127.0.0.1:${manifest.httpPort}` : null;
  const upstream = req.upstream !== undefined ? check(upstreamSchema, req.upstream) : (existing?.upstream ?? ownPort);
  if (addons.some(([a]) => a.name === 'proxyAuth') && !upstream) throw new ProvisionError('the proxyAuth addon needs --upstream http://host:port (where the gateway sends requests)');

  const base = { id, domain, manifest };
  const credentials: Record<string, Credentials> = {};
  const created: [Addon, AddonContext, Credentials][] = [];
  const mailboxes: string[] = [];
  try {
    for (const [addon, options] of addons) {
      const ctx = context(config, directory, base, options);
      const before = existing?.credentials[addon.name];
      const creds = await addon.provision(ctx, before);
      if (!before) created.push([addon, ctx, creds]);
      credentials[addon.name] = creds;
      mailboxes.push(...(addon.mailboxes?.(ctx, creds) ?? []));
    }
    for (const box of mailboxes) {
      const holder = directory.mailbox(box);
      if (holder && !(holder.ownerType === 'app' && holder.ownerId === id)) throw new ProvisionError(`mailbox ${box} already belongs to someone else`);
    }
    const app: App = { id, domain, manifest, access, upstream, credentials, createdAt: existing?.createdAt ?? new Date().toISOString() };
    const deployment = deployer && image ? await deployer.deploy(app, envOf(config, directory, app)) : null;
    try {
      await directory.putApp(app, mailboxes);
    } catch (err) {
      await deployment?.undo();
      throw err;
    }
    await deployment?.commit();
    // Addons dropped by an update give back what they created.
    if (existing) {
      for (const [name, creds] of Object.entries(existing.credentials)) {
        const addon = findAddon(name);
        if (addon && !credentials[name]) await addon.deprovision?.(context(config, directory, existing, existing.manifest.addons[name] ?? {}), creds);
      }
    }
    return app;
  } catch (err) {
    const leftovers: string[] = [];
    for (const [addon, ctx, creds] of created.reverse()) {
      await addon.deprovision?.(ctx, creds).catch((e: Error) => leftovers.push(`${addon.name}: ${e.message}`));
    }
    if (leftovers.length && err instanceof Error) err.message += `; could not undo ${leftovers.join('; ')}`;
    throw err;
  }
}

/**
 * Puts an app back exactly as a backup recorded it: every addon provisioned with the recorded
 * credentials (databases, users and passwords made to match; its redis instance started),
 * then the record and its mailboxes written.
 */
export async function reinstallApp(config: HearthConfig, directory: Directory, app: App, mailboxes: string[]): Promise<void> {
  for (const [addon, options] of addonsOf(app.manifest)) {
    const recorded = app.credentials[addon.name];
    if (recorded) await addon.provision(context(config, directory, app, options), recorded);
  }
  await directory.putApp(app, mailboxes);
}

export function requireApp(directory: Directory, id: string): App {
  const app = directory.app(id);
  if (!app) throw new DirectoryError(`no such app: ${id}`, 'not_found');
  return app;
}

function envOf(config: HearthConfig, directory: Directory, app: App): [string, string][] {
  return addonsOf(app.manifest).flatMap(([addon, options]) => addon.env(context(config, directory, app, options), app.credentials[addon.name] ?? {}));
}

/** Every CLOUDRON_* variable the app gets, in the seed's names and order. */
export function appEnv(config: HearthConfig, directory: Directory, id: string): [string, string][] {
  return envOf(config, directory, requireApp(directory, id));
}

/** New secrets for every addon that has them, written in one transaction; the app's container is recreated with them. */
export async function rotateApp(config: HearthConfig, directory: Directory, id: string, deployer?: AppDeployer): Promise<App> {
  const app = requireApp(directory, id);
  const credentials = { ...app.credentials };
  const rotated: [Addon, AddonContext, Credentials][] = [];
  try {
    for (const [addon, options] of addonsOf(app.manifest)) {
      const current = credentials[addon.name];
      if (!addon.rotate || !current) continue;
      const ctx = context(config, directory, app, options);
      credentials[addon.name] = await addon.rotate(ctx, current);
      rotated.push([addon, ctx, current]);
    }
    const next = { ...app, credentials };
    const deployment = deployer && app.manifest.dockerImage ? await deployer.deploy(next, envOf(config, directory, next)) : null;
    try {
      await directory.putApp(next, directory.mailboxesOf('app', id).map((m) => m.address));
    } catch (err) {
      await deployment?.undo();
      throw err;
    }
    await deployment?.commit();
    return next;
  } catch (err) {
    // Servers that took a new password get the stored one back: re-provisioning with existing credentials sets them.
    for (const [addon, ctx, previous] of rotated.reverse()) await addon.provision(ctx, previous).catch(() => {});
    throw err;
  }
}

/** Removes the app, the mailboxes it owns, and everything its addons created. */
export async function uninstallApp(config: HearthConfig, directory: Directory, id: string): Promise<void> {
  const app = requireApp(directory, id);
  await directory.deleteApp(id);
  // Every addon gets its turn even when another's server is down; what could not be removed is reported at the end.
  const failures: string[] = [];
  for (const [addon, options] of addonsOf(app.manifest)) {
    const creds = app.credentials[addon.name] ?? {};
    try {
      await addon.deprovision?.(context(config, directory, app, options), creds);
    } catch (err) {
      failures.push(`${creds.username ? `${addon.name} name ${creds.username}: ` : ''}${(err as Error).message}`);
    }
  }
  fs.rmSync(path.join(config.dataDir, 'apps', id), { recursive: true, force: true });
  if (failures.length) throw new ProvisionError(`app ${id} is uninstalled, but some of its data is left behind: ${failures.join('; ')}`);
}
