/**
 * Address blocks a TURN relay never sends to by default: every block of IANA's IPv4 and IPv6
 * Special-Purpose Address Registries (RFC 6890, RFC 8190) whose "Globally Reachable" is False,
 * plus multicast and the deprecated blocks no peer can live in. Where a registry block is False
 * but holds a few globally reachable anycast service addresses (192.0.0.9 PCP, 192.0.0.10 TURN,
 * 2001:1::1-3, AMT, AS112 in 2001::/23), the whole block is denied: those are services, never a
 * WebRTC peer. IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4) are judged by that
 * address in peers.ts.
 */

export const DENIED_IPV4: readonly string[] = [
  '0.0.0.0/8', // "this host on this network" (RFC 1122)
  '10.0.0.0/8', // private use (RFC 1918)
  '100.64.0.0/10', // shared address space, carrier-grade NAT and cloud metadata 100.100.100.200 (RFC 6598)
  '169.254.0.0/16', // link local (RFC 3927)
  '172.16.0.0/12', // private use (RFC 1918)
  '192.0.0.0/24', // IETF protocol assignments: DS-Lite, 192.0.0.8, NAT64 discovery 192.0.0.170/31 (RFC 6890)
  '192.0.2.0/24', // documentation TEST-NET-1 (RFC 5737)
  '192.88.99.0/24', // deprecated 6to4 relay anycast (RFC 7526)
  '192.168.0.0/16', // private use (RFC 1918)
  '198.18.0.0/15', // benchmarking (RFC 2544)
  '198.51.100.0/24', // documentation TEST-NET-2 (RFC 5737)
  '203.0.113.0/24', // documentation TEST-NET-3 (RFC 5737)
  '224.0.0.0/4', // multicast (RFC 5771)
  '240.0.0.0/4', // reserved, and limited broadcast 255.255.255.255/32 (RFC 1112, RFC 919)
];

export const LOOPBACK_IPV4 = '127.0.0.0/8'; // RFC 1122
export const LOOPBACK_IPV6 = '::1/128'; // RFC 4291

export const DENIED_IPV6: readonly string[] = [
  '::/96', // unspecified ::/128 and the deprecated IPv4-compatible addresses (RFC 4291)
  '64:ff9b:1::/48', // local-use IPv4/IPv6 translation (RFC 8215)
  '100::/64', // discard-only (RFC 6666)
  '100:0:0:1::/64', // dummy prefix (RFC 9780)
  '2001::/23', // IETF protocol assignments: Teredo 2001::/32, benchmarking 2001:2::/48, ORCHID (RFC 2928)
  '2001:db8::/32', // documentation (RFC 3849)
  '3fff::/20', // documentation (RFC 9637)
  '5f00::/16', // SRv6 SIDs (RFC 9602)
  'fc00::/7', // unique local (RFC 4193)
  'fe80::/10', // link-local unicast (RFC 4291)
  'fec0::/10', // deprecated site-local (RFC 3879)
  'ff00::/8', // multicast (RFC 4291)
];

/** IPv6 prefixes whose addresses carry an IPv4 address, and where: judged as that IPv4 address. */
export const IPV4_CARRIERS: readonly { prefix: string; v4Offset: number }[] = [
  { prefix: '::ffff:0:0/96', v4Offset: 12 }, // IPv4-mapped (RFC 4291)
  { prefix: '64:ff9b::/96', v4Offset: 12 }, // well-known NAT64 prefix (RFC 6052)
  { prefix: '2002::/16', v4Offset: 2 }, // 6to4 (RFC 3056)
];
