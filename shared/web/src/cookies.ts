/** Cookie header codec (RFC 6265): parse, serialise, and drop one cookie before forwarding. */

export interface CookieOptions {
  maxAgeSeconds?: number;
  secure: boolean;
}

/** The first value of a cookie in a Cookie header, or undefined. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The Cookie header without the cookies `drop` names (the app never sees the gateway's). */
export function withoutCookies(header: string, drop: (name: string) => boolean): string {
  return header
    .split(';')
    .filter((part) => {
      const eq = part.indexOf('=');
      return !drop((eq < 0 ? part : part.slice(0, eq)).trim());
    })
    .map((p) => p.trim())
    .join('; ');
}

/** Always HttpOnly, SameSite=Lax, Path=/ and host-only; values here are base64url and dots only, so no escaping is needed. */
export function serializeCookie(name: string, value: string, opts: CookieOptions): string {
  const parts = [`${name}=${value}`, 'Path=/', 'SameSite=Lax', 'HttpOnly'];
  if (opts.secure) parts.push('Secure');
  if (opts.maxAgeSeconds !== undefined) parts.push(`Max-Age=${Math.max(0, Math.floor(opts.maxAgeSeconds))}`);
  return parts.join('; ');
}

export function clearCookie(name: string, opts: Omit<CookieOptions, 'maxAgeSeconds'>): string {
  return serializeCookie(name, '', { ...opts, maxAgeSeconds: 0 });
}
