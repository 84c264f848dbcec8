import { TrustedProxies, type HearthConfig } from '@hearth/config';
import type { Logger } from '@hearth/log';
import type { Context, Middleware, Next } from 'koa';
import { OIDC_ROUTES } from './endpoints.ts';
import { errorPage } from './views/error.ts';
import { PAGE_CSP } from './views/layout.ts';

/** Koa middleware around the provider: errors, headers, input caps. Rules only; no provider state. */

/** Limits on what a request may carry before anything parses it. */
export const LIMITS = {
  queryChars: 8192,
  paramChars: 4096,
  params: 64,
  formBytes: 16 * 1024,
} as const;

/** Routes a browser lands on: errors there are pages, elsewhere JSON. */
function isBrowserRoute(path: string): boolean {
  return path === OIDC_ROUTES.authorization || path.startsWith(`${OIDC_ROUTES.authorization}/`) || path.startsWith(OIDC_ROUTES.end_session) || path.startsWith('/interaction/');
}

export function sendError(ctx: Context, status: number, error: string, description: string): void {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  if (isBrowserRoute(ctx.path)) {
    ctx.set('Content-Security-Policy', PAGE_CSP);
    ctx.type = 'html';
    ctx.body = errorPage(error, description);
  } else {
    ctx.body = { error, error_description: description };
  }
}

/** Anything that escapes the provider and our routes: a client error stays one; the rest is logged and answered as server_error. */
export function errorHandler(logger: Logger): Middleware {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (err) {
      const e = err as { status?: number; statusCode?: number; error?: string; error_description?: string; message?: string; expose?: boolean };
      const status = e.status ?? e.statusCode ?? 500;
      if (status >= 400 && status < 500) {
        sendError(ctx, status, e.error ?? 'invalid_request', e.error_description ?? (e.expose ? String(e.message) : 'bad request'));
      } else {
        logger.error({ err, path: ctx.path }, 'request failed');
        sendError(ctx, 500, 'server_error', 'the server could not complete the request');
      }
    }
  };
}

/**
 * ctx.ip (throttling, audit) is the socket peer, or the nearest untrusted X-Forwarded-For hop when
 * the peer is in HEARTH_TRUSTED_PROXIES; a client's own X-Forwarded-For is never believed.
 */
export function clientAddress(config: HearthConfig): Middleware {
  const trusted = new TrustedProxies(config.trustedProxies);
  return async (ctx: Context, next: Next) => {
    const client = trusted.client(trusted.chain(ctx.req.socket.remoteAddress, ctx.req.headers['x-forwarded-for']));
    ctx.req.headers['x-forwarded-for'] = client;
    ctx.request.ip = client;
    await next();
  };
}

export function securityHeaders(config: HearthConfig): Middleware {
  const issuer = new URL(config.oidcIssuer);
  const proto = issuer.protocol.slice(0, -1);
  return async (ctx: Context, next: Next) => {
    // The issuer is this service's one public name: every URL the provider builds (discovery,
    // redirects) uses it, whatever Host the request came in with. An https issuer means a TLS
    // proxy is in front of this plain-HTTP listener, so cookies are always Secure.
    ctx.req.headers['x-forwarded-proto'] = proto;
    ctx.req.headers['x-forwarded-host'] = issuer.host;
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('Content-Security-Policy', "frame-ancestors 'none'");
    await next();
  };
}

/** Oversized or too many query parameters: invalid_request before the provider sees them (never a redirect). */
export const limitParams: Middleware = async (ctx: Context, next: Next) => {
  if (ctx.querystring.length > LIMITS.queryChars) return sendError(ctx, 400, 'invalid_request', 'the query string is too long');
  const params = new URLSearchParams(ctx.querystring);
  let count = 0;
  for (const [k, v] of params) {
    count++;
    if (k.length > 128 || v.length > LIMITS.paramChars) return sendError(ctx, 400, 'invalid_request', `parameter ${k.slice(0, 64)} is too long`);
  }
  if (count > LIMITS.params) return sendError(ctx, 400, 'invalid_request', 'too many parameters');
  await next();
};

/**
 * oidc-provider honours offline_access only with prompt=consent (OIDC Core 11). Installed
 * apps are first-party and consent is implied, so a request for offline_access gets
 * prompt=consent added; the interaction then approves it without asking.
 */
export const offlineAccessConsent: Middleware = async (ctx: Context, next: Next) => {
  if (ctx.method === 'GET' && ctx.path === OIDC_ROUTES.authorization) {
    const params = new URLSearchParams(ctx.querystring);
    const scopes = (params.get('scope') ?? '').split(' ');
    const prompts = new Set((params.get('prompt') ?? '').split(' ').filter(Boolean));
    if (scopes.includes('offline_access') && !prompts.has('consent') && !prompts.has('none') && params.getAll('prompt').length <= 1) {
      prompts.add('consent');
      params.set('prompt', [...prompts].join(' '));
      ctx.querystring = params.toString();
    }
  }
  await next();
};

/** Reads an application/x-www-form-urlencoded body up to LIMITS.formBytes; null for anything else. */
export async function readForm(ctx: Context): Promise<URLSearchParams | null> {
  if (!ctx.is('application/x-www-form-urlencoded')) return null;
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > LIMITS.formBytes) return null;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > LIMITS.formBytes) return null;
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
