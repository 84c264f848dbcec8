import type { HearthConfig } from '@hearth/config';
import type { Directory } from '@hearth/directory';
import { serveLines } from '@hearth/lineserver';
import type { Logger } from '@hearth/log';
import { MailStore } from '@hearth/mailstore';
import { loadTls } from '@hearth/tls';
import { SieveFramer, response, type SieveRequest } from './sieve-codec.ts';
import { SieveSession } from './session.ts';
import { loadManageSieveSettings, type ManageSieveSettings } from './settings.ts';

export interface ManageSieveOptions {
  config: HearthConfig;
  directory: Directory;
  logger: Logger;
  settings?: ManageSieveSettings;
  port?: number;
}

export interface RunningManageSieve {
  endpoints: string[];
  port: number;
  close(): Promise<void>;
}

const MAX_QUEUED = 16;

/** ManageSieve (RFC 5804) on 4190: STARTTLS, then SASL PLAIN/LOGIN, over the scripts beside each Maildir. */
export async function startManageSieve(opts: ManageSieveOptions): Promise<RunningManageSieve> {
  const { config, directory, logger } = opts;
  const settings = opts.settings ?? loadManageSieveSettings();
  const store = new MailStore(config.dataDir);
  const server = await serveLines<SieveRequest, SieveSession>({
    host: config.listen,
    tls: await loadTls(config),
    listeners: [{ scheme: 'sieve', port: opts.port ?? config.ports.sieve, implicitTls: false }],
    limits: settings.connections,
    logger,
    protocol: {
      name: 'ManageSieve',
      refusal: (reason) => response('BYE', `Too many connections${reason === 'address' ? ' from your address' : ''}`, 'TRYLATER'),
      // a literal may hold a script at the size limit plus quoting slack; anything bigger is refused unread
      framer: () => new SieveFramer(settings.limits.maxSize + 1024),
      maxQueued: MAX_QUEUED,
      session: (io) => new SieveSession({ directory, store, logger, limits: settings.limits, tlsAvailable: true }, io),
    },
  });
  const unwatch = server.recheckOn(directory);
  return {
    endpoints: server.endpoints,
    port: server.ports[0]!,
    close: async () => {
      unwatch();
      await server.close();
    },
  };
}
