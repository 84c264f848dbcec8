import net from 'node:net';

/** CIDR allow-list (like Postfix's mynetworks); empty matches nothing. */
export interface NetworkList {
  readonly cidrs: string[];
  has(address: string): boolean;
}

/** Parses "127.0.0.1/32, 10.0.0.0/8 ::1/128" (comma or space separated). */
export function parseNetworks(spec: string): NetworkList {
  const list = new net.BlockList();
  const cidrs = spec.split(/[\s,]+/).filter(Boolean);
  for (const cidr of cidrs) {
    const [addr, bits] = cidr.split('/');
    const family = addr && net.isIPv4(addr) ? 'ipv4' : addr && net.isIPv6(addr) ? 'ipv6' : null;
    const max = family === 'ipv4' ? 32 : 128;
    const prefix = bits === undefined ? max : Number(bits);
    if (!family || !Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new Error(`not a CIDR: ${cidr}`);
    list.addSubnet(addr!, prefix, family);
  }
  return {
    cidrs,
    has(address: string): boolean {
      if (cidrs.length === 0) return false;
      // IPv4-mapped IPv6 (::ffff:1.2.3.4) as seen on dual-stack sockets
      const plain = address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
      const family = net.isIPv4(plain) ? 'ipv4' : net.isIPv6(plain) ? 'ipv6' : null;
      return family !== null && list.check(plain, family);
    },
  };
}
