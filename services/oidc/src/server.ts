import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HearthConfig } from '@hearth/config';
import type { Directory } from '@hearth/directory';
import type { Logger } from '@hearth/log';
import { instrumentHttp } from '@hearth/metrics';
import type { default as Provider } from 'oidc-provider';
import { accountName } from './account.ts';
import { openOidcStorage, type OidcStorage } from './storage.ts';
import { ClientRegistry } from './clients.ts';
import { oidcEndpoints } from './endpoints.ts';
import { clientAddress, errorHandler, limitParams, offlineAccessConsent, securityHeaders } from './http.ts';
import { interactionRoutes } from './interactions.ts';
import { loadOrCreateKeys, readKeys, type KeyMaterial } from './keys.ts';
import { countGrant, oidcRoute } from './metrics.ts';
import { buildProvider, TTL } from './provider.ts';
import { notifyApps, sessionEndRoute } from './session-end.ts';
import { recordSessionUse, revokeAccount } from './sessions.ts';

export interface OidcContext {
  config: HearthConfig;
  directory: Directory;
  logger: Logger;
}

export interface OidcOptions {
  /** overrides config.ports.oidc (tests: 0) */
  port?: number;
  /** outgoing HTTP for back-channel logout (tests point it at a local server) */
  fetch?: typeof fetch;
  /** how often to look for rotated keys */
  keyPollMs?: number;
}

export interface RunningOidc {
  endpoints: string[];
  port: number;
  close(): Promise<void>;
}

