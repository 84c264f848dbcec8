import type { HearthConfig } from '@hearth/config';
import type { Directory } from '@hearth/directory';
import type { Logger } from '@hearth/log';
import { serveLines, type LineSession, type RequestResult } from '@hearth/lineserver';
import { MailStore } from '@hearth/mailstore';
import { loadTls } from '@hearth/tls';
import { HeaderCache } from './header-cache.ts';
import { continuation } from './imap-encoder.ts';
import { CommandFramer, DEFAULT_LIMITS, type FrameEvent, type LiteralBudget } from './imap-parser.ts';
import { Session } from './session.ts';
import { loadImapSettings, type ImapSettings } from './settings.ts';

export interface ImapServerOptions {
  config: HearthConfig;
  directory: Directory;
  logger: Logger;
  store?: MailStore;
  settings?: ImapSettings;
  /** override config.ports (tests pass 0) */
  ports?: { imap: number; imaps: number };
}

export interface RunningImap {
  endpoints: string[];
  ports: { imap: number; imaps: number };
  close(): Promise<void>;
}

/** before login, a silent client is dropped soon; after it the idle timeout setting applies */
const PREAUTH_TIMEOUT_MS = 60_000;
const MAX_QUEUED = 32;
/** literal bytes buffered over all connections at once (APPENDs beyond it are refused until others finish) */
const LITERAL_BUDGET = 512 * 1024 * 1024;

/** IMAP on the STARTTLS port and IMAPS (implicit TLS), both over the shared mail store. */
export async function startImap(opts: ImapServerOptions): Promise<RunningImap> {
  const { config, directory, logger } = opts;
  const settings = opts.settings ?? loadImapSettings();
  const store = opts.store ?? new MailStore(config.dataDir, settings.quota);
  const material = await loadTls(config);
  const headers = new HeaderCache();
  let literalBytes = 0;
  const budget: LiteralBudget = {
    take: (n) => {
      if (literalBytes + n > LITERAL_BUDGET) return false;
      literalBytes += n;
      return true;
    },
    give: (n) => {
      literalBytes -= n;
    },
  };

  const server = await serveLines<FrameEvent, LineSession<FrameEvent>>({
    host: config.listen,
    tls: material,
    listeners: [
      { scheme: 'imap', port: opts.ports?.imap ?? config.ports.imap, implicitTls: false },
      { scheme: 'imaps', port: opts.ports?.imaps ?? config.ports.imaps, implicitTls: true },
    ],
    limits: settings.connections,
    logger,
    protocol: {
      name: 'IMAP',
      // RFC 5530 UNAVAILABLE: the client may try again later
      refusal: (reason) => `* BYE [UNAVAILABLE] Too many connections${reason === 'address' ? ' from your address' : ''}\r\n`,
      framer: () => new CommandFramer({ ...DEFAULT_LIMITS, maxAppendLiteral: settings.maxMessageBytes }, budget),
      maxQueued: MAX_QUEUED,
      discard: (ev) => {
        if (ev.type === 'command') budget.give(ev.reserved);
      },
      session(io) {
        const session = new Session({ directory, store, logger, settings, tlsAvailable: true, headers }, io);
        io.setIdleTimeout(PREAUTH_TIMEOUT_MS);
        return {
          get closed() {
            return session.closed;
          },
          greeting: () => session.greeting(),
          async handle(ev) {
            let result: RequestResult | undefined;
            if (ev.type === 'command') result = await session.handle(ev.parts).finally(() => budget.give(ev.reserved));
            else if (ev.type === 'continue') {
              // a command the session can already answer (a bad CATENATE URL) gets its tagged answer instead of "+"
              result = await session.beforeLiteral(ev.parts);
              if (result) ev.drop();
              else await io.write(continuation('Ready for literal data'));
            }
            else if (ev.type === 'reject') await session.rejected(ev.tag, ev.text, ev.tooBig);
            else await session.bye(ev.text);
            io.setIdleTimeout(session.state === 'notauth' ? PREAUTH_TIMEOUT_MS : settings.connections.idleTimeoutMs);
            return result;
          },
          idle: () => session.bye('Autologout; idle for too long'),
          recheck: () => session.recheck(),
          shutdown: () => session.bye('Server shutting down'),
          end: () => session.end(),
        };
      },
    },
  });
  const unwatch = server.recheckOn(directory);
  return {
    endpoints: server.endpoints,
    ports: { imap: server.ports[0]!, imaps: server.ports[1]! },
    close: async () => {
      unwatch();
      await server.close();
    },
  };
}
