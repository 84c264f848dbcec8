import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { withoutCookies } from '@hearth/web';
import { Agent, type Dispatcher } from 'undici';

/**
 * Forwarding to an app's upstream: streamed bodies both ways, WebSocket (any Upgrade)
 * tunnels, pooled keep-alive connections (undici's: 10-20 % less CPU per request than node's
 * http client in a bare proxy on this machine), hop-by-hop headers dropped, the gateway's own cookies
 * and any client-sent identity or X-Forwarded headers removed before the gateway's own are added.
 */

export interface Identity {
  username: string;
  email: string;
  name: string;
  groups: string[];
}

export interface Forwarded {
  for: string;
  proto: 'http' | 'https';
  host: string;
  /** the peer is in HEARTH_TRUSTED_PROXIES */
  fromTrustedProxy: boolean;
}

/** An app's upstream URL, taken apart once. */
export interface Upstream {
  url: URL;
  /** "http://10.0.0.5:8080": what the connection pool is keyed by */
  origin: string;
  /** the URL's path without its trailing "/", put before every request path */
  basePath: string;
}

/** Null unless an http(s) URL. */
export function parseUpstream(value: string): Upstream | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  return { url, origin: url.origin, basePath: url.pathname.replace(/\/+$/, '') };
}

export interface ForwardRequest {
  upstream: Upstream;
  /** normalised path plus query */
  path: string;
  /** the identity headers (identityHeaders), or null for an anonymous request */
  identity: readonly string[] | null;
  forwarded: Forwarded;
  /** Basic credentials the gateway consumed never reach the app */
  dropAuthorization: boolean;
  /** which cookies belong to the gateway */
  isGatewayCookie: (name: string) => boolean;
}

export type ProxyFailure = 'unreachable' | 'timeout';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'http2-settings']);

/**
 * Headers an app may take a signed-in identity from. The gateway is the only authority on who is
 * signed in, so nobody's copy passes, not even a trusted proxy's (which relays what its client sent).
 */
const IDENTITY_PREFIXES = ['x-remote-', 'remote-', 'x-auth-request-', 'x-webauth-', 'x-authenticated-', 'x-authentik-', 'x-pomerium-', 'x-ms-client-principal', 'x-amzn-oidc-', 'x-goog-authenticated-user-', 'cf-access-'];
const IDENTITY_NAMES = new Set(['x-user', 'x-email', 'x-preferred-username', 'x-auth-user', 'x-proxy-user', 'x-ssl-client-s-dn']);

/** Headers an app or its framework may route on or take the client's address from: only a trusted proxy may set them. */
const ROUTING_NAMES = new Set(['x-original-url', 'x-rewrite-url', 'x-original-uri', 'x-original-host', 'x-original-method', 'x-host', 'x-real-ip', 'x-client-ip', 'true-client-ip', 'cf-connecting-ip', 'x-cluster-client-ip', 'client-ip', 'x-proxyuser-ip']);

/** What happens to a request header on its way to the app. */
type HeaderRule = 'pass' | 'drop' | 'trusted_only' | 'authorization' | 'cookie';

/**
 * The rule for a header name as the client spelled it. Hop-by-hop headers and Expect (node's server
 * has already answered 100-continue) are dropped; names the gateway sets itself (a client's copy is
 * replaced) or that only it may send, also spelled with "_" as CGI-style apps read them, are dropped;
 * routing and client-address names pass only from a trusted proxy.
 */
function headerRule(lowerName: string): HeaderRule {
  if (HOP_BY_HOP.has(lowerName) || lowerName === 'expect') return 'drop';
  if (lowerName === 'authorization') return 'authorization';
  if (lowerName === 'cookie') return 'cookie';
  const name = lowerName.includes('_') ? lowerName.replace(/_/g, '-') : lowerName;
  if (name.startsWith('x-forwarded-') || name === 'forwarded') return 'drop';
  if (IDENTITY_NAMES.has(name) || IDENTITY_PREFIXES.some((p) => name.startsWith(p))) return 'drop';
  return ROUTING_NAMES.has(name) ? 'trusted_only' : 'pass';
}

/**
 * Rules by header name as sent: browsers send the same few dozen names, so the lower-casing and
 * prefix checks run once per name, not per request. Bounded, so made-up names cannot grow it.
 */
const headerRules = new Map<string, HeaderRule>();
const HEADER_RULES_MAX = 4096;

function ruleOf(name: string): HeaderRule {
  let rule = headerRules.get(name);
  if (rule === undefined) {
    rule = headerRule(name.toLowerCase());
    if (headerRules.size < HEADER_RULES_MAX) headerRules.set(name, rule);
  }
  return rule;
}

