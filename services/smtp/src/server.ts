import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import { SMTPServer, type SMTPServerAddress, type SMTPServerAuthentication, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import type { DaemonContext, RunningService } from '@hearth/daemon';
import { ConnectionPool, listenAll, type ListenerSpec } from '@hearth/lineserver';
import { MailStore } from '@hearth/mailstore';
import { loadTls } from '@hearth/tls';
import { DkimKeys, signedDomains } from './dkim.ts';
import { Delivery, type MxRecord, type MxResolver } from './delivery.ts';
import { authenticateInbound, dnsResolver, stripForgedResults, type AuthSummary, type InboundAuthOptions } from './inbound-auth.ts';
import { authorFields, ensureIdentity, inspectBody, prependHeaders, receivedHeader, splitAddress, type BodyProblem } from './message.ts';
import { checkAuthorFields, checkEnvelopeSender, type Sender } from './policy.ts';
import { metered } from './metrics.ts';
import { Queue } from './queue.ts';
import { openQueueStore } from './queue-backend.ts';
import { localRecipient } from './recipient.ts';
import { RateLimiter, SharedRateLimiter, type RateLimit } from './ratelimit.ts';
import { loadSmtpSettings, type SmtpSettings } from './settings.ts';
import { newQueueId } from './spool.ts';

export interface SmtpOptions {
  settings?: SmtpSettings;
  /** tests: where "the MX" of a domain is, and its port */
  resolveMx?: MxResolver;
  mxPort?: number;
}

export interface RunningSmtp extends RunningService {
  ports: { smtp: number; smtps: number; smtpInbound: number };
  queue: Queue;
}

type ListenerKind = 'submission' | 'mx';

interface SessionInfo {
  kind: ListenerKind;
  trusted: boolean;
}

/** What the connection layer knows of one SMTP connection. */
interface Wire {
  /** the socket to speak on: the accepted one, then the TLS one after STARTTLS */
  socket: net.Socket;
  /** handlers the client is waiting for (AUTH, end of DATA): its silence is not idleness */
  pending: number;
}

class SmtpReply extends Error {
  readonly responseCode: number;
  /** what the operator's log says beside the reply */
  readonly detail: Record<string, unknown>;
  constructor(reply: string, detail: Record<string, unknown> = {}) {
    const m = /^(\d{3}) (.*)$/s.exec(reply);
    super(m ? m[2]! : reply);
    this.responseCode = m ? Number(m[1]) : 550;
    this.detail = detail;
  }
}

/** at shutdown, how long sessions may finish what they are doing */
const CLOSE_TIMEOUT_MS = 2000;

const BODY_REPLIES: Record<BodyProblem, string> = {
  nul: '550 5.6.0 message contains NUL bytes',
  'bare-lf': '550 5.6.0 bare LF in message; lines must end with CRLF',
  'bare-cr': '550 5.6.0 bare CR in message; lines must end with CRLF',
  'long-line': '550 5.6.0 message line too long',
};

/**
 * The three SMTP listeners over one queue: 2525 (apps and users, AUTH without TLS, no
 * STARTTLS), 2465 (the same over implicit TLS) and 2025 (inbound MX: local recipients only).
 */
export async function startSmtp(ctx: DaemonContext, opts: SmtpOptions = {}): Promise<RunningSmtp> {
  const { config, directory, logger } = ctx;
  const settings = opts.settings ?? loadSmtpSettings();
  const tls = await loadTls(config);
  const store = new MailStore(config.dataDir, settings.quota);
  const dkim = new DkimKeys(config.dataDir);

  let domains: Set<string> | null = null;
  const localDomains = (): Set<string> => {
    domains ??= signedDomains(config, directory);
    return domains;
  };
  const unsubscribe = directory.onChange(() => {
    domains = null;
  });
  // keys exist before the first message needs one, so `hearth mail dkim` shows what we sign with
  for (const d of localDomains()) dkim.forDomain(d);

  const resolve = dnsResolver(settings.dnsServers);
  const inboundAuth: InboundAuthOptions = { authservId: settings.authservId ?? config.hostname, resolve, localDomains, arcTrustedSealers: settings.arcTrustedSealers };

  const localOf = (address: string) => localRecipient(directory, address, settings.recipientDelimiter);
  // the queue delivers through `delivery`, and Sieve's redirects and replies go back onto the queue
  const delivery = new Delivery({
    directory,
    store,
    dkim,
    localDomains,
    hostname: config.hostname,
    relay: settings.relay,
    relayInsecureTls: settings.relayInsecureTls,
    concurrency: settings.deliveryConcurrency,
    resolveMx: opts.resolveMx ?? (async (d) => (await resolve(d, 'MX')) as MxRecord[]),
    mxPort: opts.mxPort,
    recipientDelimiter: settings.recipientDelimiter,
    enqueue: async (from, to, raw, id) => {
      await queue.enqueue(from, [{ address: to, local: localOf(to) !== null }], raw, id, true);
    },
    logger,
  });
  const queue = new Queue(await openQueueStore(config, { leaseMs: settings.queueLeaseMs, logger }), delivery, {
    retryDelaysMs: settings.retryDelaysMs,
    maxAgeMs: settings.maxQueueAgeMs,
    concurrency: settings.deliveryConcurrency,
    hostname: config.hostname,
    postmaster: `MAILER-DAEMON@${config.domain}`,
    logger,
    isLocal: (a) => localOf(a) !== null,
  });
  await queue.start();

  // with Redis every replica counts in the same windows; alone, memory is enough
  const limit = (namespace: string, perMinute: number): RateLimit => (config.redisUrl ? new SharedRateLimiter(directory.counters, namespace, perMinute) : new RateLimiter(perMinute));
  const perSender = limit('smtp-sender', settings.ratePerSender);
  const perIp = limit('smtp-ip', settings.ratePerIp);
  const sessions = new Map<string, SessionInfo>();
  let buffered = 0;

  const wires = new Map<string, Wire>();
  /** marks the session as waiting for us while `work` runs */
  const waiting = <T>(session: SMTPServerSession, work: Promise<T>): Promise<T> => {
    const wire = wires.get(session.id);
    if (!wire) return work;
    wire.pending++;
    return work.finally(() => wire.pending--);
  };

  const senderOf = (session: SMTPServerSession): Sender | null => (session.user as Sender | undefined) ?? null;
  /** Who is sending, for the log: the app id or the username (never a secret). */
  const loginOf = (sender: Sender | null): string | null => (!sender ? null : sender.kind === 'app' ? `app:${sender.appId}` : (directory.userById(sender.userId)?.username ?? sender.userId));

  async function onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession): Promise<Sender> {
    if (auth.method !== 'PLAIN' && auth.method !== 'LOGIN') throw new SmtpReply('504 5.5.4 unsupported authentication mechanism');
    const login = auth.username ?? '';
    const password = auth.password ?? '';
    const remote = session.remoteAddress;
    if (!login || !password) throw new SmtpReply('535 5.7.8 authentication credentials invalid');
    // the sendmail username names an app; anything else is a user login
    if (directory.appByCredential('sendmail', login)) {
      const app = await directory.authenticateApp({ addon: 'sendmail', login, password, protocol: 'smtp', remote });
      if (!app) throw new SmtpReply('535 5.7.8 authentication credentials invalid');
      return { kind: 'app', appId: app.id };
    }
    const r = await directory.authenticate({ login, password, protocol: 'smtp', remote });
    if (r.ok) return { kind: 'user', userId: r.user.id };
    if (r.reason === 'throttled') throw new SmtpReply('454 4.7.0 too many failed logins; try again later');
    throw new SmtpReply('535 5.7.8 authentication credentials invalid');
  }

  async function onMailFrom(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const info = sessions.get(session.id);
    if (!info) throw new SmtpReply('421 4.3.0 session lost');
    const sender = senderOf(session);
    if (info.kind === 'submission') {
      if (sender) {
        const v = checkEnvelopeSender(directory, sender, address.address);
        if (!v.ok) throw new SmtpReply(v.reason);
      } else if (!info.trusted) {
        throw new SmtpReply('530 5.7.0 authentication required');
      }
    }
    if (!info.trusted && !(await perIp.take(session.remoteAddress))) throw new SmtpReply('451 4.7.1 too many messages from your address; slow down');
    if (sender && !(await perSender.take(sender.kind === 'app' ? `app:${sender.appId}` : `user:${sender.userId}`))) throw new SmtpReply('451 4.7.1 sending rate limit reached; try again later');
  }

  /** A full mailbox is a temporary failure the sending MTA retries (RFC 3463 4.2.2); we never bounce what we refused. */
  async function refuseIfFull(address: string, bytes: number, copies = 1): Promise<void> {
    if (copies > 0 && !(await store.hasRoom(address, bytes, copies))) throw new SmtpReply('452 4.2.2 mailbox full; try again later');
  }

  async function onRcptTo(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const info = sessions.get(session.id);
    if (!info) throw new SmtpReply('421 4.3.0 session lost');
    const parts = splitAddress(address.address);
    if (!parts) throw new SmtpReply('553 5.1.3 bad recipient address syntax');
    const local = localOf(address.address);
    if (local) {
      // MAIL FROM's SIZE= when the client declared it
      const mailFrom = session.envelope.mailFrom;
      const declared = (mailFrom && Number((mailFrom.args as { SIZE?: string }).SIZE)) || 0;
      return refuseIfFull(local.mailbox, declared);
    }
    if (info.trusted || (info.kind === 'submission' && senderOf(session))) return;
    if (localDomains().has(parts.domain)) throw new SmtpReply('550 5.1.1 no such user here');
    throw new SmtpReply('550 5.7.1 relaying denied');
  }

  async function onData(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const info = sessions.get(session.id);
    const chunks: Buffer[] = [];
    let size = 0;
    let held = 0;
    let starved = false;
    try {
      await new Promise<void>((resolve, reject) => {
        stream.on('data', (c: Buffer) => {
          size += c.length;
          if (size > settings.maxMessageSize || starved) return;
          // many large messages at once must not exhaust memory: later ones get a temporary error
          if (buffered + c.length > settings.maxBufferedBytes) {
            starved = true;
            return;
          }
          chunks.push(c);
          held += c.length;
          buffered += c.length;
        });
        stream.on('end', resolve);
        stream.on('error', reject);
      });
      if (!info) throw new SmtpReply('421 4.3.0 session lost');
      if (stream.sizeExceeded || size > settings.maxMessageSize) throw new SmtpReply(`552 5.3.4 message exceeds the size limit of ${settings.maxMessageSize} bytes`);
      if (starved) throw new SmtpReply('452 4.3.1 insufficient system resources; try again later');
      return await accept(Buffer.concat(chunks), info, session);
    } finally {
      buffered -= held;
    }
  }

  async function accept(received: Buffer, info: SessionInfo, session: SMTPServerSession): Promise<string> {
    let raw = received;
    const problem = inspectBody(raw, settings.maxLineLength);
    if (problem) throw new SmtpReply(BODY_REPLIES[problem]);
    const sender = senderOf(session);
    const rcpts = session.envelope.rcptTo.map((r) => ({ address: r.address, local: localOf(r.address) !== null }));
    const id = newQueueId();
    const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    if (info.kind === 'submission') raw = ensureIdentity(raw, config.domain);
    let quarantine = false;
    let auth: AuthSummary | undefined;
    if (info.kind === 'mx') {
      // only we may say what we found: a copy naming us came from outside (RFC 8601 5)
      raw = stripForgedResults(raw, inboundAuth.authservId);
      // our own networks relay like submission (mynetworks); the rest of the internet is checked
      if (!info.trusted) {
        const verdict = await authenticateInbound(received, { ip: session.remoteAddress, helo: session.hostNameAppearsAs, mailFrom: from }, inboundAuth);
        auth = verdict.summary;
        if (!verdict.ok) throw new SmtpReply(verdict.reply, { why: verdict.why, auth });
        raw = prependHeaders(raw, verdict.headers);
        quarantine = verdict.quarantine;
        if (verdict.arcOverride) logger.info({ id, auth, remote: session.remoteAddress }, 'authentication failure overridden by a trusted ARC sealer');
      }
    }
    const protocol = `ESMTP${session.secure ? 'S' : ''}${sender ? 'A' : ''}`;
    raw = prependHeaders(raw, [
      receivedHeader({ heloName: session.hostNameAppearsAs, remoteAddress: session.remoteAddress, byHost: config.hostname, protocol, queueId: id, recipient: rcpts.length === 1 ? rcpts[0]!.address : null }),
    ]);
    // checked as stored and signed, so no reader can find another author than the one checked
    if (sender) {
      const v = checkAuthorFields(directory, sender, authorFields(raw));
      if (!v.ok) throw new SmtpReply(v.reason);
    }
    for (const r of rcpts) {
      const local = localOf(r.address);
      // as many copies as the recipient's Sieve script would store (fileinto A, fileinto B, keep: three)
      if (local) await refuseIfFull(local.mailbox, raw.length, await delivery.storedCopies(r.address, from, raw));
    }
    try {
      await queue.enqueue(from, rcpts, raw, id, false, { quarantine });
    } catch (err) {
      logger.error({ err }, 'cannot spool message');
      throw new SmtpReply('451 4.3.0 cannot queue the message right now; try again later');
    }
    logger.info({ id, from, rcpts: rcpts.length, size: raw.length, login: loginOf(sender), remote: session.remoteAddress, ...(auth ? { auth, quarantine } : {}) }, 'message accepted');
    return `2.0.0 Ok: queued as ${id}`;
  }

  /** smtp-server's callback style around async handlers; nothing escapes as an exception. A refusal of mail is logged with who and why. */
  const reply = (err: unknown, cb: (e?: Error | null) => void, session?: SMTPServerSession, refused: { from?: string; rcpt?: string } = {}): void => {
    if (err instanceof SmtpReply) {
      const from = refused.from ?? (session?.envelope.mailFrom ? session.envelope.mailFrom.address : null);
      if (session) logger.info({ from, ...refused, login: loginOf(senderOf(session)), remote: session.remoteAddress, reply: `${err.responseCode} ${err.message}`, ...err.detail }, 'mail refused');
      return cb(err);
    }
    // the client went away mid-DATA: nothing to answer, nothing wrong here
    if ((err as { code?: string }).code === 'ECONNECTION') logger.debug({ err }, 'client left during DATA');
    else logger.error({ err }, 'smtp handler error');
    cb(new SmtpReply('451 4.3.0 internal error'));
  };

  function makeServer(kind: ListenerKind, secure: boolean): SMTPServer {
    const base: SMTPServerOptions = {
      name: config.hostname,
      banner: 'Hearth ESMTP',
      secure,
      key: tls.key,
      cert: tls.cert,
      size: settings.maxMessageSize,
      // connection caps and idle handling are the shared layer's (see below); this is only a backstop
      maxRecipients: settings.maxRecipients,
      socketTimeout: settings.connections.idleTimeoutMs * 2,
      closeTimeout: CLOSE_TIMEOUT_MS,
      disableReverseLookup: true,
      logger: false,
      authOptional: true,
      onConnect(session, cb) {
        sessions.set(session.id, { kind, trusted: settings.trustedNetworks.has(session.remoteAddress) });
        cb();
      },
      onClose(session) {
        sessions.delete(session.id);
      },
      onSecure(socket, session, cb) {
        const wire = wires.get(session.id);
        if (wire) wire.socket = socket;
        cb();
      },
      onMailFrom(address, session, cb) {
        metered('mail', onMailFrom(address, session)).then(
          () => cb(),
          (err: unknown) => reply(err, cb, session, { from: address.address }),
        );
      },
      onRcptTo(address, session, cb) {
        waiting(session, metered('rcpt', onRcptTo(address, session))).then(
          () => cb(),
          (err: unknown) => reply(err, cb, session, { rcpt: address.address }),
        );
      },
      onData(stream, session, cb) {
        waiting(session, metered('data', onData(stream, session))).then(
          (msg) => cb(null, msg),
          (err) => {
            stream.resume();
            reply(err, cb, session);
          },
        );
      },
    };
    const perKind: SMTPServerOptions =
      kind === 'mx'
        ? { disabledCommands: ['AUTH'] }
        : {
            authMethods: ['PLAIN', 'LOGIN'],
            allowInsecureAuth: true,
            // the seed: apps authenticate on 2525 without TLS and are not offered STARTTLS
            ...(secure ? {} : { hideSTARTTLS: true, disabledCommands: ['STARTTLS'] }),
            onAuth(auth, session, cb) {
              waiting(session, metered('auth', onAuth(auth, session))).then(
                (user) => cb(null, { user }),
                (err) => reply(err, cb as (e?: Error | null) => void),
              );
            },
          };
    const server = new SMTPServer({ ...base, ...perKind });
    // a client's broken TLS or socket: that client's problem only
    server.on('error', (err) => logger.debug({ err, kind }, 'smtp connection error'));
    return server;
  }

  // smtp-server speaks SMTP; the shared layer owns the sockets: listeners, caps (global and per
  // address), idle and lifetime timeouts are the same code as for IMAP, POP3 and LDAP.
  const pool = new ConnectionPool(settings.connections, { logger, protocol: 'SMTP' });
  const servers = { submission: makeServer('submission', false), submissionTls: makeServer('submission', true), mx: makeServer('mx', false) };
  const listeners = await listenAll<ListenerSpec & { server: SMTPServer }>({
    host: config.listen,
    tls,
    listeners: [
      { scheme: 'smtp', port: config.ports.smtp, implicitTls: false, server: servers.submission },
      { scheme: 'smtps', port: config.ports.smtps, implicitTls: true, server: servers.submissionTls },
      { scheme: 'smtp', port: config.ports.smtpInbound, implicitTls: false, note: '(inbound MX)', server: servers.mx },
    ],
    onConnection(socket, listener) {
      const wire: Wire = { socket, pending: 0 };
      const slot = pool.admit(socket, {
        // RFC 5321 4.3.2: 421 as the greeting, then close
        refusal: (reason) => `421 4.7.0 ${config.hostname} too many connections${reason === 'address' ? ' from your address' : ''}, try again later\r\n`,
        onIdle: () => new Promise<void>((resolve) => wire.socket.write(`421 4.4.2 ${config.hostname} idle timeout, closing connection\r\n`, () => resolve())),
        busy: () => wire.pending > 0,
      });
      if (!slot) return;
      const id = randomBytes(10).toString('hex');
      wires.set(id, wire);
      socket.once('close', () => wires.delete(id));
      listener.server.connect(socket, { id });
    },
  });
  const [smtpPort, smtpsPort, inboundPort] = listeners.ports as [number, number, number];
  return {
    ports: { smtp: smtpPort, smtps: smtpsPort, smtpInbound: inboundPort },
    queue,
    endpoints: listeners.endpoints,
    async close() {
      unsubscribe();
      const stopped = listeners.close();
      // smtp-server lets sessions finish for closeTimeout, then says 421 and closes them
      const all = Object.values(servers);
      for (const s of all) s.close();
      for (let waited = 0; waited < CLOSE_TIMEOUT_MS + 500 && all.some((s) => s.connections.size > 0); waited += 50) await new Promise((r) => setTimeout(r, 50));
      pool.closeAll();
      await stopped;
      await queue.close();
      delivery.close();
    },
  };
}
