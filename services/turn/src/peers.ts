import net from 'node:net';
import os from 'node:os';
import { DENIED_IPV4, DENIED_IPV6, IPV4_CARRIERS, LOOPBACK_IPV4, LOOPBACK_IPV6 } from './special-addresses.ts';
import { ipBytes } from './stun-codec.ts';

/**
 * Which peers an allocation may reach. A TURN relay must not become a way into the server's
 * own network or anyone's non-public one: every not globally reachable special-purpose block
 * (special-addresses.ts), loopback and the server's own addresses are refused unless allowed
 * explicitly. An IPv6 address that carries an IPv4 one (mapped, NAT64, 6to4) is judged as that
 * IPv4 address too.
 */

interface Cidr {
  bytes: Buffer;
  bits: number;
}

function parseCidr(text: string): Cidr {
  const [addr, bits] = text.split('/') as [string, string | undefined];
  const family = net.isIPv4(addr) ? 4 : 6;
  return { bytes: ipBytes(addr, family), bits: bits === undefined ? (family === 4 ? 32 : 128) : Number(bits) };
}

function inCidr(addr: Buffer, c: Cidr): boolean {
  if (addr.length !== c.bytes.length) return false;
  let bits = c.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((addr[i]! & mask) !== (c.bytes[i]! & mask)) return false;
  }
  return true;
}

const LOOPBACK = [LOOPBACK_IPV4, LOOPBACK_IPV6].map(parseCidr);
const DENIED = [...DENIED_IPV4, ...DENIED_IPV6].map(parseCidr);
const CARRIERS = IPV4_CARRIERS.map((c) => ({ cidr: parseCidr(c.prefix), v4Offset: c.v4Offset }));

function dotted(b: Buffer): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

export class PeerPolicy {
  private readonly allowed: Cidr[];
  private readonly own: Set<string>;

  constructor(opts: { allowLoopback: boolean; allowedCidrs: string[]; ownAddresses?: string[] }) {
    this.allowed = opts.allowedCidrs.map(parseCidr);
    if (opts.allowLoopback) this.allowed.push(...LOOPBACK);
    this.own = new Set(opts.ownAddresses ?? localAddresses());
  }

  allows(address: string): boolean {
    const family = net.isIPv4(address) ? 4 : net.isIPv6(address) ? 6 : 0;
    if (!family) return false;
    const bytes = ipBytes(address, family);
    if (family === 6) {
      const carrier = CARRIERS.find((c) => inCidr(bytes, c.cidr));
      // An allow-listed IPv6 range still wins; otherwise the IPv4 address inside must pass too.
      if (carrier && !this.allowed.some((c) => inCidr(bytes, c)) && !this.allows(dotted(bytes.subarray(carrier.v4Offset, carrier.v4Offset + 4)))) return false;
    }
    if (this.allowed.some((c) => inCidr(bytes, c))) return true;
    if (LOOPBACK.some((c) => inCidr(bytes, c))) return false;
    if (DENIED.some((c) => inCidr(bytes, c))) return false;
    return !this.own.has(address);
  }
}

/** Every address of this host's interfaces. */
export function localAddresses(): string[] {
  return Object.values(os.networkInterfaces())
    .flatMap((list) => list ?? [])
    .map((i) => i.address.replace(/%.*$/, ''));
}