/** Names listed in a Connection header (hop-by-hop for this message only), lower-case; null for none. */
function connectionTokens(value: string | string[] | undefined): Set<string> | null {
  if (value === undefined || value === 'keep-alive' || value === 'close' || value === 'Keep-Alive') return null;
  const all = Array.isArray(value) ? value.join(',') : value;
  return new Set(all.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean));
}

/** Header values are latin1 strings in node; send UTF-8 bytes (as other gateways do) without tripping its check. */
function headerValue(s: string): string {
  if (/^[\x20-\x7e]*$/.test(s)) return s;
  return Buffer.from(s.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, ' '), 'utf8').toString('latin1');
}

/** The identity headers the app gets, as [name, value, name, value, …]. */
export function identityHeaders(identity: Identity): string[] {
  return [
    'X-Remote-User',
    headerValue(identity.username),
    'X-Remote-Email',
    headerValue(identity.email),
    'X-Remote-Name',
    headerValue(identity.name),
    'X-Remote-Groups',
    headerValue(identity.groups.join(',')),
  ];
}

/** The request headers for the app, as [name, value, …] in the client's order and spelling. */
function upstreamHeaders(req: http.IncomingMessage, fwd: ForwardRequest, upgrade: boolean): string[] {
  const dropped = connectionTokens(req.headers.connection);
  const out: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    let value = raw[i + 1]!;
    const rule = ruleOf(name);
    if (rule === 'drop' || (rule === 'trusted_only' && !fwd.forwarded.fromTrustedProxy)) continue;
    if (dropped?.has(name.toLowerCase())) continue;
    if (rule === 'authorization' && fwd.dropAuthorization) continue;
    if (rule === 'cookie') {
      value = withoutCookies(value, fwd.isGatewayCookie);
      if (!value) continue;
    }
    out.push(name, value);
  }
  if (upgrade) out.push('Connection', 'Upgrade', 'Upgrade', String(req.headers.upgrade));
  out.push('X-Forwarded-For', fwd.forwarded.for, 'X-Forwarded-Proto', fwd.forwarded.proto, 'X-Forwarded-Host', headerValue(fwd.forwarded.host));
  if (fwd.identity) for (let i = 0; i < fwd.identity.length; i++) out.push(fwd.identity[i]!);
  return out;
}

/** The app's response headers for the client, as [name, value, …] with their bytes as sent (latin1 strings), hop-by-hop ones left out. */
function responseHeaders(raw: readonly (Buffer | string)[]): string[] {
  const out: string[] = [];
  let dropped: Set<string> | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    const lower = name.toLowerCase();
    if (lower === 'connection') dropped = connectionTokens(raw[i + 1]!.toString('latin1'));
    if (HOP_BY_HOP.has(lower)) continue;
    out.push(name, raw[i + 1]!.toString('latin1'));
  }
  if (!dropped) return out;
  return out.filter((_, i, all) => !dropped.has(all[i - (i % 2)]!.toLowerCase()));
}

/** Raw header lines from a parsed object (what undici gives when it has no raw form). */
function flatHeaders(headers: IncomingHttpHeaders): string[] {
  const out: string[] = [];
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) out.push(name, one);
  }
  return out;
}

/** Methods RFC 9110 (9.2.2) lets an intermediary retry on a fresh connection when one fails before any answer. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** undici's codes for an upstream that took too long (to connect, to answer, between body chunks). */
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
/** The connection failed under the request: a pooled one the app closed as it was reused looks like this. */
const DROPPED_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

class ClientGone extends Error {}
class UpstreamTimeout extends Error {}

/**
 * One request to the app and its answer streamed back to the client. A class with methods
 * rather than closures: the one object per request beside the headers.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private clientGone = false;

  constructor(
    private readonly forwarder: Forwarder,
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly fwd: ForwardRequest,
    private readonly onFailure: (why: ProxyFailure) => void,
    private readonly hasBody: boolean,
    private readonly retried: boolean,
  ) {
    res.once('close', this.onClientClose);
  }

  /** A client gone mid-request or mid-response frees the upstream connection too. */
  private readonly onClientClose = (): void => {
    if (this.res.writableFinished) return;
    this.clientGone = true;
    this.controller?.abort(new ClientGone());
  };

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.clientGone) controller.abort(new ClientGone());
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    // 1xx answers (103 Early Hints) are the upstream hop's business; the final answer follows.
    if (statusCode < 200) return;
    const raw = controller.rawHeaders;
    try {
      this.res.writeHead(statusCode, statusMessage ?? '', responseHeaders(Array.isArray(raw) ? raw : flatHeaders(headers)));
    } catch {
      // A head node will not send on (a bad status or header from the app) is the app's failure, not ours.
      controller.abort(new Error('the app sent a response head that cannot be relayed'));
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    const { res } = this;
    if (this.clientGone || res.headersSent) return void res.destroy();
    const code = (err as { code?: string }).code ?? '';
    // A pooled connection the upstream closed just as it was reused: retry on a fresh one where HTTP allows it.
    if (DROPPED_CODES.has(code) && !this.hasBody && !this.retried && IDEMPOTENT.has(this.req.method ?? '')) {
      res.off('close', this.onClientClose);
      return this.forwarder.forward(this.req, res, this.fwd, this.onFailure, true);
    }
    this.onFailure(TIMEOUT_CODES.has(code) ? 'timeout' : 'unreachable');
  }
}

