import { collectedGauge, counter, RequestMeter, secondsSince } from '@hearth/metrics';

/** SMTP's own metrics; connections are counted by the shared connection layer. */

export const deliveries = counter({
  name: 'hearth_smtp_deliveries_total',
  help: 'Delivery attempts per recipient, by outcome (delivered; deferred: a temporary failure, retried; bounced: failed for good, the sender gets a DSN; failed: failed for good, null sender) and destination (local mailbox or remote).',
  labelNames: ['outcome', 'destination'],
});

const queues = new Set<{ readonly size: number }>();
collectedGauge({ name: 'hearth_smtp_queue_messages', help: 'Messages in the delivery queue now (waiting for delivery or a retry).', labelNames: [], read: () => [[{}, [...queues].reduce((n, q) => n + q.size, 0)]] });

/** Counts this queue in hearth_smtp_queue_messages until the returned function is called. */
export function watchQueue(queue: { readonly size: number }): () => void {
  queues.add(queue);
  return () => queues.delete(queue);
}

const requests = new RequestMeter('smtp');

/**
 * Counts and times one SMTP command's handler (auth, mail, rcpt, data): ok, or the reply class
 * of its refusal (tempfail: 4xx, reject: 5xx, error: anything else).
 */
export function metered<T>(command: string, work: Promise<T>): Promise<T> {
  const start = process.hrtime.bigint();
  return work.then(
    (value) => {
      requests.observe(command, 'ok', secondsSince(start));
      return value;
    },
    (err: unknown) => {
      const code = (err as { responseCode?: number }).responseCode;
      requests.observe(command, code === undefined ? 'error' : code < 500 ? 'tempfail' : 'reject', secondsSince(start));
      throw err;
    },
  );
}

export const queueStatements = counter({
  name: 'hearth_smtp_queue_statements_total',
  help: 'Statements the PostgreSQL queue sent to the database (each one round trip; transaction BEGIN and COMMIT included). Divided by messages queued: the coordination cost of replicas.',
  labelNames: [],
});
