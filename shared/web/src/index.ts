export { clearCookie, readCookie, serializeCookie, withoutCookies, type CookieOptions } from './cookies.ts';
export { backChannelFetch, OidcRelyingParty, type ClientCredentials, type SignInResult, type SignInStart } from './oidc-client.ts';
export { loadKeyFile, newSessionId, seal, signSessionId, subKey, unseal, verifySessionCookie } from './sealed.ts';
export { escapeHtml } from './html.ts';
export { sessionExpired, sessionTtlSeconds, type SessionLimits, type SessionTimes } from './session-limits.ts';