export class Forwarder {
  /**
   * Keep-alive connection pools per upstream origin. Idle pooled connections are closed after 4 s, before
   * the common 5 s server-side keep-alive timeouts (sooner when the app's Keep-Alive header says so).
   */
  private readonly agent: Agent;

  constructor(private readonly timeoutMs: number) {
    this.agent = new Agent({
      keepAliveTimeout: 4000,
      keepAliveMaxTimeout: 4000,
      connectTimeout: timeoutMs,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
  }

  /** Streams the request to the upstream and the answer back; onFailure answers when nothing was sent yet. */
  forward(req: http.IncomingMessage, res: http.ServerResponse, fwd: ForwardRequest, onFailure: (why: ProxyFailure) => void, retried = false): void {
    // Most requests have no body: they skip the stream plumbing (and can be retried).
    const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
    if (hasBody) {
      // An upload that stalls ends like an upstream that does: the client connection goes after the same silence.
      // Once it is in, waiting for the answer is the upstream timeout's business (504).
      req.setTimeout(this.timeoutMs, () => req.destroy());
      req.once('end', () => req.setTimeout(0));
    }
    this.agent.dispatch(
      {
        origin: fwd.upstream.origin,
        path: fwd.upstream.basePath + fwd.path,
        method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
        headers: upstreamHeaders(req, fwd, false),
        body: hasBody ? req : null,
      },
      new Exchange(this, req, res, fwd, onFailure, hasBody, retried),
    );
  }

  /** Tunnels an Upgrade request (WebSocket) once the upstream agrees; otherwise relays its answer. */
  upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, fwd: ForwardRequest, onFailure: (why: ProxyFailure) => void): void {
    const u = fwd.upstream.url;
    const tls = u.protocol === 'https:';
    const proxyReq = (tls ? https : http).request({
      hostname: u.hostname.replace(/^\[|\]$/g, ''),
      port: u.port || (tls ? 443 : 80),
      method: req.method,
      path: fwd.upstream.basePath + fwd.path,
      headers: upstreamHeaders(req, fwd, true) as unknown as http.OutgoingHttpHeaders,
      // Upgraded connections leave any pool anyway: each tunnel has its own.
      agent: false,
    });
    proxyReq.setTimeout(this.timeoutMs, () => proxyReq.destroy(new UpstreamTimeout()));
    let answered = false;
    proxyReq.on('upgrade', (proxyRes, proxySocket, proxyHead) => {
      answered = true;
      proxySocket.setTimeout(0);
      const lines = [`HTTP/1.1 101 ${proxyRes.statusMessage ?? 'Switching Protocols'}`];
      for (let i = 0; i < proxyRes.rawHeaders.length; i += 2) lines.push(`${proxyRes.rawHeaders[i]}: ${proxyRes.rawHeaders[i + 1]}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (proxyHead.length) socket.write(proxyHead);
      if (head.length) proxySocket.write(head);
      proxySocket.on('error', () => socket.destroy());
      socket.on('error', () => proxySocket.destroy());
      proxySocket.on('close', () => socket.destroy());
      socket.on('close', () => proxySocket.destroy());
      proxySocket.pipe(socket);
      socket.pipe(proxySocket);
    });
    proxyReq.on('response', (proxyRes) => {
      answered = true;
      const lines = [`HTTP/1.1 ${proxyRes.statusCode} ${proxyRes.statusMessage ?? ''}`];
      const headers = responseHeaders(proxyRes.rawHeaders);
      for (let i = 0; i < headers.length; i += 2) lines.push(`${headers[i]}: ${headers[i + 1]}`);
      lines.push('Connection: close');
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      proxyRes.pipe(socket);
      proxyRes.on('error', () => socket.destroy());
    });
    proxyReq.on('error', (err) => {
      if (!answered) onFailure(err instanceof UpstreamTimeout ? 'timeout' : 'unreachable');
      else socket.destroy();
    });
    socket.on('close', () => {
      if (!answered) proxyReq.destroy();
    });
    proxyReq.end();
  }

  async close(): Promise<void> {
    await this.agent.destroy();
  }
}
