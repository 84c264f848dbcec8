import dns from 'node:dns';
import { authenticate, type AuthenticateResult } from 'mailauth';
import { plainAddress } from '@hearth/config';
import { removeHeaderFields } from '@hearth/message';
import { authorFields, splitAddress } from './message.ts';

/**
 * Sender authentication of mail from the internet (port 2025): SPF (RFC 7208), DKIM (RFC 6376),
 * DMARC (RFC 7489) and ARC (RFC 8617) by `mailauth`, and what we do with the answers.
 */

/** mailauth's DNS hook: dns.promises.resolve's shape. */
export type DnsResolve = (name: string, rrtype: string) => Promise<unknown>;

/** Lookups through the given servers ("ip" or "ip:port"), or the system's when none are given. */
export function dnsResolver(servers: string[]): DnsResolve {
  // bounded: a dead server must end in a temporary failure (451) well before the client's DATA timeout
  const resolver = new dns.promises.Resolver({ timeout: 3000, tries: 2 });
  if (servers.length > 0) resolver.setServers(servers);
  return (name, rrtype) => resolver.resolve(name, rrtype);
}

export interface InboundAuthOptions {
  /** our name in Authentication-Results */
  authservId: string;
  resolve: DnsResolve;
  localDomains: () => Set<string>;
  /** ARC sealers whose passing chain overrides a DMARC failure (a mailing list we trust) */
  arcTrustedSealers: Set<string>;
}

export interface InboundClient {
  ip: string;
  helo: string;
  /** MAIL FROM; '' for the null sender */
  mailFrom: string;
}

/** Results in one line each, for the operator's log. */
export interface AuthSummary {
  spf: string;
  dkim: string[];
  dmarc: string;
  arc: string;
  fromDomains: string[];
}

export type InboundVerdict =
  | { ok: true; quarantine: boolean; arcOverride: boolean; headers: string[]; summary: AuthSummary }
  | { ok: false; reply: string; why: string; summary: AuthSummary };

/** The authserv-id an Authentication-Results value starts with (RFC 8601 2.2), lower-cased; comments skipped. */
export function authservIdOf(value: string): string {
  let v = value.trimStart();
  while (v.startsWith('(')) {
    let depth = 0;
    let i = 0;
    for (; i < v.length; i++) {
      if (v[i] === '\\') i++;
      else if (v[i] === '(') depth++;
      else if (v[i] === ')' && --depth === 0) break;
    }
    v = v.slice(i + 1).trimStart();
  }
  const quoted = /^"((?:[^"\\]|\\.)*)"/.exec(v);
  if (quoted) return quoted[1]!.replace(/\\(.)/g, '$1').toLowerCase();
  return (/^[^\s;(]*/.exec(v)?.[0] ?? '').toLowerCase();
}

/**
 * RFC 8601 5: an Authentication-Results (or its obsolete twin in RFC 5451 form) that names us
 * arrived from outside and is forged; it goes before we add our own.
 */
export function stripForgedResults(raw: Buffer, authservId: string): Buffer {
  const ours = authservId.toLowerCase();
  return removeHeaderFields(raw, (name, value) => name === 'authentication-results' && authservIdOf(value) === ours);
}

/** Relaxed alignment for our own domains: the same domain, or one a subdomain of the other. */
function aligned(a: string, b: string): boolean {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  return x === y || x.endsWith(`.${y}`) || y.endsWith(`.${x}`);
}

/**
 * RFC 7489 3.1.1/3.1.2: with adkim=s (aspf=s) only a DKIM d= (an SPF-checked MAIL FROM domain)
 * identical to the From domain aligns. mailauth 4.13.3 never applies strict mode (it passes its
 * strict flag as an always-truthy `{ strict }` object and then falls back to the organizational
 * domain match), and newer releases need Node 22. So a DMARC pass is checked again here: true
 * when the record asks for strict alignment that no passing identifier has.
 */
function failsStrictAlignment(r: AuthenticateResult, fromDomain: string): boolean {
  const d = r.dmarc;
  if (!d || d.status.result !== 'pass' || !d.rr) return false;
  const tags = new Map(
    d.rr
      .split(';')
      .map((t) => t.split('='))
      .filter((kv) => kv.length === 2)
      .map(([k, v]) => [k!.trim().toLowerCase(), v!.trim().toLowerCase()]),
  );
  const from = fromDomain.toLowerCase();
  const dkimOk = tags.get('adkim') === 's' ? r.dkim.results.some((x) => x.status.result === 'pass' && x.signingDomain?.toLowerCase() === from) : !!d.alignment.dkim.result;
  const spfOk = tags.get('aspf') === 's' ? !!r.spf && r.spf.status.result === 'pass' && r.spf.domain.toLowerCase() === from : !!d.alignment.spf.result;
  return !dkimOk && !spfOk;
}

