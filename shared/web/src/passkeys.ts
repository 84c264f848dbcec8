import type {
  AuthenticationResponseJSON,
  AuthenticatorTransportFuture,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { DirectoryStore, Passkey, User } from '@hearth/directory';
import { z } from 'zod';

/**
 * WebAuthn ceremonies (passkeys) over @simplewebauthn/server: registration in the console,
 * assertion at the OIDC login page. Challenges are single-use and kept by the caller
 * (console session, OIDC interaction); credentials live in the directory store.
 */

export interface RelyingParty {
  /** the RP ID: the host name (or a registrable suffix of it) shared by the console and the provider */
  id: string;
  name: string;
  /** the origin the browser is on for this ceremony */
  origin: string;
}

export class PasskeyError extends Error {}

/** The WebAuthn library (with its ASN.1 and CBOR parsers, ~25 MiB resident) is loaded at the first ceremony, not by every daemon at start. */
const webauthn = (): Promise<typeof import('@simplewebauthn/server')> => import('@simplewebauthn/server');

/** The browser's PublicKeyCredential.toJSON(), checked for shape before the library reads it. */
const credentialJson = z.object({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,1400}$/),
  rawId: z.string().max(1400),
  type: z.literal('public-key'),
  response: z.record(z.string(), z.unknown()),
  clientExtensionResults: z.record(z.string(), z.unknown()).default({}),
  authenticatorAttachment: z.string().optional(),
});

function parseCredential(text: string): z.output<typeof credentialJson> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new PasskeyError('the passkey response is not JSON');
  }
  const r = credentialJson.safeParse(raw);
  if (!r.success) throw new PasskeyError('the passkey response is malformed');
  return r.data;
}

export async function registrationOptions(rp: RelyingParty, user: User, existing: Passkey[]): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const { generateRegistrationOptions } = await webauthn();
  return generateRegistrationOptions({
    rpName: rp.name,
    rpID: rp.id,
    userName: user.username,
    userID: new Uint8Array(Buffer.from(user.id, 'utf8')),
    userDisplayName: user.displayName || user.username,
    attestationType: 'none',
    excludeCredentials: existing.map((p) => ({ id: p.id, transports: p.transports as AuthenticatorTransportFuture[] })),
    // Discoverable, so the login page can offer passwordless sign-in without a username.
    authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
  });
}

/** Checks a registration against its challenge and origin; returns the credential to store. */
export async function verifyRegistration(rp: RelyingParty, responseText: string, expectedChallenge: string): Promise<Pick<Passkey, 'id' | 'publicKey' | 'counter' | 'transports'>> {
  const response = parseCredential(responseText) as unknown as RegistrationResponseJSON;
  let result;
  try {
    result = await (await webauthn()).verifyRegistrationResponse({ response, expectedChallenge, expectedOrigin: rp.origin, expectedRPID: rp.id, requireUserVerification: true });
  } catch (err) {
    throw new PasskeyError(`the passkey could not be verified: ${(err as Error).message}`);
  }
  if (!result.verified || !result.registrationInfo) throw new PasskeyError('the passkey could not be verified');
  const c = result.registrationInfo.credential;
  return { id: c.id, publicKey: Buffer.from(c.publicKey).toString('base64url'), counter: c.counter, transports: c.transports ?? [] };
}

/** Options for navigator.credentials.get(): any discoverable passkey (`allow` null), or one of the given ones. */
export async function authenticationOptions(rp: RelyingParty, allow: Passkey[] | null): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const { generateAuthenticationOptions } = await webauthn();
  return generateAuthenticationOptions({
    rpID: rp.id,
    userVerification: 'required',
    ...(allow ? { allowCredentials: allow.map((p) => ({ id: p.id, transports: p.transports as AuthenticatorTransportFuture[] })) } : {}),
  });
}

/**
 * Checks an assertion against its challenge, origin and stored credential, and records the
 * use (the signature counter must grow). `userId`, when given, is the only owner accepted.
 */
export async function verifyAssertion(rp: RelyingParty, store: DirectoryStore, responseText: string, expectedChallenge: string, userId?: string): Promise<Passkey> {
  const response = parseCredential(responseText) as unknown as AuthenticationResponseJSON;
  const passkey = await store.findPasskey(response.id);
  if (!passkey || (userId !== undefined && passkey.userId !== userId)) throw new PasskeyError('this passkey is not registered here');
  let result;
  try {
    result = await (await webauthn()).verifyAuthenticationResponse({
      response,
      expectedChallenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.id,
      credential: { id: passkey.id, publicKey: new Uint8Array(Buffer.from(passkey.publicKey, 'base64url')), counter: passkey.counter, transports: passkey.transports as AuthenticatorTransportFuture[] },
      requireUserVerification: true,
    });
  } catch (err) {
    throw new PasskeyError(`the passkey could not be verified: ${(err as Error).message}`);
  }
  if (!result.verified) throw new PasskeyError('the passkey could not be verified');
  if (!(await store.usePasskey(passkey.id, result.authenticationInfo.newCounter, new Date().toISOString()))) throw new PasskeyError('this passkey response was already used');
  return passkey;
}
