import fs from 'node:fs';
import type Docker from 'dockerode';
import type { Manifest } from '@hearth/directory';
import type { RuntimeSettings } from './settings.ts';
import { appCertsDir, appContainerName, DOCKER_CERT_PATH, appDataDir, appDockerCertsDir, appVolumeName, LABEL_APP, LABEL_DUE, LABEL_ROLE, LABEL_TASK } from './names.ts';

/** Everything the runtime needs to know about an app to run it. */
export interface RuntimeApp {
  id: string;
  domain: string;
  image: string;
  httpPort: number | undefined;
  healthCheckPath: string | undefined;
  /** bytes; the manifest's memoryLimit or DEFAULT_MEMORY_LIMIT */
  memoryLimit: number;
  tls: boolean;
  /** the addons' CLOUDRON_* variables plus the app's own (origin, domain) */
  env: [string, string][];
}

/** Cloudron's default when a manifest names no memoryLimit. */
export const DEFAULT_MEMORY_LIMIT = 256 * 1024 * 1024;

/** The image an app runs, or undefined for a services-only app. */
export const imageOf = (manifest: Manifest): string | undefined => manifest.dockerImage;

/** An installed app as the runtime sees it; `addonEnv` is what `hearth app env` prints. */
export function runtimeApp(app: { id: string; domain: string; manifest: Manifest }, addonEnv: [string, string][]): RuntimeApp | undefined {
  const image = imageOf(app.manifest);
  if (!image) return undefined;
  const m = app.manifest;
  return {
    id: app.id,
    domain: app.domain,
    image,
    httpPort: m.httpPort,
    healthCheckPath: m.healthCheckPath,
    memoryLimit: m.memoryLimit ?? DEFAULT_MEMORY_LIMIT,
    tls: 'tls' in m.addons,
    env: [['CLOUDRON', '1'], ['CLOUDRON_APP_ORIGIN', `https://${app.domain}`], ['CLOUDRON_APP_DOMAIN', app.domain], ...addonEnv],
  };
}

/** /tmp, /run (the app's own volumes, shared with its tasks), /app/data, and the read-only certificate folders. */
function mounts(dataDir: string, app: RuntimeApp): Docker.MountSettings[] {
  const list: Docker.MountSettings[] = [
    { Type: 'volume', Source: appVolumeName(app.id, 'tmp'), Target: '/tmp' },
    { Type: 'volume', Source: appVolumeName(app.id, 'run'), Target: '/run' },
    { Type: 'bind', Source: appDataDir(dataDir, app.id), Target: '/app/data' },
  ];
  if (app.tls) list.push({ Type: 'bind', Source: appCertsDir(dataDir, app.id), Target: '/etc/certs', ReadOnly: true });
  const dockerCerts = appDockerCertsDir(dataDir, app.id);
  if (fs.existsSync(dockerCerts)) list.push({ Type: 'bind', Source: dockerCerts, Target: DOCKER_CERT_PATH, ReadOnly: true });
  return list;
}

function hostConfig(dataDir: string, settings: RuntimeSettings, app: RuntimeApp): Docker.HostConfig {
  return {
    ReadonlyRootfs: true,
    // docker-init as PID 1: the app gets SIGTERM on stop (a shell or server as PID 1 would ignore it) and zombies are reaped.
    Init: true,
    Mounts: mounts(dataDir, app),
    NetworkMode: settings.network,
    Memory: app.memoryLimit,
    MemorySwap: app.memoryLimit,
    SecurityOpt: ['no-new-privileges'],
  };
}

const envList = (app: RuntimeApp): string[] => app.env.map(([k, v]) => `${k}=${v}`);

/** The app's container: the image's own command, restart policy, httpPort published on loopback off the host network. */
export function appContainerSpec(dataDir: string, settings: RuntimeSettings, app: RuntimeApp): Docker.ContainerCreateOptions {
  const host = hostConfig(dataDir, settings, app);
  host.RestartPolicy = { Name: settings.restartPolicy };
  const spec: Docker.ContainerCreateOptions = {
    name: appContainerName(app.id),
    Image: app.image,
    Env: envList(app),
    Labels: { [LABEL_APP]: app.id, [LABEL_ROLE]: 'app' },
    HostConfig: host,
  };
  if (app.httpPort && settings.network !== 'host') {
    const port = `${app.httpPort}/tcp`;
    spec.ExposedPorts = { [port]: {} };
    host.PortBindings = { [port]: [{ HostIp: '127.0.0.1', HostPort: String(app.httpPort) }] };
  }
  return spec;
}

/** One scheduler run: `sh -c <command>` from the app's image, in the app's environment and volumes. */
export function taskContainerSpec(dataDir: string, settings: RuntimeSettings, app: RuntimeApp, task: { name: string; command: string; due: Date; containerName: string }): Docker.ContainerCreateOptions {
  return {
    name: task.containerName,
    Image: app.image,
    Entrypoint: ['sh', '-c'],
    Cmd: [task.command],
    Env: envList(app),
    Labels: { [LABEL_APP]: app.id, [LABEL_ROLE]: 'task', [LABEL_TASK]: task.name, [LABEL_DUE]: task.due.toISOString() },
    HostConfig: hostConfig(dataDir, settings, app),
  };
}
