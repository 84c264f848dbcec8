import { parseEnv } from '@hearth/config';
import { z } from 'zod';

/** Settings only the docker proxy has; parsed once at start. */
export interface DockerProxySettings {
  /**
   * The one network mode children may have; a create that names none (or "default") gets it.
   * "none" by default; "host" for tests on machines without a bridge; or the app network's name.
   */
  networkMode: string;
  /** largest request body (a container create) accepted, in bytes */
  maxBodyBytes: number;
}

const schema = z.object({
  HEARTH_DOCKER_PROXY_NETWORK: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'must be none, host, bridge or a network name (not container:…)')
    .default('none'),
  HEARTH_DOCKER_PROXY_MAX_BODY_KB: z.coerce.number().int().min(1).max(65536).default(1024),
});

export function loadDockerProxySettings(env: NodeJS.ProcessEnv = process.env): DockerProxySettings {
  const e = parseEnv(schema, env);
  return { networkMode: e.HEARTH_DOCKER_PROXY_NETWORK, maxBodyBytes: e.HEARTH_DOCKER_PROXY_MAX_BODY_KB * 1024 };
}
