import fs from 'node:fs';
import { metricsUrl, type HearthConfig } from '@hearth/config';
import { scrapeService } from '@hearth/metrics/scrape';
import { portAccepts, SERVICES, supervisorStatusFile, type SupervisorStatus } from '@hearth/supervisor/services';

/**
 * The status page's view of every daemon: is each port open now, how often the supervisor restarted it, and
 * the version the running daemon reports in its metrics (as `hearth status` shows it), not the one on disk:
 * a daemon still running an old build after an upgrade shows its own.
 */

export interface ServiceStatus {
  name: string;
  up: boolean;
  restarts: number | null;
  version: string;
  endpoints: string[];
}

const PROBE_TIMEOUT_MS = 1000;

function readSupervisorStatus(config: HearthConfig): SupervisorStatus | null {
  try {
    return JSON.parse(fs.readFileSync(supervisorStatusFile(config.dataDir), 'utf8')) as SupervisorStatus;
  } catch {
    return null;
  }
}

/** `probeHost`: an address, "{service}" for each daemon's own host name, or null for the listen address. */
export async function serviceStatus(config: HearthConfig, probeHost: string | null): Promise<ServiceStatus[]> {
  const local = ['0.0.0.0', '::', ''].includes(config.listen) ? '127.0.0.1' : config.listen;
  const supervisor = readSupervisorStatus(config);
  return Promise.all(
    SERVICES.map(async (s) => {
      // TURN's main port is UDP and TCP; the TCP side answers the probe.
      const host = probeHost === '{service}' ? s.name : (probeHost ?? local);
      const [ups, scraped] = await Promise.all([Promise.all(s.ports.map((p) => portAccepts(host, config.ports[p], PROBE_TIMEOUT_MS))), scrapeService(s.name, metricsUrl(config, s.name))]);
      return { name: s.name, up: ups.every(Boolean), restarts: supervisor?.services[s.name]?.restarts ?? null, version: scraped.version ?? '?', endpoints: s.endpoints(config) };
    }),
  );
}
