import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport';
import type SMTPPool from 'nodemailer/lib/smtp-pool';
import type { Directory } from '@hearth/directory';
import type { Logger } from '@hearth/log';
import { encodeMutf7, MailStoreError, normalizeFolderName, type IngestOptions, type MailStore } from '@hearth/mailstore';
import { decideVacation, VacationLog, type SieveAction } from '@hearth/sieve';
import type { DkimKeys, DkimSigningKey } from './dkim.ts';
import { headerValues } from '@hearth/message';
import { fromDomain, prependHeaders, splitAddress } from './message.ts';
import { localRecipient } from './recipient.ts';
import { sieveActions, sieveMessage, vacationReply } from './sieve-delivery.ts';
import type { Deliverer, Outcome } from './queue.ts';
import type { RelayHost } from './settings.ts';
import type { QueueEnvelope } from './spool.ts';

export interface MxRecord {
  exchange: string;
  priority: number;
}

export type MxResolver = (domain: string) => Promise<MxRecord[]>;

export interface DeliveryOptions {
  directory: Directory;
  store: MailStore;
  dkim: DkimKeys;
  /** domains we sign for */
  localDomains: () => Set<string>;
  hostname: string;
  relay: RelayHost | null;
  relayInsecureTls: boolean;
  concurrency: number;
  /** the MX lookup, through HEARTH_SMTP_DNS_SERVERS */
  resolveMx: MxResolver;
  /** port used when delivering to an MX (25; tests point it at a sink) */
  mxPort?: number;
  /** Postfix's recipient_delimiter (user+detail@domain) */
  recipientDelimiter: string;
  /** puts a message Sieve makes (redirect, vacation reply) on the queue; an id already spooled is not queued twice */
  enqueue: (from: string, to: string, raw: Buffer, id: string) => Promise<void>;
  logger: Logger;
}

/** RFC 5321 §6.3 / Postfix's hopcount_limit: a message with more Received fields is looping */
const MAX_HOPS = 50;

interface SmtpError extends Error {
  code?: string;
  responseCode?: number;
  response?: string;
  rejectedErrors?: SmtpError[];
  recipient?: string;
}

/** RFC 3463 status from a reply like "550 5.1.1 no such user"; falls back to the reply's class. */
function statusOf(err: SmtpError): string {
  const m = /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})/.exec(err.response ?? '');
  if (m) return m[1]!;
  return (err.responseCode ?? 0) >= 500 ? '5.0.0' : '4.0.0';
}

function outcomeOf(err: SmtpError, remoteMta: string | null): Outcome {
  const code = err.responseCode ?? 0;
  return { ok: false, permanent: code >= 500 && code < 600, status: statusOf(err), message: (err.response ?? err.message).slice(0, 500), remoteMta };
}

/**
 * nodemailer's own sockets keep Nagle on: the small final segment of each message then waits
 * for the receiver's delayed ACK (~40 ms per message). So we connect with no-delay and hand
 * it the socket. When that fails we hand it a fresh socket to connect (and fail) by itself:
 * a getSocket error would leave a dead slot in its pool and stall every later message.
 */
function getSocket(options: { host?: string; port?: number }, callback: (err: Error | null, socketOptions?: { connection: net.Socket } | { socket: net.Socket }) => void): void {
  const socket = net.connect({ host: options.host, port: options.port ?? 25, noDelay: true });
  const timer = setTimeout(() => socket.destroy(new Error('connection timeout')), 30_000);
  socket.once('connect', () => {
    clearTimeout(timer);
    socket.removeListener('error', fail);
    callback(null, { connection: socket });
  });
  const fail = (): void => {
    clearTimeout(timer);
    callback(null, { socket: new net.Socket() });
  };
  socket.once('error', fail);
}

/** What every onward SMTP connection (smarthost or MX) shares: timeouts, no file/URL access, our socket factory. */
const ONWARD_SMTP = {
  connectionTimeout: 30_000,
  greetingTimeout: 30_000,
  socketTimeout: 300_000,
  disableFileAccess: true,
  disableUrlAccess: true,
  getSocket,
} as const;

