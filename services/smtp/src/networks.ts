import { addressMatcher } from '@hearth/config';

/** CIDR allow-list (like Postfix's mynetworks); empty matches nothing. */
export interface NetworkList {
  readonly cidrs: string[];
  has(address: string): boolean;
}

/** Parses "127.0.0.1/32, 10.0.0.0/8 ::1/128" (comma or space separated); throws on a bad range. */
export function parseNetworks(spec: string): NetworkList {
  const cidrs = spec.split(/[\s,]+/).filter(Boolean);
  return { cidrs, has: addressMatcher(cidrs) };
}
