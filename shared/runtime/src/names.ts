import fs from 'node:fs';
import path from 'node:path';

/** Labels on every container and volume Hearth creates; uninstall removes everything with hearth.app=<id>. */
export const LABEL_APP = 'hearth.app';
/** app (the app itself), task (a scheduler run) or child (created by the app through the docker addon) */
export const LABEL_ROLE = 'hearth.role';
export const LABEL_TASK = 'hearth.task';
/** the minute a scheduler run was due, ISO 8601 */
export const LABEL_DUE = 'hearth.due';

export type ContainerRole = 'app' | 'task' | 'child';

export const appContainerName = (appId: string): string => `hearth-app-${appId}`;
export const appVolumeName = (appId: string, dir: 'tmp' | 'run'): string => `hearth-app-${appId}-${dir}`;

export const appDir = (dataDir: string, appId: string): string => path.join(dataDir, 'apps', appId);
/** /app/data (the localstorage addon's folder) */
export const appDataDir = (dataDir: string, appId: string): string => path.join(appDir(dataDir, appId), 'data');
/** /etc/certs (the tls addon's tls_cert.pem and tls_key.pem) */
export const appCertsDir = (dataDir: string, appId: string): string => path.join(appDir(dataDir, appId), 'certs');
/** Where the app finds the docker addon's client certificate (Docker's DOCKER_CERT_PATH layout), read-only. */
export const DOCKER_CERT_PATH = '/etc/docker-certs';
/** DOCKER_CERT_PATH on the host: ca.pem, cert.pem, key.pem, written by the docker addon's provisioning */
export const appDockerCertsDir = (dataDir: string, appId: string): string => path.join(appDir(dataDir, appId), 'docker-certs');

export const labelFilter = (appId: string, role?: ContainerRole): { label: string[] } => ({
  label: [`${LABEL_APP}=${appId}`, ...(role ? [`${LABEL_ROLE}=${role}`] : [])],
});

/** Removes one of the app's folders, and the app's folder too once nothing else is in it. */
export function removeAppFolder(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  try {
    fs.rmdirSync(path.dirname(dir));
  } catch {
    // not empty (another addon's files) or already gone
  }
}