/** Delivers queued messages: into the Maildir for local mailboxes, over SMTP for the rest. */
export class Delivery implements Deliverer {
  private readonly smarthost: nodemailer.Transporter<SMTPPool.SentMessageInfo> | null;
  constructor(private readonly o: DeliveryOptions) {
    if (o.relay) {
      const pool: SMTPPool.Options & { maxRequeues: number } = {
        pool: true,
        maxConnections: o.concurrency,
        maxMessages: 1000,
        host: o.relay.host,
        port: o.relay.port,
        secure: o.relay.secure,
        auth: o.relay.user ? { user: o.relay.user, pass: o.relay.pass ?? '' } : undefined,
        name: o.hostname,
        tls: { rejectUnauthorized: !o.relayInsecureTls },
        ...ONWARD_SMTP,
        // a connection dropped mid-message would be requeued inside the pool without end;
        // failing it hands the retry to the queue, with its backoff
        maxRequeues: 0,
      };
      this.smarthost = nodemailer.createTransport(pool);
    } else {
      this.smarthost = null;
    }
  }

  close(): void {
    this.smarthost?.close();
  }

  async deliverLocal(env: QueueEnvelope, address: string, raw: Buffer): Promise<Outcome> {
    const rcpt = localRecipient(this.o.directory, address, this.o.recipientDelimiter);
    if (!rcpt) return { ok: false, permanent: true, status: '5.1.1', message: '550 5.1.1 mailbox no longer exists' };
    const mailbox = rcpt.mailbox;
    // a message that already passed through this mailbox is looping (Postfix counts Delivered-To the same way)
    const looping = headerValues(raw, 'delivered-to').some((v) => v.trim().toLowerCase() === address.toLowerCase()) || headerValues(raw, 'received').length > MAX_HOPS;
    const stamped = prependHeaders(raw, [`Return-Path: <${env.from}>`, `Delivered-To: ${address}`]);
    const actions = await sieveActions(this.o.store, { mailbox, rcpt: address, delimiter: this.o.recipientDelimiter }, stamped, env.from, this.o.logger);
    const reject = actions.find((a) => a.kind === 'reject');
    if (reject) return { ok: false, permanent: true, status: '5.7.1', message: `550 5.7.1 ${reject.reason.replace(/[\r\n]+/g, ' ').slice(0, 400)}` };
    let redirects = actions.filter((a) => a.kind === 'redirect');
    const targets = await this.storeTargets(mailbox, actions, this.o.logger);
    // DMARC p=quarantine: one copy in Junk whatever folders the script chose (reject, discard and redirect still apply)
    if (env.quarantine && targets.length) targets.splice(0, targets.length, { folder: 'Junk', create: true, flags: targets[0]!.flags });
    if (looping && redirects.length) {
      // no redirect of a looping message: it stays here instead, so nothing is lost and the loop ends
      this.o.logger.warn({ id: env.id, address, redirects: redirects.map((r) => r.address) }, 'sieve redirect skipped: mail loop; message kept in INBOX');
      redirects = [];
      if (targets.length === 0) targets.push({});
    }
    try {
      // every copy or none (RFC 5228 §2.10.6): a failure leaves nothing behind and the queue retries
      if (targets.length) await this.o.store.ingestAll(mailbox, stamped, targets);
    } catch (err) {
      // filled up after we accepted the message: the queue retries, as for any temporary failure
      if (err instanceof MailStoreError && err.code === 'overquota') return { ok: false, permanent: false, status: '4.2.2', message: '452 4.2.2 mailbox full' };
      throw err;
    }
    const index = env.rcpts.findIndex((r) => r.address === address);
    // numbered ids: a retried attempt does not queue the same redirect twice while it is spooled
    for (const [n, r] of redirects.entries()) {
      // the envelope sender stays the original one (Pigeonhole's sieve_redirect_envelope_from = sender; no SRS)
      await this.o.enqueue(env.from, r.address, stamped, `${env.id}.S${index}R${n + 1}`);
      this.o.logger.info({ id: env.id, address, to: r.address }, 'sieve redirect queued');
    }
    const vacation = actions.find((a) => a.kind === 'vacation');
    if (vacation) await this.vacation(env, address, mailbox, stamped, vacation, `${env.id}.S${index}V`);
    return { ok: true, via: 'mailbox' };
  }

