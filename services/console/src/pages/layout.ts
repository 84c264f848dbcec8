import { createHash } from 'node:crypto';
import type { User } from '@hearth/directory';
import { escapeHtml } from '@hearth/web';

/** The shell every console page shares: server-rendered HTML, one inline stylesheet, no inline script. */

const esc = escapeHtml;

/** A tagged template that escapes every interpolation except nested `Html`. */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += render(v) + strings[i + 1]!;
  });
  return new Html(out);
}

function render(v: unknown): string {
  if (v instanceof Html) return v.value;
  if (Array.isArray(v)) return v.map(render).join('');
  if (v === null || v === undefined || v === false) return '';
  return esc(v);
}

export function raw(s: string): Html {
  return new Html(s);
}

const CSS = `
:root{color-scheme:light;font-family:system-ui,sans-serif;line-height:1.5;color:#1b1b1b;background:#fff}
body{margin:0}
a{color:#0b57d0}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem;z-index:1}
header{background:#1f2937;color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1.5rem}
header a{color:#fff}
header .brand{font-weight:700;font-size:1.1rem;text-decoration:none}
nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.25rem 1rem}
nav a[aria-current=page]{font-weight:700;text-decoration-thickness:3px}
.who{margin-left:auto;display:flex;gap:.75rem;align-items:center}
.who button{background:transparent;color:#fff;border-color:#fff}
main{max-width:64rem;margin:0 auto;padding:1rem}
h1{font-size:1.6rem;margin:.5rem 0 1rem}
h2{font-size:1.2rem;margin:1.5rem 0 .5rem}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input,select,textarea{box-sizing:border-box;width:100%;max-width:32rem;font-size:1rem;padding:.45rem;border:1px solid #6b6b6b;border-radius:4px;background:#fff;color:#1b1b1b}
input[type=checkbox]{width:auto}
input:focus,select:focus,textarea:focus,button:focus,a:focus{outline:3px solid #0b57d0;outline-offset:2px}
button{font-size:1rem;padding:.45rem .9rem;border-radius:4px;border:1px solid #174ea6;background:#174ea6;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#1b1b1b;border-color:#6b6b6b}
button.danger{background:#a50e0e;border-color:#a50e0e}
.actions{display:flex;gap:.5rem;margin-top:1rem;flex-wrap:wrap;align-items:center}
form.inline{display:inline}
.error{border-left:4px solid #a50e0e;padding:.5rem .75rem;background:#fce8e6;margin:1rem 0}
.ok{border-left:4px solid #137333;padding:.5rem .75rem;background:#e6f4ea;margin:1rem 0}
.hint{font-size:.9rem;color:#444}
.table{overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #ddd;vertical-align:top}
code,pre{font-family:ui-monospace,monospace;font-size:.9rem;word-break:break-all}
.qr{max-width:16rem;background:#fff;padding:.5rem;border:1px solid #ddd}
.pager{display:flex;gap:1rem;margin:1rem 0}
.tag{display:inline-block;padding:0 .4rem;border-radius:3px;background:#e8eaed;font-size:.85rem}
.tag.off{background:#fce8e6;color:#a50e0e}
ul.cards{list-style:none;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(14rem,1fr));gap:.75rem}
ul.cards li{border:1px solid #ddd;border-radius:6px;padding:.75rem}
@media (max-width:40rem){header{padding:.5rem}.who{margin-left:0}main{padding:.5rem}}
`;

/** Scripts only from this origin (the passkey helper), styles only this sheet, forms only to here and the provider. */
export function contentSecurityPolicy(issuer: string): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "connect-src 'self'",
    `style-src 'sha256-${createHash('sha256').update(CSS).digest('base64')}'`,
    "img-src 'self' data:",
    `form-action 'self' ${new URL(issuer).origin}`,
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export interface Shell {
  title: string;
  /** the signed-in user; null on the pages shown before sign-in */
  user: User | null;
  csrf: string;
  /** the path of the nav entry to mark as current */
  current?: string;
  notice?: { kind: 'ok' | 'error'; text: string } | undefined;
  /** page-specific script from /static (progressive enhancement only) */
  script?: string;
}

