export { clearCookie, readCookie, serializeCookie, withoutCookies, type CookieOptions } from './cookies.ts';
export { backChannelFetch, OidcRelyingParty, type ClientCredentials, type SignInResult, type SignInStart } from './oidc-client.ts';
export { loadKeyFile, newSessionId, seal, signSessionId, subKey, unseal, verifySessionCookie } from './sealed.ts';
export { escapeHtml } from './html.ts';
export { sessionExpired, sessionTtlSeconds, type SessionLimits, type SessionTimes } from './session-limits.ts';
export { authenticationOptions, PasskeyError, registrationOptions, verifyAssertion, verifyRegistration, type RelyingParty } from './passkeys.ts';
/** The browser side of the passkey forms, served by each daemon that shows them. */
export const PASSKEYS_SCRIPT = new URL('../static/passkeys.js', import.meta.url).pathname;
