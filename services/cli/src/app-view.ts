import type { HearthConfig } from '@hearth/config';
import type { AccessRestriction, App, Directory } from '@hearth/directory';
import { clientsFromApps } from '@hearth/oidc/clients';
import { publicCredentials } from '@hearth/provisioning';

/** An access list as `app install --access` takes it: "users:a,b groups:g", or "everyone". */
export function accessView(d: Directory, access: AccessRestriction | null): string {
  if (!access) return 'everyone';
  const users = access.userIds.map((id) => d.userById(id)?.username ?? id);
  const groups = access.groupIds.map((id) => d.groupById(id)?.name ?? id);
  return [users.length ? `users:${users.join(',')}` : '', groups.length ? `groups:${groups.join(',')}` : ''].filter(Boolean).join(' ');
}

/**
 * Everything `app install` stored about an app, secrets left out (only `app env` prints those): each
 * addon's manifest options and public credentials, and for the OIDC clients the redirect URIs the
 * provider registers, exactly as it derives them.
 */
export function appView(config: HearthConfig, d: Directory, a: App): Record<string, unknown> {
  const clients = [...clientsFromApps([a], config.ports.proxyauth).values()];
  const addons = Object.fromEntries(
    Object.entries(a.manifest.addons).map(([name, options]) => {
      const client = clients.find((c) => c.addon === name)?.metadata;
      const registration = client && {
        redirectUris: client.redirect_uris ?? [],
        postLogoutRedirectUris: client.post_logout_redirect_uris ?? [],
        ...(client.backchannel_logout_uri ? { backchannelLogoutUri: client.backchannel_logout_uri } : {}),
        idTokenSigningAlg: client.id_token_signed_response_alg,
      };
      return [name, { options, ...publicCredentials(a.credentials[name] ?? {}), ...registration }];
    }),
  );
  return {
    id: a.id,
    domain: a.domain,
    title: a.manifest.title ?? '',
    version: a.manifest.version ?? '',
    manifestId: a.manifest.id ?? '',
    httpPort: a.manifest.httpPort ?? null,
    access: accessView(d, a.access),
    upstream: a.upstream,
    image: a.manifest.dockerImage ?? null,
    addons,
    mailboxes: d.mailboxesOf('app', a.id).map((m) => m.address),
    createdAt: a.createdAt,
    manifest: a.manifest,
  };
}

/** The view as "key: value" lines: nested objects as dotted keys, lists comma-separated; the manifest is in --json only. */
export function appFields(view: Record<string, unknown>): [string, unknown][] {
  const fields: [string, unknown][] = [];
  const walk = (prefix: string, value: unknown): void => {
    if (Array.isArray(value)) fields.push([prefix, value.map(String).join(', ')]);
    else if (value && typeof value === 'object') {
      const entries = Object.entries(value);
      if (entries.length === 0) fields.push([prefix, '(none)']);
      for (const [k, v] of entries) walk(`${prefix}.${k}`, v);
    } else fields.push([prefix, value]);
  };
  for (const [k, v] of Object.entries(view)) if (k !== 'manifest') walk(k, v);
  return fields;
}
