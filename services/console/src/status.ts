import fs from 'node:fs';
import path from 'node:path';
import type { HearthConfig } from '@hearth/config';
import { portAccepts, REPO_ROOT, SERVICES, supervisorStatusFile, type SupervisorStatus } from '@hearth/supervisor/services';

/** The status page's view of every daemon: is each port open now, how often the supervisor restarted it, which version. */

export interface ServiceStatus {
  name: string;
  up: boolean;
  restarts: number | null;
  version: string;
  endpoints: string[];
}

const PROBE_TIMEOUT_MS = 1000;

function versionOf(name: string): string {
  try {
    return String((JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'services', name, 'package.json'), 'utf8')) as { version?: string }).version ?? '?');
  } catch {
    return '?';
  }
}

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
      const ups = await Promise.all(s.ports.map((p) => portAccepts(host, config.ports[p], PROBE_TIMEOUT_MS)));
      return { name: s.name, up: ups.every(Boolean), restarts: supervisor?.services[s.name]?.restarts ?? null, version: versionOf(s.name), endpoints: s.endpoints(config) };
    }),
  );
}