function summarise(r: AuthenticateResult, fromDomains: string[]): AuthSummary {
  return {
    spf: r.spf ? `${r.spf.status.result} (${r.spf.domain})` : 'none',
    dkim: r.dkim.results.map((d) => (d.signingDomain ? `${d.status.result} (d=${d.signingDomain}${d.status.comment ? `: ${String(d.status.comment)}` : ''})` : d.status.result)),
    dmarc: r.dmarc ? `${r.dmarc.status.result}${r.dmarc.policy ? ` p=${r.dmarc.policy}` : ''} (${r.dmarc.domain})` : 'none',
    arc: r.arc ? `${r.arc.status.result}${r.arc.i ? ` i=${r.arc.i}` : ''}` : 'none',
    fromDomains,
  };
}

/** The d= of the newest ARC-Seal: who vouches for the chain. */
function arcSealer(r: AuthenticateResult): string | null {
  const chain: unknown = r.arc ? r.arc.chain : undefined;
  if (!Array.isArray(chain) || chain.length === 0) return null;
  const d = (chain.at(-1) as { 'arc-seal'?: { parsed?: { d?: { value?: string } } } })['arc-seal']?.parsed?.d?.value;
  return d ? d.toLowerCase() : null;
}

/**
 * Checks one received message (as the client sent it) and decides:
 * - DMARC fail with p=reject: refused (550 5.7.1);
 * - DMARC fail with p=quarantine: accepted for the recipients' Junk folder;
 * - a From in one of our domains without an aligned DKIM or SPF pass: refused (550 5.7.1);
 *   our users send through submission, so such mail is a forgery of a local sender;
 * - a passing ARC chain sealed by a trusted sealer lifts the two failures above;
 * - a DNS failure that could change the outcome: 451 4.7.0, so the sender retries and nothing is lost.
 */
export async function authenticateInbound(raw: Buffer, client: InboundClient, o: InboundAuthOptions): Promise<InboundVerdict> {
  const r = await authenticate(raw, {
    ip: plainAddress(client.ip),
    helo: client.helo,
    sender: client.mailFrom,
    mta: o.authservId,
    resolver: o.resolve as never,
    disableBimi: true,
  });
  const fromDomains = [...new Set(authorFields(raw).from.flat().map((m) => splitAddress(m.address)?.domain ?? ''))].filter(Boolean);
  const strictFail = r.dmarc && fromDomains.length === 1 && failsStrictAlignment(r, fromDomains[0]!);
  if (strictFail && r.dmarc) r.dmarc.status.result = 'fail';
  const summary = summarise(r, fromDomains);
  const spfResult = r.spf ? r.spf.status.result : 'none';
  const dmarcResult = r.dmarc ? r.dmarc.status.result : 'none';
  const temporary = spfResult === 'temperror' || r.dkim.results.some((d) => d.status.result === 'temperror');
  const sealer = arcSealer(r);
  const arcTrusted = !!r.arc && r.arc.status.result === 'pass' && sealer !== null && o.arcTrustedSealers.has(sealer);
  const retry = (why: string): InboundVerdict => ({ ok: false, reply: '451 4.7.0 temporary DNS failure while authenticating the sender; try again later', why, summary });
  // a DNS failure could have turned a refusal into a pass: ask the sender to come back instead
  const refuse = (reply: string, why: string): InboundVerdict => (temporary ? retry(`${why}, after a DNS failure`) : { ok: false, reply, why, summary });

  if (dmarcResult === 'temperror') return retry('DMARC policy lookup failed');

  let arcOverride = false;
  let quarantine = false;
  if (r.dmarc && dmarcResult === 'fail') {
    if (arcTrusted) arcOverride = true;
    else if (r.dmarc.policy === 'reject') return refuse(`550 5.7.1 message rejected by the DMARC policy of ${r.dmarc.domain}`, `DMARC fail, p=reject (${r.dmarc.domain})`);
    else if (r.dmarc.policy === 'quarantine') quarantine = true;
  }

  const local = o.localDomains();
  for (const domain of fromDomains) {
    if (!local.has(domain)) continue;
    const dkimOk = r.dkim.results.some((d) => d.status.result === 'pass' && aligned(d.signingDomain, domain));
    const spfOk = !!r.spf && spfResult === 'pass' && aligned(r.spf.domain, domain);
    if (dkimOk || spfOk) continue;
    if (arcTrusted) {
      arcOverride = true;
      continue;
    }
    return refuse(`550 5.7.1 From <…@${domain}> is a local domain but the message is not authenticated for it; local users send through submission`, `unauthenticated From in local domain ${domain}`);
  }
  if (quarantine && temporary) return retry('DMARC fail, p=quarantine, after a DNS failure');

  // mailauth's headers: Received-SPF and our Authentication-Results, CRLF-joined, folded
  const headers = r.headers
    .split(/\r\n(?![ \t])/)
    .filter((h) => h.length > 0)
    .map((h) => (strictFail && /^authentication-results:/i.test(h) ? h.replace(/\bdmarc=pass\b/, 'dmarc=fail (strict alignment)') : h));
  return { ok: true, quarantine, arcOverride, headers, summary };
}
