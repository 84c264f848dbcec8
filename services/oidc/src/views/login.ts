import { errorBox, esc, page } from './layout.ts';

export interface LoginView {
  appName: string;
  action: string;
  abortAction: string;
  csrf: string;
  login?: string;
  error?: string;
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
${cancelForm(v)}`,
  );
}

export interface TotpView {
  appName: string;
  username: string;
  action: string;
  abortAction: string;
  csrf: string;
  error?: string;
}

export function totpPage(v: TotpView): string {
  const invalid = v.error ? ' aria-invalid="true" aria-describedby="code-error code-hint"' : ' aria-describedby="code-hint"';
  return page(
    'Two-factor authentication',
    `<h1>Two-factor authentication</h1>
<p>Signed in as <strong>${esc(v.username)}</strong> for ${esc(v.appName)}.</p>
${errorBox('code-error', v.error)}
<form method="post" action="${esc(v.action)}">
<input type="hidden" name="csrf" value="${esc(v.csrf)}">
<label for="code">Authentication code</label>
<p class="hint" id="code-hint">Enter the 6-digit code from your authenticator app.</p>
<input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required autofocus${invalid}>
<div class="actions">
<button type="submit">Verify</button>
</div>
</form>
${cancelForm(v)}`,
  );
}

/** The second form on both steps: abandons the sign-in (CSRF-protected like the first). */
function cancelForm(v: { abortAction: string; csrf: string }): string {
  return `<form method="post" action="${esc(v.abortAction)}">
<input type="hidden" name="csrf" value="${esc(v.csrf)}">
<div class="actions"><button type="submit" class="secondary">Cancel</button></div>
</form>`;
}
