import net from 'node:net';

/** "10.0.0.0/8", "::1/128" or a bare address (a single host). */
export function isCidr(s: string): boolean {
  const [addr, bits, extra] = s.split('/');
  const version = net.isIP(addr ?? '');
  if (version === 0 || extra !== undefined) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (version === 4 ? 32 : 128);
}

/** IPv4-mapped IPv6 (::ffff:1.2.3.4, as dual-stack sockets report it) as plain IPv4; anything else unchanged. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/**
 * Whether an address lies in any of the ranges (trusted networks, trusted proxies).
 * IPv4-mapped IPv6 counts as IPv4. Throws on a range that is not a CIDR; an empty list matches nothing.
 */
export function addressMatcher(ranges: string[]): (address: string) => boolean {
  const list = new net.BlockList();
  for (const r of ranges) {
    if (!isCidr(r)) throw new Error(`not a CIDR: ${r}`);
    const [addr, bits] = r.split('/') as [string, string | undefined];
    const family = net.isIPv4(addr) ? 'ipv4' : 'ipv6';
    list.addSubnet(addr, bits === undefined ? (family === 'ipv4' ? 32 : 128) : Number(bits), family);
  }
  // The common case (nobody trusted): no address parsing per request.
  if (ranges.length === 0) return () => false;
  return (address) => {
    const plain = plainAddress(address);
    const family = net.isIPv4(plain) ? 'ipv4' : net.isIPv6(plain) ? 'ipv6' : null;
    return family !== null && list.check(plain, family);
  };
}

/**
 * HEARTH_TRUSTED_PROXIES for every HTTP service: only a peer in these ranges (a TLS terminator in
 * front) may say who the client is (X-Forwarded-For) or how it connected (X-Forwarded-Proto/-Host).
 */
export class TrustedProxies {
  readonly has: (address: string) => boolean;

  constructor(readonly ranges: string[]) {
    this.has = addressMatcher(ranges);
  }

  /** The X-Forwarded-For chain including the peer: a trusted peer's header extended, anyone else's ignored. */
  chain(peer: string | undefined, forwardedFor: string | string[] | undefined): string {
    const p = plainAddress(peer ?? '');
    const prior = Array.isArray(forwardedFor) ? forwardedFor.join(', ') : forwardedFor;
    return this.has(p) && prior ? `${prior}, ${p}` : p;
  }

  /** The client for throttling and audit: the nearest hop of the chain that is not a trusted proxy. */
  client(chain: string): string {
    const hops = chain.split(',').map((h) => plainAddress(h.trim()));
    for (let i = hops.length - 1; i >= 0; i--) if (hops[i] && !this.has(hops[i]!)) return hops[i]!;
    return hops.find(Boolean) ?? '';
  }
}
