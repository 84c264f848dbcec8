import * as client from 'openid-client';

/**
 * A relying party of services/oidc (the proxyAuth gateway, one client per app; the web
 * console): authorization code flow with PKCE, state and nonce. Provider metadata is
 * discovered lazily and re-discovered after a failure, so a daemon can start before the provider.
 */

const METADATA_TTL_MS = 5 * 60_000;

export interface SignInStart {
  url: URL;
  state: string;
  verifier: string;
  nonce: string;
}

export interface SignInResult {
  sub: string;
  idToken: string | null;
  /** the access token: the console looks up in the provider's storage which session issued it */
  accessToken: string;
}

export interface ClientCredentials {
  clientId: string;
  clientSecret: string;
}

/**
 * Server-to-server calls (discovery, token, keys) sent to `internalUrl` instead of the
 * public issuer, e.g. http://oidc:4000 between containers, with X-Forwarded-Host/Proto
 * naming the public issuer so the provider still describes itself by its public URLs.
 */
export function backChannelFetch(issuer: string, internalUrl: string): client.CustomFetch {
  const pub = new URL(issuer);
  const internal = new URL(internalUrl);
  return (url, options) => {
    const u = new URL(url);
    if (u.origin !== pub.origin) return fetch(url, options);
    const headers = { ...options.headers, 'x-forwarded-host': pub.host, 'x-forwarded-proto': pub.protocol.slice(0, -1) };
    return fetch(new URL(`${u.pathname}${u.search}`, internal), { ...options, headers });
  };
}

export class OidcRelyingParty {
  private metadata: { at: number; value: Promise<client.ServerMetadata> } | null = null;
  private readonly configs = new Map<string, { fingerprint: string; config: client.Configuration }>();
  private readonly fetch: client.CustomFetch | undefined;

  constructor(
    private readonly issuer: string,
    internalUrl: string | null = null,
    /** the name discovery requests carry (logs only) */
    private readonly clientName = 'hearth',
  ) {
    this.fetch = internalUrl ? backChannelFetch(issuer, internalUrl) : undefined;
  }

  private serverMetadata(): Promise<client.ServerMetadata> {
    if (this.metadata && Date.now() - this.metadata.at < METADATA_TTL_MS) return this.metadata.value;
    const value = client
      .discovery(new URL(this.issuer), this.clientName, undefined, undefined, {
        execute: this.insecure ? [client.allowInsecureRequests] : [],
        timeout: 10,
        ...(this.fetch ? { [client.customFetch]: this.fetch } : {}),
      })
      .then((c) => c.serverMetadata());
    const entry = { at: Date.now(), value };
    this.metadata = entry;
    value.catch(() => {
      if (this.metadata === entry) this.metadata = null;
    });
    return value;
  }

  private get insecure(): boolean {
    return this.issuer.startsWith('http:');
  }

  /** The client configuration for credentials cached under `name`; throws when the provider is unreachable. */
  async configFor(name: string, creds: ClientCredentials): Promise<client.Configuration> {
    const metadata = await this.serverMetadata();
    const fingerprint = `${metadata.issuer}\n${creds.clientId}\n${creds.clientSecret}`;
    const cached = this.configs.get(name);
    if (cached?.fingerprint === fingerprint) return cached.config;
    const config = new client.Configuration(metadata, creds.clientId, undefined, client.ClientSecretBasic(creds.clientSecret));
    config.timeout = 10;
    if (this.fetch) config[client.customFetch] = this.fetch;
    if (this.insecure) client.allowInsecureRequests(config);
    this.configs.set(name, { fingerprint, config });
    return config;
  }

  async start(config: client.Configuration, redirectUri: string): Promise<SignInStart> {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid profile email',
      response_type: 'code',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url, state, verifier, nonce };
  }

  /** Redeems the code from the callback URL; throws on any mismatch (state, nonce, PKCE, issuer, signature). */
  async finish(config: client.Configuration, callbackUrl: URL, checks: { state: string; verifier: string; nonce: string }): Promise<SignInResult> {
    const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
      pkceCodeVerifier: checks.verifier,
      expectedState: checks.state,
      expectedNonce: checks.nonce,
      idTokenExpected: true,
    });
    return { sub: tokens.claims()!.sub, idToken: tokens.id_token ?? null, accessToken: tokens.access_token };
  }

  /** The provider's end_session URL, or null when the provider is unreachable or has none. */
  async endSessionUrl(getConfig: () => Promise<client.Configuration>, postLogoutRedirectUri: string, idToken: string | null): Promise<URL | null> {
    try {
      const config = await getConfig();
      if (!config.serverMetadata().end_session_endpoint) return null;
      const params: Record<string, string> = { post_logout_redirect_uri: postLogoutRedirectUri, client_id: config.clientMetadata().client_id };
      if (idToken) params.id_token_hint = idToken;
      return client.buildEndSessionUrl(config, params);
    } catch {
      return null;
    }
  }
}