export function isAdmin(user: User): boolean {
  return user.role === 'admin' || user.role === 'owner';
}

const SELF_NAV: [string, string][] = [
  ['/', 'Dashboard'],
  ['/profile', 'Profile'],
  ['/password', 'Password'],
  ['/2fa', 'Two-factor'],
  ['/passkeys', 'Passkeys'],
  ['/ssh-keys', 'SSH keys'],
  ['/sessions', 'Sessions'],
];
const ADMIN_NAV: [string, string][] = [
  ['/admin/users', 'Users'],
  ['/admin/groups', 'Groups'],
  ['/admin/import', 'Import'],
  ['/admin/apps', 'Apps'],
  ['/admin/mailboxes', 'Mailboxes'],
  ['/admin/queue', 'Mail queue'],
  ['/admin/backups', 'Backups'],
  ['/admin/audit', 'Audit log'],
  ['/admin/status', 'Status'],
];

function navList(label: string, items: [string, string][], current: string | undefined): Html {
  return html`<nav aria-label="${label}"><ul>${items.map(([href, text]) => html`<li><a href="${href}"${current === href ? raw(' aria-current="page"') : ''}>${text}</a></li>`)}</ul></nav>`;
}

export function csrfField(csrf: string): Html {
  return html`<input type="hidden" name="csrf" value="${csrf}">`;
}

export function page(s: Shell, body: Html): string {
  const header = s.user
    ? html`<header>
<a class="brand" href="/">Hearth</a>
${navList('Your account', SELF_NAV, s.current)}
${isAdmin(s.user) ? navList('Administration', ADMIN_NAV, s.current) : ''}
<div class="who"><span>${s.user.displayName || s.user.username}</span>
<form class="inline" method="post" action="/logout">${csrfField(s.csrf)}<button type="submit" class="secondary">Sign out</button></form></div>
</header>`
    : html`<header><span class="brand">Hearth</span></header>`;
  const notice = s.notice ? html`<p class="${s.notice.kind}" role="${s.notice.kind === 'error' ? 'alert' : 'status'}">${s.notice.text}</p>` : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${esc(s.title)} · Hearth</title>
<style>${CSS}</style>
${s.script ? `<script src="${esc(s.script)}" defer></script>` : ''}
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
${header}
<main id="main">
<h1>${esc(s.title)}</h1>
${notice}
${body}
</main>
</body>
</html>
`;
}

/** A labelled input; `error` marks it invalid and describes it. */
export function field(o: { name: string; label: string; type?: string; value?: string; required?: boolean; autocomplete?: string; hint?: string; attrs?: string }): Html {
  const id = `f-${o.name}`;
  const hint = o.hint ? html`<p class="hint" id="${id}-hint">${o.hint}</p>` : '';
  return html`<label for="${id}">${o.label}</label>${hint}<input id="${id}" name="${o.name}" type="${o.type ?? 'text'}" value="${o.value ?? ''}"${o.required ? raw(' required') : ''}${o.autocomplete ? html` autocomplete="${o.autocomplete}"` : ''}${o.hint ? html` aria-describedby="${id}-hint"` : ''}${o.attrs ? raw(' ' + o.attrs) : ''}>`;
}

/** A one-button form that POSTs to `action` (with CSRF token and any hidden fields). */
export function postButton(action: string, csrf: string, label: string, o: { kind?: 'secondary' | 'danger'; hidden?: Record<string, string>; aria?: string } = {}): Html {
  return html`<form class="inline" method="post" action="${action}">${csrfField(csrf)}${Object.entries(o.hidden ?? {}).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}<button type="submit"${o.kind ? html` class="${o.kind}"` : ''}${o.aria ? html` aria-label="${o.aria}"` : ''}>${label}</button></form>`;
}
