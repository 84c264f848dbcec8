import { generateTotpSecret, otpauthUri, verifyTotp, type App } from '@hearth/directory';
import QRCode from 'qrcode';
import { csrfField, field, html, postButton, type Html } from './pages/layout.ts';
import { done, userError, view, type RequestContext, type Result, type Route } from './routes.ts';
import { CONSOLE_APP_ID } from './signin.ts';

/** Self-service: what every signed-in user may do to their own account. */

export function appTitle(app: App): string {
  return typeof app.manifest.title === 'string' && app.manifest.title ? app.manifest.title : app.id;
}

function dashboard(c: RequestContext): Result {
  const apps = c.directory
    .apps()
    .filter((a) => a.id !== CONSOLE_APP_ID && c.directory.canUseApp(a, c.user))
    .sort((a, b) => appTitle(a).localeCompare(appTitle(b)));
  return view(
    c,
    `Welcome, ${c.user.displayName || c.user.username}`,
    html`<h2>Your apps</h2>
${apps.length ? html`<ul class="cards">${apps.map((a) => html`<li><a href="https://${a.domain}/">${appTitle(a)}</a><br><span class="hint">${a.domain}</span></li>`)}</ul>` : html`<p>No apps are open to you yet.</p>`}
<h2>Your account</h2>
<ul>
<li>Username <strong>${c.user.username}</strong>, email ${c.user.email}</li>
<li>Two-factor authentication: ${c.user.totpSecret ? 'on' : html`off (<a href="/2fa">set it up</a>)`}</li>
</ul>`,
  );
}

function profileForm(c: RequestContext, values: { displayName: string; fallbackEmail: string }, error?: string): Result {
  return view(
    c,
    'Profile',
    html`<form method="post" action="/profile">${csrfField(c.session.record.csrf)}
<p>Username <strong>${c.user.username}</strong> · email <strong>${c.user.email}</strong> (an administrator can change these)</p>
${field({ name: 'displayName', label: 'Display name', value: values.displayName, autocomplete: 'name', attrs: 'maxlength="128"' })}
${field({ name: 'fallbackEmail', label: 'Fallback email', type: 'email', value: values.fallbackEmail, autocomplete: 'email', hint: 'Where to reach you when your own mailbox is unavailable. Leave empty for none.' })}
<div class="actions"><button type="submit">Save</button></div></form>`,
    { error },
  );
}

async function saveProfile(c: RequestContext): Promise<Result> {
  const values = { displayName: c.form.get('displayName').trim(), fallbackEmail: c.form.get('fallbackEmail').trim() };
  if (values.displayName.length > 128) return profileForm(c, values, 'The display name is too long (128 characters at most).');
  try {
    await c.directory.updateUser(c.user.id, { displayName: values.displayName || c.user.username, fallbackEmail: values.fallbackEmail || null });
  } catch (err) {
    return profileForm(c, values, userError(err));
  }
  return done('/profile', 'profile');
}

function passwordForm(c: RequestContext, error?: string): Result {
  return view(
    c,
    'Password',
    html`<form method="post" action="/password">${csrfField(c.session.record.csrf)}
<input type="text" name="username" value="${c.user.username}" autocomplete="username" hidden>
${field({ name: 'current', label: 'Current password', type: 'password', required: true, autocomplete: 'current-password' })}
${field({ name: 'password', label: 'New password', type: 'password', required: true, autocomplete: 'new-password', hint: 'At least 8 characters.', attrs: 'maxlength="1024"' })}
${field({ name: 'confirm', label: 'New password again', type: 'password', required: true, autocomplete: 'new-password' })}
<div class="actions"><button type="submit">Change password</button></div></form>`,
    { error },
  );
}

async function changePassword(c: RequestContext): Promise<Result> {
  const current = c.form.get('current');
  const next = c.form.get('password');
  if (next !== c.form.get('confirm')) return passwordForm(c, 'The two new passwords differ.');
  // The same check as any sign-in: throttled, audited, one argon2 verification.
  const r = await c.directory.authenticate({ login: c.user.username, password: current, protocol: 'console', remote: c.remote });
  if (!r.ok) return passwordForm(c, r.reason === 'throttled' ? 'Too many wrong passwords. Wait a few minutes, then try again.' : 'The current password is not right.');
  try {
    await c.directory.setPassword(c.user.id, next);
  } catch (err) {
    return passwordForm(c, userError(err));
  }
  c.logger.info({ username: c.user.username }, 'password changed in the console');
  return done('/password', 'password');
}