  /**
   * How many copies the recipient's Sieve script would store (keep, fileinto), so SMTP can check
   * the quota for all of them at DATA and answer 452 while the client still holds the message.
   * The script runs again at delivery; this run only counts (its log lines are dropped).
   */
  async storedCopies(address: string, envelopeFrom: string, raw: Buffer): Promise<number> {
    const rcpt = localRecipient(this.o.directory, address, this.o.recipientDelimiter);
    if (!rcpt) return 1;
    const quiet = this.o.logger.child({}, { level: 'silent' });
    const stamped = prependHeaders(raw, [`Return-Path: <${envelopeFrom}>`, `Delivered-To: ${address}`]);
    const actions = await sieveActions(this.o.store, { mailbox: rcpt.mailbox, rcpt: address, delimiter: this.o.recipientDelimiter }, stamped, envelopeFrom, quiet);
    return (await this.storeTargets(rcpt.mailbox, actions, quiet)).length;
  }

  /** keep and fileinto as the mail store's targets: one per folder (RFC 5228 §2.10.3), a folder that does not exist (and no :create) means INBOX, as Pigeonhole does. */
  private async storeTargets(mailbox: string, actions: SieveAction[], logger: Logger): Promise<IngestOptions[]> {
    const byFolder = new Map<string, IngestOptions & { flags: string[] }>();
    const account = await this.o.store.open(mailbox);
    for (const a of actions) {
      if (a.kind !== 'keep' && a.kind !== 'fileinto') continue;
      let folder = 'INBOX';
      let create = false;
      if (a.kind === 'fileinto') {
        try {
          // Sieve names folders in UTF-8; the store keeps IMAP's modified UTF-7
          const name = normalizeFolderName(encodeMutf7(a.folder));
          if (a.create || name === 'INBOX' || (await account.exists(name))) [folder, create] = [name, a.create];
          else logger.warn({ address: mailbox, folder: a.folder }, 'sieve fileinto: no such folder; message kept in INBOX');
        } catch (err) {
          if (!(err instanceof MailStoreError)) throw err;
          logger.warn({ address: mailbox, folder: a.folder, reason: err.message }, 'sieve fileinto failed; message kept in INBOX');
        }
      }
      const known = byFolder.get(folder);
      if (known) known.flags = [...new Set([...known.flags, ...a.flags])];
      else byFolder.set(folder, { folder, create, flags: [...a.flags] });
    }
    return [...byFolder.values()];
  }

  /** RFC 5230: a reply once per :days per sender and handle, through the queue, from the null sender (RFC 3834 §3.3). Never fails the delivery. */
  private async vacation(env: QueueEnvelope, address: string, mailbox: string, raw: Buffer, action: Extract<SieveAction, { kind: 'vacation' }>, id: string): Promise<void> {
    try {
      const own = [address, mailbox];
      const owner = this.o.directory.mailbox(mailbox);
      if (owner) {
        for (const m of this.o.directory.mailboxesOf(owner.ownerType, owner.ownerId)) own.push(m.address);
        const user = owner.ownerType === 'user' ? this.o.directory.userById(owner.ownerId) : undefined;
        if (user?.email) own.push(user.email);
      }
      const decision = decideVacation(sieveMessage(raw, env.from, address), action, own);
      if (!decision.send) {
        this.o.logger.info({ id: env.id, address, reason: decision.reason }, 'vacation: no reply');
        return;
      }
      if (!(await new VacationLog(this.o.store.mailboxPath(mailbox)).claim(action.handle, decision.to, action.days))) {
        this.o.logger.info({ id: env.id, address, reason: `already answered within ${action.days} days` }, 'vacation: no reply');
        return;
      }
      await this.o.enqueue('', decision.to, vacationReply(raw, action, decision.from, decision.to), id);
      this.o.logger.info({ id: env.id, address, to: decision.to }, 'vacation reply queued');
    } catch (err) {
      this.o.logger.warn({ err, id: env.id, address }, 'vacation reply failed');
    }
  }

