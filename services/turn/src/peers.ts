import net from 'node:net';
import os from 'node:os';
import { ipBytes } from './stun-codec.ts';

/**
 * Which peers an allocation may reach. A TURN relay must not become a way into the
 * server's own network: loopback, private (RFC 1918, fc00::/7), link-local, multicast,
 * unspecified and the server's own addresses are refused unless allowed explicitly.
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

const LOOPBACK = ['127.0.0.0/8', '::1/128'].map(parseCidr);
const DENIED = [
  '0.0.0.0/8', // unspecified / "this network"
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '169.254.0.0/16',
  '224.0.0.0/4', // multicast
  '240.0.0.0/4', // reserved, incl. broadcast
  '::/128',
  'fc00::/7',
  'fe80::/10',
  'ff00::/8',
].map(parseCidr);

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
    let bytes = ipBytes(address, family);
    // An IPv4-mapped IPv6 peer is judged as the IPv4 address it carries.
    if (family === 6 && bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) bytes = bytes.subarray(12);
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
