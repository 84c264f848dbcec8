import { METRICS_PORTS, metricsUrl, type HearthConfig } from '@hearth/config';
import { scrapeService, type ServiceStatus } from '@hearth/metrics/scrape';
import { sumOf } from '@hearth/metrics/text';
import type { Command } from './commands.ts';
import { printJson, printTable } from './output.ts';

/** Nothing answers: no stack running here, or metrics are off. */
export class StatusError extends Error {}

/** 3725 s -> "1h 2m" */
function duration(seconds: number | null): string {
  if (seconds === null) return '';
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : m ? `${m}m ${seconds % 60}s` : `${seconds}s`;
}

/** The counters an operator looks at first, per service. */
function keyCounters(s: ServiceStatus): string {
  const x = s.samples;
  const has = (name: string): boolean => x.some((v) => v.name === name);
  const parts: string[] = [];
  if (has('hearth_smtp_queue_messages')) {
    const d = (outcome: string): number => sumOf(x, 'hearth_smtp_deliveries_total', { outcome });
    parts.push(`queue ${sumOf(x, 'hearth_smtp_queue_messages')}`, `delivered ${d('delivered')}`, `deferred ${d('deferred')}`, `bounced ${d('bounced')}`);
  }
  if (has('hearth_turn_allocations')) parts.push(`allocations ${sumOf(x, 'hearth_turn_allocations')}`, `relayed ${Math.round(sumOf(x, 'hearth_turn_relayed_bytes_total') / 1024)} KiB`);
  if (has('hearth_oidc_grants_total')) parts.push(`grants ${sumOf(x, 'hearth_oidc_grants_total', { outcome: 'ok' })}`);
  if (has('hearth_proxyauth_requests_total')) parts.push(`allowed ${sumOf(x, 'hearth_proxyauth_requests_total', { decision: 'allow' })}`, `denied ${sumOf(x, 'hearth_proxyauth_requests_total') - sumOf(x, 'hearth_proxyauth_requests_total', { decision: 'allow' })}`);
  return parts.join(', ');
}

/** Every daemon with a metrics port, by the name its setting uses (ldapMetrics -> ldap). */
export const metricsServices = (): string[] => METRICS_PORTS.map((p) => p.slice(0, -'Metrics'.length));

export async function serviceStatuses(config: HearthConfig): Promise<ServiceStatus[]> {
  return Promise.all(metricsServices().map((service) => scrapeService(service, metricsUrl(config, service))));
}

export const STATUS_COMMANDS: Command[] = [
  {
    path: ['status'],
    usage: '[--json]',
    args: 0,
    async run({ config, values }) {
      if (!config.metrics.enabled) throw new StatusError('metrics are off (HEARTH_METRICS=off), and status reads each service from its metrics endpoint');
      const all = await serviceStatuses(config);
      if (!all.some((s) => s.up)) throw new StatusError(`no Hearth service answers on this host (is "npm start" running? ldap's metrics would be at ${metricsUrl(config, 'ldap') ?? 'a port picked at start'})`);
      if (values.json) {
        return printJson(
          all.map((s) => ({
            service: s.service,
            url: s.url,
            up: s.up,
            error: s.error,
            version: s.version,
            uptimeSeconds: s.uptimeSeconds,
            logins: { ok: sumOf(s.samples, 'hearth_logins_total', { outcome: 'ok' }), failed: sumOf(s.samples, 'hearth_logins_total') - sumOf(s.samples, 'hearth_logins_total', { outcome: 'ok' }) },
            connectionsOpen: sumOf(s.samples, 'hearth_connections_open'),
            metrics: s.samples,
          })),
        );
      }
      printTable(
        all.map((s) => {
          const ok = sumOf(s.samples, 'hearth_logins_total', { outcome: 'ok' });
          return {
            service: s.service,
            status: s.up ? 'up' : `down (${s.error})`,
            version: s.version,
            uptime: duration(s.uptimeSeconds),
            logins: s.up ? `${ok} ok, ${sumOf(s.samples, 'hearth_logins_total') - ok} failed` : '',
            connections: s.up ? `${sumOf(s.samples, 'hearth_connections_open')} open, ${sumOf(s.samples, 'hearth_connections_total')} total` : '',
            requests: s.up ? sumOf(s.samples, 'hearth_requests_total') : '',
            other: keyCounters(s),
          };
        }),
        ['service', 'status', 'version', 'uptime', 'logins', 'connections', 'requests', 'other'],
      );
    },
  },
];
