import { esc, page } from './layout.ts';

export interface DeniedView {
  appName: string;
  username: string;
  /** starts over with another account (a plain link: it changes nothing) */
  switchHref: string;
  abortAction: string;
  csrf: string;
}

export function deniedPage(v: DeniedView): string {
  return page(
    `No access to ${v.appName}`,
    `<h1>No access to ${esc(v.appName)}</h1>
<p role="alert">The account <strong>${esc(v.username)}</strong> may not use ${esc(v.appName)}. Ask an administrator to add you to this app's access list, or sign in with another account.</p>
<p><a href="${esc(v.switchHref)}">Sign in with another account</a></p>
<form method="post" action="${esc(v.abortAction)}">
<input type="hidden" name="csrf" value="${esc(v.csrf)}">
<div class="actions"><button type="submit" class="secondary">Back to the app</button></div>
</form>`,
  );
}
