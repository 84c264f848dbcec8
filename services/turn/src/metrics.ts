import { collectedCounter, collectedGauge } from '@hearth/metrics';
import type { Counters } from './allocations.ts';

/**
 * TURN's metrics, read at scrape time from the plain counters the server keeps: the relay's hot
 * path only adds to numbers, it never calls into prom-client.
 */

type Stats = Counters & { allocationsActive: number };
const servers = new Set<{ stats(): Stats }>();

/** Counts this server in the metrics until the returned function is called. */
export function watchTurn(server: { stats(): Stats }): () => void {
  servers.add(server);
  return () => servers.delete(server);
}

const sum = (key: keyof Stats): number => [...servers].reduce((n, s) => n + s.stats()[key], 0);
const total = (name: string, help: string, key: keyof Counters): void => collectedCounter({ name, help, labelNames: [], read: () => [[{}, sum(key)]] });

collectedGauge({ name: 'hearth_turn_allocations', help: 'TURN allocations open now.', labelNames: [], read: () => [[{}, sum('allocationsActive')]] });
total('hearth_turn_allocations_total', 'TURN allocations created.', 'allocationsCreated');
const byDirection = (name: string, help: string, toPeer: keyof Counters, toClient: keyof Counters): void =>
  collectedCounter({
    name,
    help,
    labelNames: ['direction'],
    read: () => [
      [{ direction: 'to_peer' }, sum(toPeer)],
      [{ direction: 'to_client' }, sum(toClient)],
    ],
  });
byDirection('hearth_turn_relayed_bytes_total', 'Payload bytes relayed, by direction (to_peer: from clients to their peers; to_client: from peers back).', 'bytesToPeer', 'bytesToClient');
byDirection('hearth_turn_relayed_packets_total', 'Packets relayed, by direction (to_peer, to_client).', 'packetsToPeer', 'packetsToClient');
total('hearth_turn_relay_dropped_packets_total', 'Packets from peers dropped for lack of a permission or a channel.', 'relayDropped');
total('hearth_turn_auth_failures_total', 'TURN requests refused for bad credentials (stale nonces not included).', 'authFailures');
total('hearth_turn_peer_denied_total', 'Permissions or channels refused because the peer address is not allowed.', 'peerDenied');
total('hearth_turn_quota_exceeded_total', 'Allocations refused by the per-user or total quota.', 'quotaExceeded');
