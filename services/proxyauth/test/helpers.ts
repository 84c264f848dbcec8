import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';

/** A small upstream app on loopback: echoes what reached it, plus a slow path and a WebSocket-style echo. */

export interface Echo {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaderNames: string[];
  bodyLength: number;
  bodySha256: string;
}

/** Text frame from server to client (unmasked; payloads under 64 KiB). */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const head = payload.length < 126 ? Buffer.from([0x81, payload.length]) : Buffer.from([0x81, 126, payload.length >> 8, payload.length & 255]);
  return Buffer.concat([head, payload]);
}

/** A real RFC 6455 endpoint for browsers: greets with the X-Remote-User it was given, then echoes text frames. */
function webSocketEcho(req: http.IncomingMessage, socket: Duplex): void {
  const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  socket.write(textFrame(`hello ${req.headers['x-remote-user'] ?? 'anonymous'}`));
  let buf = Buffer.alloc(0);
  socket.on('error', () => socket.destroy());
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 6) {
      const opcode = buf[0]! & 0x0f;
      let len = buf[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        len = buf.readUInt16BE(2);
        off = 4;
      }
      if (buf.length < off + 4 + len) return;
      const mask = buf.subarray(off, off + 4);
      const payload = Buffer.from(buf.subarray(off + 4, off + 4 + len).map((b, i) => b ^ mask[i % 4]!));
      buf = buf.subarray(off + 4 + len);
      if (opcode === 8) return void socket.end(Buffer.from([0x88, 0]));
      if (opcode === 1) socket.write(textFrame(payload.toString()));
    }
  });
}

export interface Upstream {
  port: number;
  url: string;
  close: () => Promise<void>;
}

export async function startUpstream(): Promise<Upstream> {
  const server = http.createServer((req, res) => {
    if (req.url === '/slow' || req.url?.startsWith('/slow?')) {
      // Never answers; the gateway's timeout has to end it.
      req.resume();
      return;
    }
    if (req.url === '/kb') {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 1024 });
      return void res.end('x'.repeat(1024));
    }
    const hash = createHash('sha256');
    let length = 0;
    req.on('data', (d: Buffer) => {
      length += d.length;
      hash.update(d);
    });
    req.on('end', () => {
      const names: string[] = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2) names.push(req.rawHeaders[i]!);
      const echo: Echo = { method: req.method!, url: req.url!, headers: req.headers, rawHeaderNames: names, bodyLength: length, bodySha256: hash.digest('hex') };
      const body = JSON.stringify(echo);
      res.writeHead(200, { 'Content-Type': 'application/json', 'X-Upstream': 'echo', 'Set-Cookie': 'appcookie=1; Path=/' });
      res.end(body);
    });
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
    if (req.url?.startsWith('/ws')) return webSocketEcho(req, socket);
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.write(`hello ${req.headers['x-remote-user'] ?? 'anonymous'} ${req.url}\n`);
    socket.pipe(socket);
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/**
 * An upstream that answers the first request on each connection with keep-alive, then
 * drops the connection on the next one: what an upstream closing idle connections
 * looks like to a pool that reuses one at the wrong moment.
 */
export async function startDroppingUpstream(): Promise<Upstream> {
  const server = net.createServer((socket) => {
    let buf = '';
    let served = 0;
    socket.on('error', () => socket.destroy());
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      while (buf.includes('\r\n\r\n')) {
        buf = buf.slice(buf.indexOf('\r\n\r\n') + 4);
        if (served++ > 0) return void socket.destroy();
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-Upstream: dropping\r\n\r\nfresh');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return { port, url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

export interface CurlResult {
  status: number;
  headers: Record<string, string[]>;
  body: string;
}

export interface CurlOptions {
  headers?: string[];
  method?: string;
  data?: string;
  cookie?: string;
  user?: string;
  extra?: string[];
}

/** curl against the gateway as if `host` resolved to loopback; the path is sent exactly as given. */
export function curl(gatewayPort: number, host: string, path: string, opts: CurlOptions = {}): Promise<CurlResult> {
  const args = ['-sS', '--path-as-is', '-D', '-', '--max-time', '20', '--resolve', `${host}:${gatewayPort}:127.0.0.1`, '-H', 'Expect:'];
  for (const h of opts.headers ?? []) args.push('-H', h);
  if (opts.method) args.push('-X', opts.method);
  if (opts.data !== undefined) args.push('--data-binary', '@-');
  if (opts.cookie) args.push('-b', opts.cookie);
  if (opts.user) args.push('-u', opts.user);
  args.push(...(opts.extra ?? []), `http://${host}:${gatewayPort}${path}`);
  return new Promise((resolve, reject) => {
    const child = spawn('curl', args, { stdio: [opts.data === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`curl exited ${code}: ${err}`));
      const text = Buffer.concat(out).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const head = text.slice(0, split).split('\r\n');
      const headers: Record<string, string[]> = {};
      for (const line of head.slice(1)) {
        const c = line.indexOf(':');
        const k = line.slice(0, c).trim().toLowerCase();
        (headers[k] ??= []).push(line.slice(c + 1).trim());
      }
      resolve({ status: Number(head[0]!.split(' ')[1]), headers, body: Buffer.from(text.slice(split + 4), 'latin1').toString('utf8') });
    });
    if (child.stdin) {
      // curl may answer (and exit) before it has read the whole body, e.g. on a refusal.
      child.stdin.on('error', () => {});
      child.stdin.end(opts.data);
    }
  });
}

export function echoOf(r: CurlResult): Echo {
  if (r.status !== 200 || r.headers['x-upstream']?.[0] !== 'echo') throw new Error(`expected the upstream echo, got ${r.status}: ${r.body.slice(0, 200)}`);
  return JSON.parse(r.body) as Echo;
}

/** Opens an Upgrade request through the gateway; resolves with the status line and a reader for the tunnel. */
export function upgradeThrough(gatewayPort: number, host: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; socket: net.Socket; firstData: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(gatewayPort, '127.0.0.1');
    let buf = '';
    const t = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to the upgrade; got ${JSON.stringify(buf)}`));
    }, 10000);
    socket.on('error', reject);
    socket.on('connect', () => {
      const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`);
    });
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const status = Number(buf.split(' ')[1]);
      const rest = buf.slice(end + 4);
      if (status === 101 && !rest.includes('\n')) return;
      clearTimeout(t);
      socket.off('data', onData);
      resolve({ status, socket, firstData: rest });
    };
    socket.on('data', onData);
  });
}