export async function startOidc(ctx: OidcContext, opts: OidcOptions = {}): Promise<RunningOidc> {
  const { config, directory, logger } = ctx;
  if (new URL(config.oidcIssuer).pathname !== '/') throw new Error(`HEARTH_OIDC_ISSUER must be an origin without a path (got ${config.oidcIssuer})`);
  const storage: OidcStorage = await openOidcStorage(config, directory.store);
  const clients = new ClientRegistry(directory, config);
  let keys: KeyMaterial = await loadOrCreateKeys(directory.store);

  const build = (k: KeyMaterial): { provider: Provider; handler: ReturnType<Provider['callback']> } => {
    const provider = buildProvider({ config, directory, clients, storage, keys: k, logger, fetch: opts.fetch });
    const appId = (clientId: unknown): string | null => (typeof clientId === 'string' ? (clients.get(clientId)?.appId ?? null) : null);
    provider.on('server_error', (c, err) => logger.error({ err, path: c.path }, 'oidc server error'));
    provider.on('grant.success', (c) => {
      countGrant(c.oidc.params?.grant_type, null);
      void directory.audit({
        username: accountName(directory, c.oidc.account?.accountId),
        protocol: 'oidc',
        appId: appId(c.oidc.client?.clientId),
        remote: c.ip || null,
        ok: true,
        detail: `token issued (${String(c.oidc.params?.grant_type)})`,
      });
    });
    provider.on('grant.error', (c, err) => {
      countGrant(c.oidc?.params?.grant_type, (err as { error?: string }).error ?? 'server_error');
      void directory.audit({
        username: accountName(directory, c.oidc?.account?.accountId),
        protocol: 'oidc',
        appId: appId(c.oidc?.client?.clientId),
        remote: c.ip || null,
        ok: false,
        detail: `token refused (${(err as { error?: string }).error ?? err.message})`,
      });
    });
    // Where each session is used from, for the console's sessions page.
    provider.on('authorization.success', (c) => {
      const session = c.oidc.session;
      if (!session?.accountId || !session.uid) return;
      const info = { uid: session.uid, accountId: session.accountId, remote: c.ip || null, userAgent: String(c.get('user-agent') ?? ''), lastSeen: Date.now() };
      void recordSessionUse(storage, info, TTL.Session).catch((err: unknown) => logger.warn({ err }, 'could not record where a session was used'));
    });
    provider.on('end_session.success', (c) => {
      void directory.audit({ username: accountName(directory, c.oidc.session?.accountId), protocol: 'oidc', appId: appId(c.oidc.client?.clientId), remote: c.ip || null, ok: true, detail: 'logout' });
    });
    provider.on('backchannel.error', (_c, err, client) => logger.warn({ err: err.message, clientId: client.clientId }, 'back-channel logout failed'));
    // Our middleware runs inside the provider's own Koa app, ahead of its router (provider.use
    // inserts there): one Koa pass per request.
    provider.silent = true;
    provider.use(errorHandler(logger));
    provider.use(clientAddress(config));
    provider.use(securityHeaders(config));
    provider.use(limitParams);
    provider.use(offlineAccessConsent);
    provider.use(sessionEndRoute({ provider: () => provider, storage, clients, directory, logger }));
    provider.use(
      interactionRoutes({
        provider: () => provider,
        directory,
        clients,
        storage,
        keys: () => k.cookieKeys,
        logger,
        relyingParty: config.webauthnRpId ? { id: config.webauthnRpId, name: 'Hearth', origin: new URL(config.oidcIssuer).origin } : null,
      }),
    );
    return { provider, handler: provider.callback() };
  };
  let current = build(keys);
  if (!config.webauthnRpId) logger.info({ issuer: config.oidcIssuer }, 'passkeys are off: the issuer is an IP address and a passkey needs a host name; set HEARTH_OIDC_ISSUER to a name (and HEARTH_WEBAUTHN_RP_ID to a domain the console shares)');

  // A disabled or deleted user's sessions, grants and tokens go at once (findAccount already
  // refuses them; this also drops what is stored), and apps with a back-channel logout URI
  // are told to end their own sessions for that user.
  // Keyed by user id (the accountId of everything stored); the names are for the log.
  const activeUsers = (d: Directory): Map<string, string> => new Map(d.users().filter((u) => u.active).map((u) => [u.id, u.username]));
  let active = activeUsers(directory);
  const revoking = new Set<Promise<void>>();
  const revoke = async (accountId: string, username: string): Promise<void> => {
    try {
      const provider = current.provider;
      for (const session of await storage.findAll('Session', 'accountId', accountId)) {
        // Every replica (and worker) sees the change; only the first to claim a session notifies its apps.
        if ((await directory.store.kvIncr('oidc:backchannel-claimed', String(session.uid), 1, 3600)) !== 1) continue;
        await notifyApps(provider, logger, accountId, session);
      }
      await revokeAccount(storage, accountId);
      logger.info({ username, accountId }, 'revoked sessions and tokens of a disabled or deleted user');
    } catch (err) {
      logger.warn({ err, username, accountId }, 'could not revoke sessions and tokens');
    }
  };
  const stopWatching = directory.onChange((d) => {
    const now = activeUsers(d);
    for (const [id, name] of active) {
      if (now.has(id)) continue;
      const p = revoke(id, name).finally(() => revoking.delete(p));
      revoking.add(p);
    }
    active = now;
  });

  // Rotation (hearth oidc rotate-keys) writes new keys to the store; every replica picks them up.
  const poll = setInterval(() => {
    readKeys(directory.store)
      .then((k) => {
        if (k && k.version !== keys.version) {
          keys = k;
          current = build(k);
          logger.info({ version: k.version }, 'signing keys rotated');
        }
      })
      .catch((err) => logger.warn({ err }, 'could not check for rotated keys'));
  }, opts.keyPollMs ?? 2000);
  poll.unref();

  const server = http.createServer({ maxHeaderSize: 64 * 1024 }, (req, res) => void current.handler(req, res));
  instrumentHttp(server, oidcRoute);
  server.headersTimeout = 15_000;
  server.requestTimeout = 30_000;
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? config.ports.oidc, config.listen, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const ep = oidcEndpoints(config.oidcIssuer);
  return {
    endpoints: [`${ep.issuer} (listening on http://${config.listen}:${port})`, ep.discovery],
    port,
    close: async () => {
      clearInterval(poll);
      stopWatching();
      await Promise.all(revoking);
      clients.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await storage.close();
    },
  };
}
