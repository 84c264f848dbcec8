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
    const child = spawn('curl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d) => (err += d));
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
    child.stdin.end(opts.data ?? '');
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
