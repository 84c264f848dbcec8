import { esc, page } from './layout.ts';

/** `form` is the provider's own form (hidden xsrf field, id op.logoutForm); the buttons submit it. */
export function logoutPage(form: string, appName: string | null): string {
  return page(
    'Sign out',
    `<h1>Sign out${appName ? ` of ${esc(appName)}` : ''}?</h1>
<p>You will be signed out of every app that uses this sign-in.</p>
${form}
<div class="actions">
<button type="submit" form="op.logoutForm" name="logout" value="yes" autofocus>Sign out</button>
<button type="submit" form="op.logoutForm" class="secondary">Stay signed in</button>
</div>`,
  );
}

export function loggedOutPage(appName: string | null): string {
  return page('Signed out', `<h1>Signed out</h1>\n<p role="status">You have been signed out${appName ? ` of ${esc(appName)}` : ''}. You can close this window.</p>`);
}