  /**
   * After a crash between the Maildir rename and the queue's record of it: the queue ids
   * found in the first Received line of files that arrived since `sinceMs` (our own line,
   * prepended when we accepted the message), in INBOX and every folder (a script may have filed
   * it anywhere). A delivery of several copies that the crash cut short is rolled back first
   * (MailStore.rollBackInterrupted), so it is not found and goes again, once, whole.
   * One pass per mailbox, however many are pending.
   */
  async deliveredIds(address: string, sinceMs: number): Promise<Set<string>> {
    const found = new Set<string>();
    let root: string;
    let mailbox: string;
    try {
      mailbox = localRecipient(this.o.directory, address, this.o.recipientDelimiter)?.mailbox ?? address;
      root = this.o.store.mailboxPath(mailbox);
    } catch {
      return found;
    }
    await this.o.store.rollBackInterrupted(mailbox);
    const since = Math.floor(sinceMs / 1000) - 1;
    const buf = Buffer.alloc(8192);
    const folders = (await fs.promises.readdir(root, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory() && /^\.[^.]/.test(e.name)).map((e) => path.join(root, e.name));
    for (const dir of [root, ...folders]) {
      for (const sub of ['new', 'cur']) {
        let names: string[];
        try {
          names = await fs.promises.readdir(path.join(dir, sub));
        } catch {
          continue;
        }
        for (const name of names) {
          // Maildir names start with the delivery time in seconds
          if (!(Number.parseInt(name, 10) >= since)) continue;
          const fh = await fs.promises.open(path.join(dir, sub, name), 'r').catch(() => null);
          if (!fh) continue;
          try {
            const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
            const first = headerValues(buf.subarray(0, bytesRead), 'received')[0];
            const id = first && /\(Hearth\)(?: with \S+)? id ([A-Z0-9.-]+)/.exec(first)?.[1];
            if (id) found.add(id);
          } finally {
            await fh.close();
          }
        }
      }
    }
    return found;
  }

  /** The signing key for the domain of the message's one From (the one submission checked) when it is ours; never the envelope's. */
  private dkimFor(raw: Buffer): DkimSigningKey | undefined {
    const domain = fromDomain(raw);
    if (!domain || !this.o.localDomains().has(domain)) return undefined;
    try {
      return this.o.dkim.forDomain(domain);
    } catch (err) {
      this.o.logger.warn({ err, domain }, 'no DKIM key; sending unsigned');
      return undefined;
    }
  }

  async deliverRemote(env: QueueEnvelope, addresses: string[], raw: Buffer): Promise<Map<string, Outcome>> {
    const dkim = this.dkimFor(raw);
    if (this.smarthost) return (await this.send(this.smarthost, env, addresses, raw, dkim, this.o.relay!.host)).outcomes;
    const byDomain = new Map<string, string[]>();
    for (const a of addresses) {
      const d = splitAddress(a)?.domain ?? '';
      const list = byDomain.get(d);
      if (list) list.push(a);
      else byDomain.set(d, [a]);
    }
    const out = new Map<string, Outcome>();
    await Promise.all(
      [...byDomain].map(async ([domain, rcpts]) => {
        for (const [a, o] of await this.sendToMx(domain, env, rcpts, raw, dkim)) out.set(a, o);
      }),
    );
    return out;
  }

  private async mxHosts(domain: string): Promise<string[] | Outcome> {
    try {
      const mx = await this.o.resolveMx(domain);
      // RFC 7505 null MX: the domain accepts no mail
      if (mx.length === 1 && mx[0]!.exchange === '') return { ok: false, permanent: true, status: '5.1.10', message: `${domain} accepts no mail (null MX)` };
      if (mx.length > 0) return [...mx].sort((a, b) => a.priority - b.priority).map((m) => m.exchange);
      return [domain];
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENODATA') return [domain]; // no MX: the domain's own address (RFC 5321 5.1)
      if (code === 'ENOTFOUND') return { ok: false, permanent: true, status: '5.1.2', message: `domain ${domain} does not exist` };
      return { ok: false, permanent: false, status: '4.4.3', message: `DNS lookup for ${domain} failed: ${code ?? (err as Error).message}` };
    }
  }

  private async sendToMx(domain: string, env: QueueEnvelope, rcpts: string[], raw: Buffer, dkim: DkimSigningKey | undefined): Promise<Map<string, Outcome>> {
    const all = (o: Outcome): Map<string, Outcome> => new Map(rcpts.map((a) => [a, o]));
    const hosts = await this.mxHosts(domain);
    if (!Array.isArray(hosts)) return all(hosts);
    let last: Outcome = { ok: false, permanent: false, status: '4.4.1', message: `no MX host of ${domain} reachable` };
    for (const host of hosts) {
      const transport = nodemailer.createTransport({
        host,
        port: this.o.mxPort ?? 25,
        name: this.o.hostname,
        // opportunistic STARTTLS between MTAs: a certificate we cannot check still beats cleartext
        tls: { rejectUnauthorized: false },
        ...ONWARD_SMTP,
      } satisfies SMTPTransport.Options);
      try {
        const { outcomes, unreachable } = await this.send(transport, env, rcpts, raw, dkim, host);
        // no SMTP conversation: try the next MX; any SMTP reply is the answer
        if (unreachable) {
          last = unreachable;
          continue;
        }
        return outcomes;
      } finally {
        transport.close();
      }
    }
    return all(last);
  }

  private async send(
    transport: nodemailer.Transporter<SMTPTransport.SentMessageInfo | SMTPPool.SentMessageInfo>,
    env: QueueEnvelope,
    rcpts: string[],
    raw: Buffer,
    dkim: DkimSigningKey | undefined,
    remoteMta: string,
  ): Promise<{ outcomes: Map<string, Outcome>; unreachable: Outcome | null }> {
    const out = new Map<string, Outcome>();
    let unreachable: Outcome | null = null;
    try {
      const info = await transport.sendMail({ envelope: { from: env.from, to: rcpts }, raw, dkim });
      const rejected = new Map<string, SmtpError>();
      for (const e of ((info as { rejectedErrors?: SmtpError[] }).rejectedErrors ?? [])) if (e.recipient) rejected.set(e.recipient, e);
      for (const a of rcpts) {
        const e = rejected.get(a);
        out.set(a, e ? outcomeOf(e, remoteMta) : { ok: true, via: remoteMta });
      }
    } catch (err) {
      const e = err as SmtpError;
      if (e.rejectedErrors?.length) {
        const byRcpt = new Map(e.rejectedErrors.map((r) => [r.recipient, r]));
        for (const a of rcpts) out.set(a, outcomeOf(byRcpt.get(a) ?? e, remoteMta));
      } else if (e.responseCode) {
        for (const a of rcpts) out.set(a, outcomeOf(e, remoteMta));
      } else {
        unreachable = { ok: false, permanent: false, status: '4.4.1', message: `${remoteMta}: ${e.code ?? 'error'} ${e.message}`.slice(0, 500), remoteMta };
        for (const a of rcpts) out.set(a, unreachable);
      }
    }
    return { outcomes: out, unreachable };
  }
}
