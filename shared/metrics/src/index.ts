import type http from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The one Prometheus registry of a daemon process. Every library and service defines its
 * metrics here (names by Prometheus conventions: units in the name, `_total` counters); the
 * daemon serves it at /metrics (shared/daemon). Labels stay bounded: protocol, command,
 * outcome, app id — never a user name or an address.
 */
export const registry = new Registry();

/** Lower-case protocol label from a name like "IMAP" or "ManageSieve". */
const protocolLabel = (name: string): string => name.toLowerCase();

const requests = new Counter({
  name: 'hearth_requests_total',
  help: 'Requests handled, by protocol, command (HTTP: route) and outcome (the protocol-level result: ok, no, bad, err, an LDAP result name, an HTTP status class).',
  labelNames: ['protocol', 'command', 'outcome'],
  registers: [registry],
});
const requestSeconds = new Histogram({
  name: 'hearth_request_duration_seconds',
  help: 'Time from a request being taken up to its response being handed to the connection, by protocol and command (HTTP: route).',
  labelNames: ['protocol', 'command'],
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});

/** Counts and times one protocol's requests. */
export class RequestMeter {
  readonly protocol: string;
  constructor(protocol: string) {
    this.protocol = protocolLabel(protocol);
  }

  /** `command` and `outcome` must come from a bounded set (the protocol maps anything else to "other"). */
  observe(command: string, outcome: string, seconds: number): void {
    requests.inc({ protocol: this.protocol, command, outcome });
    requestSeconds.observe({ protocol: this.protocol, command }, seconds);
  }
}

/** Seconds since a `process.hrtime.bigint()` reading. */
export const secondsSince = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e9;

const connectionsOpen = new Gauge({ name: 'hearth_connections_open', help: 'Client connections open now, by protocol.', labelNames: ['protocol'], registers: [registry] });
const connectionsTotal = new Counter({ name: 'hearth_connections_total', help: 'Client connections accepted, by protocol.', labelNames: ['protocol'], registers: [registry] });
const connectionsRefused = new Counter({
  name: 'hearth_connections_refused_total',
  help: 'Client connections turned away by the connection caps, by protocol and reason (full: the daemon is at its limit; address: that client address is).',
  labelNames: ['protocol', 'reason'],
  registers: [registry],
});

/** Connection counts of one protocol: the open gauge and the accepted/refused counters move together. */
export class ConnectionMeter {
  readonly protocol: string;
  constructor(protocol: string) {
    this.protocol = protocolLabel(protocol);
    // present from the start, so a scrape shows 0 rather than nothing
    connectionsOpen.inc({ protocol: this.protocol }, 0);
    connectionsTotal.inc({ protocol: this.protocol }, 0);
  }
  opened(): void {
    connectionsTotal.inc({ protocol: this.protocol });
    connectionsOpen.inc({ protocol: this.protocol });
  }
  closed(): void {
    connectionsOpen.dec({ protocol: this.protocol });
  }
  refused(reason: string): void {
    connectionsRefused.inc({ protocol: this.protocol, reason });
  }
}

/** HTTP status class as an outcome label: "2xx", "4xx", … */
const statusClass = (status: number): string => `${Math.floor(status / 100)}xx`;

/**
 * Counts an HTTP server's connections and its requests by route (from `route`, which must map
 * every request to a bounded set of names) and status class, with their latency. One extra
 * listener per event; the server's own handlers stay as they are.
 */
export function instrumentHttp(server: http.Server, route: (req: http.IncomingMessage) => string): void {
  const meter = new RequestMeter('http');
  const connections = new ConnectionMeter('http');
  server.on('connection', (socket: import('node:net').Socket) => {
    connections.opened();
    socket.once('close', () => connections.closed());
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const start = process.hrtime.bigint();
    // decided now: handlers may rewrite req.url on the way
    const command = route(req);
    res.once('close', () => meter.observe(command, res.writableFinished ? statusClass(res.statusCode) : 'aborted', secondsSince(start)));
  });
}

interface CollectedOptions {
  name: string;
  help: string;
  labelNames: string[];
  read: () => Iterable<[Record<string, string>, number]>;
}

/** Options for a metric whose values are replaced at each scrape by what `read` says. */
function collected<M extends { reset(): void }>(opts: CollectedOptions, write: (metric: M, labels: Record<string, string>, value: number) => void) {
  return {
    name: opts.name,
    help: opts.help,
    labelNames: opts.labelNames,
    registers: [registry],
    collect(this: M) {
      this.reset();
      for (const [labels, value] of opts.read()) write(this, labels, value);
    },
  };
}

/**
 * A counter whose values are read at scrape time from plain numbers the code keeps (hot paths
 * such as TURN's relay increment a number, never a prom-client call).
 */
export function collectedCounter(opts: CollectedOptions): void {
  new Counter(collected<Counter>(opts, (m, labels, value) => m.inc(labels, value)));
}

/** A gauge read at scrape time, e.g. a queue's length. */
export function collectedGauge(opts: CollectedOptions): void {
  new Gauge(collected<Gauge>(opts, (m, labels, value) => m.set(labels, value)));
}

/** A counter registered in the daemon's registry, for events counted where they happen. */
export function counter<L extends string>(opts: { name: string; help: string; labelNames: readonly L[] }): Counter<L> {
  return new Counter({ ...opts, labelNames: [...opts.labelNames], registers: [registry] });
}

/** Maps a value to itself when it is one of `known`, else to "other": keeps a label's set bounded. */
export function bounded(known: ReadonlySet<string>, value: string | null | undefined): string {
  return value && known.has(value) ? value : 'other';
}
