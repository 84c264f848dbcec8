import { createHash } from 'node:crypto';
import { escapeHtml } from '@hearth/web';

/**
 * The page shell every login/logout/error page shares. Server-rendered; the one script is the
 * passkey helper, and every page works without it.
 */

export const esc = escapeHtml;

const CSS = `
:root{color-scheme:light dark;font-family:system-ui,sans-serif;line-height:1.5}
body{margin:0;display:flex;justify-content:center;padding:2rem 1rem}
main{width:100%;max-width:24rem}
h1{font-size:1.5rem;margin:0 0 1rem}
label{display:block;font-weight:600;margin:1rem 0 .25rem}
input{box-sizing:border-box;width:100%;font-size:1rem;padding:.5rem;border:1px solid #767676;border-radius:4px}
input:focus,button:focus,a:focus{outline:3px solid #1a73e8;outline-offset:2px}
.actions{display:flex;gap:.5rem;margin-top:1.5rem;flex-wrap:wrap}
button{font-size:1rem;padding:.5rem 1rem;border-radius:4px;border:1px solid #1a4fa0;background:#1a4fa0;color:#fff;cursor:pointer}
button.secondary{background:transparent;color:inherit;border-color:#767676}
.error{border-left:4px solid #b00020;padding:.5rem .75rem;background:rgba(176,0,32,.08);margin:1rem 0}
.hint{font-size:.9rem;opacity:.85}
`;

/** The passkey helper (shared/web), served by interactions.ts. */
export const PASSKEYS_SCRIPT_PATH = '/interaction-assets/passkeys.js';

/** Pages allow exactly this stylesheet and scripts from this origin (the passkey helper): no inline script, no framing, no plugins. */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "connect-src 'self'",
  `style-src 'sha256-${createHash('sha256').update(CSS).digest('base64')}'`,
  "img-src 'self' data:",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function page(title: string, body: string, opts: { script?: boolean } = {}): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${esc(title)}</title>
<style>${CSS}</style>
${opts.script ? `<script src="${PASSKEYS_SCRIPT_PATH}" defer></script>\n` : ''}</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

/** An error box announced to screen readers, referenced by the field it concerns. */
export function errorBox(id: string, message: string | undefined): string {
  return message ? `<p class="error" id="${esc(id)}" role="alert">${esc(message)}</p>` : '';
}
