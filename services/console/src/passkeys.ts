import { PasskeyError, registrationOptions, verifyRegistration, type RelyingParty } from '@hearth/web';
import { csrfField, field, html, postButton } from './pages/layout.ts';
import { done, view, type RequestContext, type Result, type Route } from './routes.ts';

/** Passkey registration and removal for the signed-in user; they are used at the OIDC login page. */

export const PASSKEYS_SCRIPT_PATH = '/static/passkeys.js';

function relyingParty(c: RequestContext): RelyingParty | null {
  return c.settings.passkeyRpId ? { id: c.settings.passkeyRpId, name: 'Hearth', origin: new URL(c.settings.publicUrl).origin } : null;
}

async function passkeysPage(c: RequestContext, error?: string): Promise<Result> {
  const csrf = c.session.record.csrf;
  if (!c.settings.passkeyRpId) {
    return view(c, 'Passkeys', html`<p>Passkeys are off on this server: ${c.settings.passkeysOff}. Ask your administrator.</p>`, { error, current: '/passkeys' });
  }
  const keys = await c.directory.store.passkeysOf(c.user.id);
  return view(
    c,
    'Passkeys',
    html`<p>A passkey signs you in with this device's screen lock or a security key: on its own, without a password, or as the second step after your password.</p>
${keys.length
  ? html`<div class="table" tabindex="0" role="region" aria-label="Table (scrolls sideways on small screens)"><table><thead><tr><th scope="col">Name</th><th scope="col">Added</th><th scope="col">Last used</th><th scope="col"><span class="hint">Action</span></th></tr></thead><tbody>
${keys.map((k) => html`<tr><td>${k.name}</td><td>${k.createdAt.slice(0, 10)}</td><td>${k.lastUsedAt?.slice(0, 16).replace('T', ' ') ?? 'never'}</td><td>${postButton('/passkeys/delete', csrf, 'Remove', { kind: 'secondary', hidden: { id: k.id }, aria: `Remove passkey ${k.name}` })}</td></tr>`)}
</tbody></table></div>`
  : html`<p>You have no passkeys yet.</p>`}
<h2>Add a passkey</h2>
<noscript><p>Adding a passkey needs JavaScript (browsers reach passkeys only through it).</p></noscript>
<form method="post" action="/passkeys/add" data-passkey="register" data-options="/passkeys/options" hidden>${csrfField(csrf)}
<input type="hidden" name="response" value="">
${field({ name: 'name', label: 'Name', value: 'Passkey', required: true, autocomplete: 'off', hint: 'To tell your passkeys apart, e.g. "Laptop".', attrs: 'maxlength="64"' })}
<div class="actions"><button type="submit">Add a passkey</button><span data-passkey-status role="status"></span></div></form>`,
    { error, current: '/passkeys', script: PASSKEYS_SCRIPT_PATH },
  );
}

async function options(c: RequestContext): Promise<Result> {
  const rp = relyingParty(c);
  if (!rp) return { status: 404, json: { error: 'passkeys are off on this server' } };
  const opts = await registrationOptions(rp, c.user, await c.directory.store.passkeysOf(c.user.id));
  await c.sessions.update(c.session, { challenge: opts.challenge });
  return { status: 200, json: opts };
}

async function add(c: RequestContext): Promise<Result> {
  const challenge = c.session.record.challenge;
  // Single use: whatever happens next, this challenge is spent.
  await c.sessions.update(c.session, { challenge: undefined });
  const name = c.form.get('name').trim().slice(0, 64) || 'Passkey';
  const rp = relyingParty(c);
  if (!challenge || !rp) return passkeysPage(c, 'Start again: press “Add a passkey”.');
  try {
    const credential = await verifyRegistration(rp, c.form.get('response'), challenge);
    await c.directory.store.addPasskey({ ...credential, userId: c.user.id, name, createdAt: new Date().toISOString(), lastUsedAt: null });
  } catch (err) {
    if (!(err instanceof PasskeyError) && !(err instanceof Error && /conflict|already/i.test(err.message))) throw err;
    c.logger.warn({ username: c.user.username, reason: (err as Error).message }, 'refused a passkey registration');
    return passkeysPage(c, err instanceof PasskeyError ? 'The passkey could not be verified. Try again.' : 'That passkey is already registered.');
  }
  await c.directory.audit({ username: c.user.username, protocol: 'console', remote: c.remote, ok: true, detail: `passkey added (${name})` });
  return done('/passkeys', 'passkey-added');
}

async function remove(c: RequestContext): Promise<Result> {
  try {
    await c.directory.store.deletePasskey(c.user.id, c.form.get('id'));
  } catch {
    return passkeysPage(c, 'No such passkey.');
  }
  return done('/passkeys', 'passkey-deleted');
}

export const passkeyRoutes: Route[] = [
  { method: 'GET', path: /^\/passkeys$/, handler: (c) => passkeysPage(c) },
  { method: 'POST', path: /^\/passkeys\/options$/, handler: options },
  { method: 'POST', path: /^\/passkeys\/add$/, handler: add },
  { method: 'POST', path: /^\/passkeys\/delete$/, handler: remove },
];