/** A TOTP key as list items: its otpauth QR code (inline SVG) and the key in groups of four, for `whose` ("your", "the user's") authenticator app. */
export async function totpKeyItems(secret: string, email: string, whose: string): Promise<Html> {
  const svg = await QRCode.toString(otpauthUri(secret, email), { type: 'svg', errorCorrectionLevel: 'M', margin: 1 });
  return html`<li>Scan this code with ${whose} authenticator app:<br><img class="qr" src="data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}" alt="QR code for ${whose} authenticator app; the key is also written below"></li>
<li>Or enter this key by hand: <code id="totp-secret">${secret.replace(/(.{4})/g, '$1 ').trim()}</code></li>`;
}

async function totpPage(c: RequestContext, error?: string): Promise<Result> {
  const csrf = c.session.record.csrf;
  if (c.user.totpSecret) {
    return view(
      c,
      'Two-factor authentication',
      html`<p>Two-factor authentication is <strong>on</strong>: signing in asks for a code from your authenticator app after your password.</p>
<h2>Turn it off</h2>
<form method="post" action="/2fa/disable">${csrfField(csrf)}
${field({ name: 'password', label: 'Your password', type: 'password', required: true, autocomplete: 'current-password' })}
<div class="actions"><button type="submit" class="danger">Turn off two-factor authentication</button></div></form>`,
      { error, current: '/2fa' },
    );
  }
  const secret = c.session.record.pendingTotp;
  if (!secret) {
    return view(
      c,
      'Two-factor authentication',
      html`<p>Two-factor authentication is <strong>off</strong>. With it on, signing in also asks for a 6-digit code from an authenticator app (such as FreeOTP, Aegis or Google Authenticator).</p>
<div class="actions">${postButton('/2fa/start', csrf, 'Set up two-factor authentication')}</div>`,
      { error, current: '/2fa' },
    );
  }
  return view(
    c,
    'Two-factor authentication',
    html`<ol>
${await totpKeyItems(secret, c.user.email, 'your')}
<li>Enter the code the app shows, to confirm:</li>
</ol>
<form method="post" action="/2fa/confirm">${csrfField(csrf)}
${field({ name: 'code', label: 'Code from your app', required: true, autocomplete: 'one-time-code', attrs: 'inputmode="numeric" pattern="[0-9]{6}" maxlength="6"' })}
<div class="actions"><button type="submit">Turn on</button></div></form>`,
    { error, current: '/2fa' },
  );
}

async function startTotp(c: RequestContext): Promise<Result> {
  if (c.user.totpSecret) return { redirect: '/2fa' };
  await c.sessions.update(c.session, { pendingTotp: generateTotpSecret() });
  return { redirect: '/2fa' };
}

async function confirmTotp(c: RequestContext): Promise<Result> {
  const secret = c.session.record.pendingTotp;
  if (!secret || c.user.totpSecret) return { redirect: '/2fa' };
  if (!verifyTotp(secret, c.form.get('code').trim())) return totpPage(c, 'That code is not valid. Check the time on your device and try again.');
  await c.directory.setTotpSecret(c.user.id, secret);
  await c.sessions.update(c.session, { pendingTotp: undefined });
  await c.directory.audit({ username: c.user.username, protocol: 'console', remote: c.remote, ok: true, detail: 'totp enrolled' });
  return done('/2fa', 'totp');
}

async function disableTotp(c: RequestContext): Promise<Result> {
  const r = await c.directory.authenticate({ login: c.user.username, password: c.form.get('password'), protocol: 'console', remote: c.remote });
  if (!r.ok) return totpPage(c, 'The password is not right.');
  await c.directory.disableTotp(c.user.id);
  return done('/2fa', 'totp-off');
}

export const selfRoutes: Route[] = [
  { method: 'GET', path: /^\/$/, handler: dashboard },
  { method: 'GET', path: /^\/profile$/, handler: (c) => profileForm(c, { displayName: c.user.displayName, fallbackEmail: c.user.fallbackEmail ?? '' }) },
  { method: 'POST', path: /^\/profile$/, handler: saveProfile },
  { method: 'GET', path: /^\/password$/, handler: (c) => passwordForm(c) },
  { method: 'POST', path: /^\/password$/, handler: changePassword },
  { method: 'GET', path: /^\/2fa$/, handler: (c) => totpPage(c) },
  { method: 'POST', path: /^\/2fa\/start$/, handler: startTotp },
  { method: 'POST', path: /^\/2fa\/confirm$/, handler: confirmTotp },
  { method: 'POST', path: /^\/2fa\/disable$/, handler: disableTotp },
];
