import net from 'node:net';

/**
 * The key one client's connections are counted under: the IPv4 address (also when a dual-stack
 * socket reports it as ::ffff:a.b.c.d), or the /64 of an IPv6 address, since one host usually
 * owns a whole /64 and could otherwise take a fresh share from each of its addresses.
 */
export function addressKey(remote: string | undefined): string {
  if (!remote) return 'unknown';
  const v4 = remote.startsWith('::ffff:') ? remote.slice(7) : remote;
  if (net.isIPv4(v4)) return v4;
  if (!net.isIPv6(remote)) return remote;
  const [head = '', tail = ''] = remote.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = remote.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}
