/**
 * The OIDC bench's reference: a bare node-oidc-provider, the library services/oidc is built on, in the
 * same version, configured the way Hearth configures it where that changes the work per request
 * (claims, scopes, PKCE, token lifetimes, rotating refresh tokens, opaque access tokens, RS256 and
 * EdDSA keys of the same types, client_secret_basic) but with the library's in-memory adapter (made large enough), accounts
 * from a fixed table and no directory, audit, store or middleware of Hearth's. The ratio of the two is
 * then Hearth's own cost on top of the library. Sign-in is a stand-in: the interaction finishes at once
 * for the account named in login_hint (the bench only times code exchange, refresh and userinfo).
 *
 * Run by oidc.bench.ts: node --import tsx reference-provider.ts, with OIDC_REFERENCE_SETUP (JSON:
 * issuer, host, port, clients, accounts) in the environment; prints "listening" when ready.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import Provider, { type AccountClaims, type ClientMetadata, type Configuration, type InteractionResults } from 'oidc-provider';
import { z } from 'zod';
import { firstPartyGrant } from '../src/grants.ts';
import { offlineAccessConsent } from '../src/http.ts';
import { signingKeys } from '../src/keys.ts';
import { CLAIMS, refreshTokenForOfflineAccess, SCOPES, TTL } from '../src/provider.ts';

const setup = z
  .object({
    issuer: z.string().url(),
    host: z.string(),
    port: z.number().int(),
    clients: z.array(z.object({ client_id: z.string(), client_secret: z.string(), redirect_uris: z.array(z.string()), id_token_signed_response_alg: z.enum(['RS256', 'EdDSA']) })),
    /** claims by account id */
    accounts: z.record(z.string(), z.record(z.string(), z.unknown())),
  })
  .parse(JSON.parse(process.env.OIDC_REFERENCE_SETUP ?? 'null'));

const clients: ClientMetadata[] = setup.clients.map((c) => ({
  ...c,
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
}));

const configuration: Configuration = {
  clients,
  findAccount: (_ctx, sub) => {
    const claims = setup.accounts[sub];
    return claims ? { accountId: sub, claims: () => ({ ...claims, sub }) as AccountClaims } : undefined;
  },
  claims: CLAIMS,
  scopes: [...SCOPES],
  conformIdTokenClaims: false,
  routes: { authorization: '/auth', token: '/token', userinfo: '/me', jwks: '/jwks' },
  jwks: { keys: signingKeys() as never },
  cookies: { keys: [randomBytes(32).toString('base64url')], long: { signed: true, httpOnly: true, sameSite: 'lax' }, short: { signed: true, httpOnly: true, sameSite: 'lax' } },
  pkce: { required: () => true },
  ttl: { ...TTL },
  enabledJWA: { idTokenSigningAlgValues: ['RS256', 'EdDSA'], userinfoSigningAlgValues: ['RS256', 'EdDSA'] },
  features: { devInteractions: { enabled: false }, userinfo: { enabled: true } },
  rotateRefreshToken: true,
  issueRefreshToken: refreshTokenForOfflineAccess,
  // Consent is skipped as in Hearth: the same first-party grant.
  loadExistingGrant: (ctx) => {
    const { session, client, provider } = ctx.oidc;
    return session?.accountId && client ? firstPartyGrant(provider, session.accountId, client.clientId, session.grantIdFor(client.clientId)) : undefined;
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
};

// The library's own in-memory adapter keeps 1,000 entries (an LRU): more than that are in use in a round.
const lru = (await import('oidc-provider/lib/helpers/lru.js' as string)) as { default: new (o: { maxSize: number }) => unknown };
const memory = (await import('oidc-provider/lib/adapters/memory_adapter.js' as string)) as { setStorage: (store: unknown) => void };
memory.setStorage(new lru.default({ maxSize: 1_000_000 }));

const provider = new Provider(setup.issuer, configuration);
// As in Hearth: first-party apps get offline_access without asking (prompt=consent added, approved silently).
provider.use(offlineAccessConsent);
const callback = provider.callback();

const server = http.createServer((req, res) => {
  if (!req.url?.startsWith('/interaction/')) return void callback(req, res);
  (async () => {
    const details = await provider.interactionDetails(req, res);
    const accountId = details.session?.accountId ?? String(details.params.login_hint ?? '');
    if (!setup.accounts[accountId]) throw new Error(`unknown login_hint ${accountId}`);
    // As Hearth does: sign-in, and the silent first-party consent that offline_access asks for.
    const grant = await firstPartyGrant(provider, accountId, String(details.params.client_id), details.grantId);
    const result: InteractionResults = { consent: { grantId: grant.jti } };
    if (details.prompt.name === 'login') result.login = { accountId, amr: ['pwd'], remember: true };
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  })().catch((err: Error) => {
    res.writeHead(400, { 'Content-Type': 'text/plain' });
    res.end(err.message);
  });
});
server.listen(setup.port, setup.host, () => process.stdout.write('listening\n'));
