import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { withoutCookies } from '@hearth/web';

/**
 * Forwarding to an app's upstream: streamed bodies both ways, WebSocket (any Upgrade)
 * tunnels, pooled keep-alive connections, hop-by-hop headers dropped, the gateway's own
 * cookies and any client-sent identity or X-Forwarded headers removed before the
 * gateway's own are added.
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

export interface ForwardRequest {
  upstream: URL;
  /** normalised path plus query */
  path: string;
  identity: Identity | null;
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

/** Header names the gateway sets itself (a client's copy is replaced) or that only it or a trusted proxy may send. Also spelled with "_", as CGI-style apps read them. */
function isReserved(lower: string, fromTrustedProxy: boolean): boolean {
  const name = lower.includes('_') ? lower.replace(/_/g, '-') : lower;
  if (name.startsWith('x-forwarded-') || name === 'forwarded') return true;
  if (IDENTITY_NAMES.has(name) || IDENTITY_PREFIXES.some((p) => name.startsWith(p))) return true;
  return !fromTrustedProxy && ROUTING_NAMES.has(name);
}

const NO_TOKENS = new Set<string>();

function connectionTokens(value: string | string[] | undefined): Set<string> {
  if (value === undefined || value === 'keep-alive' || value === 'close') return NO_TOKENS;
  const all = Array.isArray(value) ? value.join(',') : (value ?? '');
  return new Set(all.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean));
}

/** Header values are latin1 strings in node; send UTF-8 bytes (as other gateways do) without tripping its check. */
function headerValue(s: string): string {
  if (/^[\x20-\x7e]*$/.test(s)) return s;
  return Buffer.from(s.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, ' '), 'utf8').toString('latin1');
}

export function identityHeaders(identity: Identity): [string, string][] {
  return [
    ['X-Remote-User', headerValue(identity.username)],
    ['X-Remote-Email', headerValue(identity.email)],
    ['X-Remote-Name', headerValue(identity.name)],
    ['X-Remote-Groups', headerValue(identity.groups.join(','))],
  ];
}

function upstreamHeaders(req: http.IncomingMessage, fwd: ForwardRequest, upgrade: boolean): string[] {
  const dropped = connectionTokens(req.headers.connection);
  const out: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    let value = raw[i + 1]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || dropped.has(lower) || isReserved(lower, fwd.forwarded.fromTrustedProxy)) continue;
    if (lower === 'authorization' && fwd.dropAuthorization) continue;
    if (lower === 'cookie') {
      value = withoutCookies(value, fwd.isGatewayCookie);
      if (!value) continue;
    }
    out.push(name, value);
  }
  if (upgrade) out.push('Connection', 'Upgrade', 'Upgrade', String(req.headers.upgrade));
  out.push('X-Forwarded-For', fwd.forwarded.for, 'X-Forwarded-Proto', fwd.forwarded.proto, 'X-Forwarded-Host', headerValue(fwd.forwarded.host));
  if (fwd.identity) for (const [k, v] of identityHeaders(fwd.identity)) out.push(k, v);
  return out;
}

function responseHeaders(res: http.IncomingMessage): string[] {
  const dropped = connectionTokens(res.headers.connection);
  const out: string[] = [];
  const raw = res.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(lower) || dropped.has(lower)) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

class UpstreamTimeout extends Error {}

export class Forwarder {
  // Idle pooled connections are closed after 4 s, before the common 5 s server-side keep-alive timeouts.
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo', timeout: 4000 });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo', timeout: 4000 });

  constructor(private readonly timeoutMs: number) {}

  private options(req: http.IncomingMessage, fwd: ForwardRequest, upgrade: boolean): http.RequestOptions {
    const u = fwd.upstream;
    const tls = u.protocol === 'https:';
    const base = u.pathname.replace(/\/+$/, '');
    return {
      protocol: u.protocol,
      hostname: u.hostname.replace(/^\[|\]$/g, ''),
      port: u.port || (tls ? 443 : 80),
      method: req.method,
      path: `${base}${fwd.path}`,
      headers: upstreamHeaders(req, fwd, upgrade) as unknown as http.OutgoingHttpHeaders,
      // Upgraded sockets leave the pool anyway; a fresh connection keeps the pool simple.
      agent: upgrade ? false : tls ? this.httpsAgent : this.httpAgent,
    };
  }

  /** Streams the request to the upstream and the answer back; onFailure answers when nothing was sent yet. */
  forward(req: http.IncomingMessage, res: http.ServerResponse, fwd: ForwardRequest, onFailure: (why: ProxyFailure) => void, retried = false): void {
    // Most requests have no body: skip the stream plumbing for them (and they can be retried).
    const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
    const opts = this.options(req, fwd, false);
    const proxyReq = (opts.protocol === 'https:' ? https : http).request(opts);
    proxyReq.setTimeout(this.timeoutMs, () => proxyReq.destroy(new UpstreamTimeout()));
    proxyReq.on('response', (proxyRes) => {
      try {
        res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, responseHeaders(proxyRes));
      } catch {
        // A head node will not send on (a bad status or header from the app) is the app's failure, not ours.
        proxyRes.destroy();
        if (!res.headersSent) onFailure('unreachable');
        return;
      }
      proxyRes.pipe(res);
      proxyRes.on('error', () => res.destroy());
      proxyRes.on('aborted', () => res.destroy());
    });
    proxyReq.on('error', (err: NodeJS.ErrnoException) => {
      if (res.headersSent) return void res.destroy();
      // A pooled connection the upstream closed just as it was reused: nothing reached the app, so try a fresh one.
      if (proxyReq.reusedSocket && err.code === 'ECONNRESET' && !hasBody && !retried && !res.destroyed) return this.forward(req, res, fwd, onFailure, true);
      onFailure(err instanceof UpstreamTimeout ? 'timeout' : 'unreachable');
    });
    // A client gone mid-request or mid-response frees the upstream connection too.
    res.on('close', () => {
      if (!res.writableFinished) proxyReq.destroy();
    });
    if (hasBody) req.pipe(proxyReq);
    else proxyReq.end();
  }

  /** Tunnels an Upgrade request (WebSocket) once the upstream agrees; otherwise relays its answer. */
  upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, fwd: ForwardRequest, onFailure: (why: ProxyFailure) => void): void {
    const opts = this.options(req, fwd, true);
    const proxyReq = (opts.protocol === 'https:' ? https : http).request(opts);
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
      const headers = responseHeaders(proxyRes);
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

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
