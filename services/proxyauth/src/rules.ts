import { z } from 'zod';

/**
 * The proxyAuth addon's rules, pure: which request paths sit behind the wall, how a
 * request target is normalised before it is matched, and where a sign-in may return to.
 */

export type WallRule = { kind: 'all' } | { kind: 'only'; prefix: string } | { kind: 'except'; prefix: string };

export interface ProxyAuthOptions {
  rule: WallRule;
  basicAuth: boolean;
  supportsBearerAuth: boolean;
}

/** The manifest's `addons.proxyAuth` object, as shared/provisioning accepts it. */
const optionsSchema = z.object({
  path: z
    .string()
    .max(2000)
    .regex(/^!?\/[^\s]*$/)
    .optional(),
  basicAuth: z.boolean().optional(),
  supportsBearerAuth: z.boolean().optional(),
});

/** The whole app behind the wall, nothing else allowed: what a malformed manifest gets. */
export const FAIL_CLOSED: ProxyAuthOptions = { rule: { kind: 'all' }, basicAuth: false, supportsBearerAuth: false };

/** Reads the manifest options; anything malformed fails closed (whole app walled, no Basic, no Bearer). */
export function parseOptions(raw: unknown): { options: ProxyAuthOptions; error: string | null } {
  const r = optionsSchema.safeParse(raw ?? {});
  if (!r.success) return { options: FAIL_CLOSED, error: r.error.issues[0]?.message ?? 'invalid proxyAuth options' };
  const { path, basicAuth, supportsBearerAuth } = r.data;
  let rule: WallRule = { kind: 'all' };
  if (path !== undefined) {
    const negated = path.startsWith('!');
    const prefix = normalizePath(negated ? path.slice(1) : path)?.path;
    if (!prefix) return { options: FAIL_CLOSED, error: `invalid proxyAuth path: ${path}` };
    // "/" as an "only" prefix covers everything; as an "except" prefix it exempts everything.
    rule = negated ? { kind: 'except', prefix } : { kind: 'only', prefix };
  }
  return { options: { rule, basicAuth: basicAuth ?? false, supportsBearerAuth: supportsBearerAuth ?? false }, error: null };
}

export interface NormalizedTarget {
  /** the path forwarded to the app: unreserved escapes decoded, dot segments and duplicate slashes removed */
  path: string;
  /** the query string including its leading "?", or "" */
  query: string;
  /**
   * Every reading of the path an app might act on: `path` itself, and the path with backslashes
   * taken as separators and `;params` dropped (how some servers route). A rule must hold under every reading.
   */
  readings: string[];
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * Normalises a request target (origin-form "/a/b?q" or absolute-form "http://h/a/b?q").
 * Returns null for targets no app should see: no leading "/", bad or NUL escapes,
 * bytes outside printable ASCII, and escaped "%", "/" or "\\" (and so "%252e" too): an app or a
 * proxy that decodes once more, or splits on them, would see a different path than the wall did.
 */
export function normalizePath(target: string): NormalizedTarget | null {
  let t = target;
  const abs = /^https?:\/\/[^/?#]*/i.exec(t);
  if (abs) t = t.slice(abs[0].length) || '/';
  if (!t.startsWith('/')) return null;
  const q = t.indexOf('?');
  const rawPath = q < 0 ? t : t.slice(0, q);
  const query = q < 0 ? '' : t.slice(q);
  if (!/^[\x21-\x7e]*$/.test(rawPath) || rawPath.includes('#')) return null;
  // Most paths have nothing to normalise: no escapes, separators in disguise, params or dot segments.
  if (!/[%;\\]|\/\/|(?:^|\/)\.\.?(?:\/|$)/.test(rawPath)) return { path: rawPath, query, readings: [rawPath] };

  let decoded = '';
  for (let i = 0; i < rawPath.length; i++) {
    const c = rawPath[i]!;
    if (c !== '%') {
      decoded += c;
      continue;
    }
    const hex = rawPath.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return null;
    const code = parseInt(hex, 16);
    if (code === 0 || code === 0x25 || code === 0x2f || code === 0x5c) return null;
    const ch = String.fromCharCode(code);
    decoded += UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
    i += 2;
  }

  const path = removeDotSegments(decoded);
  const separatorsDecoded = decoded
    .replace(/\\/g, '/')
    .split('/')
    .map((seg) => seg.split(';')[0] ?? '')
    .join('/');
  const alt = removeDotSegments(separatorsDecoded);
  return { path, query, readings: alt === path ? [path] : [path, alt] };
}

/** RFC 3986 5.2.4, plus merging empty segments ("//") so "//admin" reads as "/admin". */
function removeDotSegments(p: string): string {
  const out: string[] = [];
  const segs = p.split('/').slice(1);
  let trailing = false;
  for (const seg of segs) {
    trailing = seg === '' || seg === '.' || seg === '..';
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  if (out.length === 0) return '/';
  return `/${out.join('/')}${trailing ? '/' : ''}`;
}

/**
 * Whether the wall applies to a request. Prefixes match as the seed says ("paths
 * starting with"), like nginx prefix locations, but ignoring case: apps on case-insensitive
 * routers or file systems serve /ADMIN as /admin. A request is only outside the wall when
 * every reading of its path is.
 */
export function requiresAuth(rule: WallRule, target: NormalizedTarget): boolean {
  if (rule.kind === 'all') return true;
  const prefix = rule.prefix.toLowerCase();
  const inside = (p: string): boolean => p.toLowerCase().startsWith(prefix);
  return rule.kind === 'only' ? target.readings.some(inside) : target.readings.some((p) => !inside(p));
}

/** Paths the gateway answers itself on every app domain. */
export const GATEWAY_PATHS = new Set(['/login', '/login/callback', '/logout']);

const BASE = 'http://gateway.invalid';

/**
 * Where a sign-in may send the browser afterwards: a path on the same site, or an
 * absolute URL on the app's own host (made relative). Anything else is "/".
 */
export function safeRedirect(value: string | null | undefined, host: string): string {
  // Capped so the sealed sign-in state stays within a browser's 4 KB cookie limit.
  if (!value || value.length > 2000) return '/';
  // Browsers drop tabs and newlines inside URLs ("/\t/evil" becomes "//evil").
  if (/[\x00-\x20\x7f]/.test(value)) return '/';
  let url: URL;
  try {
    if (value.startsWith('/')) {
      if (value[1] === '/' || value[1] === '\\') return '/';
      url = new URL(value, BASE);
      if (url.origin !== BASE) return '/';
    } else if (/^https?:\/\//i.test(value)) {
      url = new URL(value);
      if (url.hostname.toLowerCase() !== host.toLowerCase() || url.username || url.password) return '/';
    } else {
      return '/';
    }
  } catch {
    return '/';
  }
  // "/.//evil" resolves to the pathname "//evil", which a browser would read as a host.
  return `${url.pathname.replace(/^\/+/, '/')}${url.search}${url.hash}`;
}
