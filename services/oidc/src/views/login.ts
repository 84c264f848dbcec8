import { errorBox, esc, page } from './layout.ts';

export interface LoginView {
  appName: string;
  action: string;
  abortAction: string;
  csrf: string;
  login?: string;
  error?: string;
  /** the passkey form's endpoints (options, then the assertion); null when passkeys are off (no RP ID) */
  passkey: { optionsAction: string; action: string } | null;
}

/** A passkey form: hidden until the helper script finds WebAuthn, then an ordinary POST with the credential's JSON. */
function passkeyForm(p: { optionsAction: string; action: string }, csrf: string, label: string): string {
  return `<form method="post" action="${esc(p.action)}" data-passkey="sign-in" data-options="${esc(p.optionsAction)}" hidden>
<input type="hidden" name="csrf" value="${esc(csrf)}">
<input type="hidden" name="response" value="">
<div class="actions"><button type="submit" class="secondary">${esc(label)}</button><span data-passkey-status role="status"></span></div>
</form>`;
}

export function loginPage(v: LoginView): string {
  const invalid = v.error ? ' aria-invalid="true" aria-describedby="login-error"' : '';
  return page(
    `Sign in to ${v.appName}`,
    `<h1>Sign in to ${esc(v.appName)}</h1>
${errorBox('login-error', v.error)}
<form method="post" action="${esc(v.action)}">
<input type="hidden" name="csrf" value="${esc(v.csrf)}">
<label for="login">Username or email</label>
<input id="login" name="login" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required maxlength="256" value="${esc(v.login ?? '')}" autofocus${invalid}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024"${invalid}>
<div class="actions">
<button type="submit">Sign in</button>
</div>
</form>
${v.passkey ? passkeyForm(v.passkey, v.csrf, 'Sign in with a passkey') : ''}
${cancelForm(v)}`,
    { script: v.passkey !== null },
  );
}

export interface TotpView {
  appName: string;
  username: string;
  action: string;
  abortAction: string;
  csrf: string;
  error?: string;
  /** which second factors the user has */
  totp: boolean;
  passkey: { optionsAction: string; action: string } | null;
}

export function totpPage(v: TotpView): string {
  const invalid = v.error ? ' aria-invalid="true" aria-describedby="code-error code-hint"' : ' aria-describedby="code-hint"';
  return page(
    'Two-factor authentication',
    `<h1>Two-factor authentication</h1>
<p>Signed in as <strong>${esc(v.username)}</strong> for ${esc(v.appName)}.</p>
${errorBox('code-error', v.error)}
${
  v.totp
    ? `<form method="post" action="${esc(v.action)}">
<input type="hidden" name="csrf" value="${esc(v.csrf)}">
<label for="code">Authentication code</label>
<p class="hint" id="code-hint">Enter the 6-digit code from your authenticator app.</p>
<input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required autofocus${invalid}>
<div class="actions">
<button type="submit">Verify</button>
</div>
</form>`
    : '<noscript><p>Confirming with your passkey needs JavaScript.</p></noscript>'
}
${v.passkey ? passkeyForm(v.passkey, v.csrf, v.totp ? 'Use a passkey instead' : 'Use your passkey') : ''}
${cancelForm(v)}`,
    { script: v.passkey !== null },
  );
}

/** The second form on both steps: abandons the sign-in (CSRF-protected like the first). */
function cancelForm(v: { abortAction: string; csrf: string }): string {
  return `<form method="post" action="${esc(v.abortAction)}">
<input type="hidden" name="csrf" value="${esc(v.csrf)}">
<div class="actions"><button type="submit" class="secondary">Cancel</button></div>
</form>`;
}