export function readLine(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`no line; got ${JSON.stringify(buf)}`)), 10000);
    const onData = (d: Buffer): void => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(t);
      socket.off('data', onData);
      resolve(buf.slice(0, nl));
    };
    socket.on('data', onData);
  });
}

export interface BrowserResponse {
  url: URL;
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface JarCookie {
  host: string;
  name: string;
  value: string;
  path: string;
  secure: boolean;
  attributes: string;
}

/**
 * A plain-HTTP browser for sign-in flows across the gateway and the provider: every
 * host resolves to loopback, host-only cookies with paths, redirects followed by hand.
 */
export class HttpBrowser {
  readonly cookies: JarCookie[] = [];

  private cookieHeader(url: URL): string {
    return this.cookies
      .filter((c) => c.host === url.hostname && url.pathname.startsWith(c.path) && (!c.secure || url.protocol === 'https:'))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  private store(url: URL, setCookie: string[] | undefined): void {
    for (const line of setCookie ?? []) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      const path = attrs.find((a) => /^path=/i.test(a))?.slice(5) ?? '/';
      const gone = attrs.some((a) => /^max-age=0$/i.test(a) || /^expires=.*1970/i.test(a));
      const i = this.cookies.findIndex((c) => c.host === url.hostname && c.name === name && c.path === path);
      if (i >= 0) this.cookies.splice(i, 1);
      if (!gone) this.cookies.push({ host: url.hostname, name, value, path, secure: attrs.some((a) => /^secure$/i.test(a)), attributes: line });
    }
  }

  cookie(host: string, name: string): JarCookie | undefined {
    return this.cookies.find((c) => c.host === host && c.name === name);
  }

  request(url: string | URL, opts: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<BrowserResponse> {
    const u = new URL(url);
    const body = opts.form ? new URLSearchParams(opts.form).toString() : undefined;
    const headers: Record<string, string> = { Host: u.host, Accept: 'text/html', ...opts.headers };
    const cookie = this.cookieHeader(u);
    if (cookie) headers.Cookie = cookie;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: u.port || 80, method: opts.method ?? (body ? 'POST' : 'GET'), path: u.pathname + u.search, headers, timeout: 15000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          this.store(u, res.headers['set-cookie']);
          resolve({ url: u, status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`timeout: ${u.href}`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Requests and follows redirects (POST becomes GET after 302/303); every hop is kept. */
  async go(url: string | URL, opts: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<{ final: BrowserResponse; hops: BrowserResponse[] }> {
    const hops: BrowserResponse[] = [];
    let res = await this.request(url, opts);
    hops.push(res);
    while (res.status >= 300 && res.status < 400 && res.headers.location) {
      if (hops.length > 15) throw new Error('too many redirects');
      res = await this.request(new URL(res.headers.location, res.url));
      hops.push(res);
    }
    return { final: res, hops };
  }
}

/** The first form on a page whose action ends with `actionEnd`: its absolute action URL and hidden fields. */
export function formOf(page: BrowserResponse, actionEnd: string): { action: URL; fields: Record<string, string> } {
  const unescape = (s: string): string => s.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&');
  for (const m of page.body.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)) {
    const action = unescape(/action="([^"]*)"/.exec(m[1]!)?.[1] ?? '');
    if (!action.endsWith(actionEnd)) continue;
    const fields: Record<string, string> = {};
    for (const input of m[2]!.matchAll(/<input\b[^>]*>/g)) {
      if (!/type="hidden"/.test(input[0])) continue;
      const name = /name="([^"]+)"/.exec(input[0])?.[1];
      if (name) fields[name] = unescape(/value="([^"]*)"/.exec(input[0])?.[1] ?? '');
    }
    return { action: new URL(action, page.url), fields };
  }
  throw new Error(`no form ending in ${actionEnd} on ${page.url.href} (${page.status}):\n${page.body.slice(0, 2000)}`);
}
