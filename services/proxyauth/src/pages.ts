/** The gateway's own small HTML pages (errors and the sign-in failure page). */

import { escapeHtml } from '@hearth/web';

export interface Page {
  status: number;
  title: string;
  message: string;
  /** an optional link (already a safe, relative URL) */
  link?: { href: string; text: string };
}

export function renderPage(page: Page): string {
  const link = page.link ? `<p><a href="${escapeHtml(page.link.href)}">${escapeHtml(page.link.text)}</a></p>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${page.status} ${escapeHtml(page.title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}</style>
</head><body><h1>${escapeHtml(page.title)}</h1><p>${escapeHtml(page.message)}</p>${link}</body></html>
`;
}

export const PAGES = {
  badRequest: { status: 400, title: 'Bad request', message: 'The request could not be understood.' },
  unknownHost: { status: 404, title: 'Not found', message: 'No app is installed at this address.' },
  forbidden: { status: 403, title: 'Access denied', message: 'You are signed in, but this app is not available to your account.', link: { href: '/logout', text: 'Sign out' } },
  badGateway: { status: 502, title: 'App unavailable', message: 'The app is not responding right now. Try again in a moment.' },
  gatewayTimeout: { status: 504, title: 'App timed out', message: 'The app took too long to answer.' },
  providerDown: { status: 503, title: 'Sign-in unavailable', message: 'The sign-in service cannot be reached right now. Try again in a moment.' },
} satisfies Record<string, Page>;
