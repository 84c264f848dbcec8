import { z } from 'zod';
import { parseEnv } from '@hearth/config';

export interface RuntimeSettings {
  /** Docker network app and task containers join; "host" shares the host's (tests, single-host installs) */
  network: string;
  restartPolicy: 'no' | 'always' | 'unless-stopped' | 'on-failure';
  /** how long a scheduler task may run before the next due run kills it (the seed's 30 minutes) */
  schedulerGraceSeconds: number;
  /** how often the runtime daemon looks for changed tls certificates */
  certPollSeconds: number;
}

const schema = z.object({
  HEARTH_APP_NETWORK: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/, 'must be a Docker network name such as host or hearth')
    .default('host'),
  HEARTH_APP_RESTART_POLICY: z.enum(['no', 'always', 'unless-stopped', 'on-failure']).default('unless-stopped'),
  HEARTH_SCHEDULER_GRACE_SECONDS: z.coerce.number().int().min(1).max(7 * 24 * 3600).default(30 * 60),
  HEARTH_CERT_POLL_SECONDS: z.coerce.number().min(0.1).max(3600).default(10),
});

/** The runtime's settings (the engine itself is HearthConfig.dockerHost), validated once; a bad value is a ConfigError naming the variable. */
export function runtimeSettings(env: NodeJS.ProcessEnv = process.env): RuntimeSettings {
  const e = parseEnv(schema, env);
  return {
    network: e.HEARTH_APP_NETWORK,
    restartPolicy: e.HEARTH_APP_RESTART_POLICY,
    schedulerGraceSeconds: e.HEARTH_SCHEDULER_GRACE_SECONDS,
    certPollSeconds: e.HEARTH_CERT_POLL_SECONDS,
  };
}
