import type { Grant, Provider } from 'oidc-provider';

/** Everything an installed (first-party) app may be granted without asking the user. */
export const FIRST_PARTY_SCOPES = ['openid', 'profile', 'email', 'groups', 'offline_access'];

/**
 * The grant that stands in for consent: installed apps are first-party, so the user's
 * sign-in is their consent. Reuses the session's grant for the client when there is one.
 */
export async function firstPartyGrant(provider: Provider, accountId: string, clientId: string, existingGrantId: string | undefined): Promise<Grant> {
  let grant = existingGrantId ? await provider.Grant.find(existingGrantId) : undefined;
  if (!grant || grant.accountId !== accountId || grant.clientId !== clientId) {
    grant = new provider.Grant({ accountId, clientId });
  }
  grant.addOIDCScope(FIRST_PARTY_SCOPES.join(' '));
  await grant.save();
  return grant;
}
