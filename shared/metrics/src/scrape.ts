import { parseMetricsText, type Sample } from './text.ts';

/** What a daemon's metrics endpoint says about it right now: the one source of its version and uptime. */
export interface ServiceStatus {
  service: string;
  url: string | null;
  up: boolean;
  error: string | null;
  version: string | null;
  uptimeSeconds: number | null;
  samples: Sample[];
}

const SCRAPE_TIMEOUT_MS = 3000;

/** `url`: the daemon's /metrics (metricsUrl in @hearth/config), null when its port is picked at start. */
export async function scrapeService(service: string, url: string | null): Promise<ServiceStatus> {
  const down = (error: string): ServiceStatus => ({ service, url, up: false, error, version: null, uptimeSeconds: null, samples: [] });
  if (!url) return down('metrics port is 0 (picked at start); set its HEARTH_<SERVICE>_METRICS_PORT');
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
    if (!res.ok) return down(`HTTP ${res.status}`);
    const samples = parseMetricsText(await res.text());
    const build = samples.find((s) => s.name === 'hearth_build_info');
    const started = samples.find((s) => s.name === 'process_start_time_seconds');
    return {
      service,
      url,
      up: true,
      error: null,
      version: build?.labels.version ?? null,
      uptimeSeconds: started ? Math.max(0, Math.round(Date.now() / 1000 - started.value)) : null,
      samples,
    };
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return down(cause === 'ECONNREFUSED' ? 'not running' : (err as Error).name === 'TimeoutError' ? 'no answer' : (err as Error).message);
  }
}
