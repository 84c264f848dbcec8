import { esc, page } from './layout.ts';

const FRIENDLY: Record<string, string> = {
  invalid_request: 'The sign-in request was not valid.',
  invalid_client: 'This app is not registered for sign-in.',
  invalid_redirect_uri: 'This app asked to return to an address it has not registered.',
  unauthorized_client: 'This app may not sign in this way.',
  access_denied: 'Access was denied.',
  session_not_found: 'Your sign-in attempt expired. Start again from the app.',
  server_error: 'Something went wrong on our side.',
};

/** Shown instead of redirecting when the request cannot be trusted with a redirect (e.g. unregistered redirect_uri). */
export function errorPage(error: string, description: string | undefined): string {
  return page(
    'Sign-in error',
    `<h1>Sign-in error</h1>
<p role="alert">${esc(FRIENDLY[error] ?? 'The request could not be completed.')}</p>
<dl><dt>error</dt><dd><code>${esc(error)}</code></dd>${description ? `<dt>details</dt><dd>${esc(description)}</dd>` : ''}</dl>`,
  );
}
