import type { IncomingMessage, ServerResponse, IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { pipeline } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { HearthConfig } from '@hearth/config';
import type { App, Directory } from '@hearth/directory';
import type { Logger } from '@hearth/log';
import { appDataDir, engineMessage, engineStatus, LABEL_APP, LABEL_ROLE, type Engine } from '@hearth/runtime';
import { issueCertificate, normalSerial, type CertificateAuthority } from '@hearth/tls';
import { checkCreate, checkName } from './create-rules.ts';
import { engineRequest, engineTarget } from './engine.ts';
import { matchRoute, Refusal, type Route } from './routes.ts';
import type { DockerProxySettings } from './settings.ts';

export interface DockerProxyOptions {
  config: HearthConfig;
  directory: Directory;
  logger: Logger;
  settings: DockerProxySettings;
  ca: CertificateAuthority;
  /** the runtime's engine client (connectEngine(HEARTH_DOCKER_HOST)) */
  engine: Engine;
  /** defaults: HEARTH_LISTEN and HEARTH_DOCKER_PROXY_PORT */
  host?: string;
  port?: number;
}

export interface DockerProxy {
  port: number;
  endpoints: string[];
  close(): Promise<void>;
}

/** Request headers the engine gets; everything else (cookies, proxies' headers, hop-by-hop) stays here. */
const FORWARDED_REQUEST_HEADERS = ['content-type', 'user-agent', 'accept', 'x-registry-auth'];
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

function pickHeaders(headers: IncomingHttpHeaders, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = headers[n];
    if (typeof v === 'string') out[n] = v;
  }
  return out;
}

function responseHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

const errorBody = (message: string): string => JSON.stringify({ message }) + '\n';

function sendError(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(message);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * The docker addon's Engine API endpoint: TLS with a client certificate from the Hearth CA
 * naming the app, the operations in routes.ts and the rules in create-rules.ts, and the
 * app's own child containers only. Everything allowed is streamed to and from the engine.
 */
export async function startDockerProxy(o: DockerProxyOptions): Promise<DockerProxy> {
  const { directory, logger, settings } = o;
  const engine = engineTarget(o.engine);
  const serverCert = await issueCertificate(o.ca, { commonName: o.config.hostname, usage: 'server', hosts: [o.config.hostname] });
  const server = https.createServer({
    key: serverCert.key,
    cert: serverCert.cert,
    ca: [o.ca.cert],
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  });

  /** The app the client certificate names, if it is still installed with this very certificate. */
  function callerApp(req: IncomingMessage): App {
    const socket = req.socket as TLSSocket;
    const peer = socket.getPeerCertificate();
    const cn = peer?.subject?.CN;
    const id = Array.isArray(cn) ? undefined : cn;
    if (!socket.authorized || !id) throw new Refusal(401, 'a client certificate issued by Hearth to an app is required');
    const app = directory.app(id);
    const current = app?.manifest.addons.docker !== undefined ? app.credentials.docker?.serial : undefined;
    if (!app || !current || current !== normalSerial(peer.serialNumber)) {
      throw new Refusal(401, `the client certificate for app ${id} is no longer valid (the app was uninstalled, its docker addon removed, or its certificate rotated)`);
    }
    return app;
  }

  /** The full id of a container the app created, or 404 as if it did not exist (others' containers stay invisible). */
  async function ownContainer(app: App, ref: string): Promise<string> {
    let info: { Id: string; Config: { Labels: Record<string, string> | null } };
    try {
      info = await o.engine.getContainer(ref).inspect();
    } catch (err) {
      if (engineStatus(err) === 404) throw new Refusal(404, `No such container: ${ref}`);
      throw new Refusal(502, `the Docker engine at ${o.config.dockerHost}: ${engineMessage(err)}`);
    }
    const labels = info.Config.Labels ?? {};
    if (labels[LABEL_APP] !== app.id || labels[LABEL_ROLE] !== 'child') throw new Refusal(404, `No such container: ${ref}`);
    return info.Id;
  }

  function readBody(req: IncomingMessage): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > settings.maxBodyBytes) return reject(new Refusal(413, `refused by the docker proxy: the request body is larger than ${settings.maxBodyBytes} bytes (HEARTH_DOCKER_PROXY_MAX_BODY_KB)`));
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > settings.maxBodyBytes) {
          req.removeAllListeners('data');
          req.resume();
          reject(new Refusal(413, `refused by the docker proxy: the request body is larger than ${settings.maxBodyBytes} bytes (HEARTH_DOCKER_PROXY_MAX_BODY_KB)`));
        } else chunks.push(c);
      });
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });
  }

  /** Sends the request on to the engine and streams the answer back; backpressure both ways through pipeline. */
  function forward(req: IncomingMessage, res: ServerResponse, path: string, body?: Buffer): void {
    const headers: Record<string, string | number> = pickHeaders(req.headers, FORWARDED_REQUEST_HEADERS);
    if (body) headers['content-length'] = body.length;
    const up = engineRequest(engine, req.method!, path, headers);
    up.on('response', (ur) => {
      res.writeHead(ur.statusCode ?? 502, responseHeaders(ur.headers));
      // logs -f and wait answer headers first and data much later: the client should see them now
      res.flushHeaders();
      pipeline(ur, res, () => {});
    });
    up.on('error', (err) => sendError(res, 502, `the Docker engine at ${o.config.dockerHost} is not reachable: ${err.message}`));
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    up.end(body);
  }

  /** The engine path for an allowed request, its query rewritten where the rules say so. */
  async function enginePath(app: App, route: Route, req: IncomingMessage): Promise<{ path: string; body?: Buffer; summary: Record<string, unknown> }> {
    const { op, query, version } = route;
    const qs = (): string => (query.size ? `?${query}` : '');
    switch (op.kind) {
      case 'engine':
        return { path: `${version}/${op.name}`, summary: { op: op.name } };
      case 'list': {
        query.set('filters', JSON.stringify(ownFilters(query.get('filters'), app.id)));
        return { path: `${version}/containers/json${qs()}`, summary: { op: 'list' } };
      }
      case 'create': {
        checkName(query.get('name'));
        const raw = await readBody(req);
        let parsed: unknown;
        try {
          parsed = JSON.parse(raw.toString('utf8'));
        } catch (err) {
          throw new Refusal(400, `refused by the docker proxy: the request body is not valid JSON (${(err as Error).message})`);
        }
        const body = checkCreate(parsed, { appId: app.id, hostDataDir: appDataDir(o.config.dataDir, app.id), networkMode: settings.networkMode });
        return { path: `${version}/containers/create${qs()}`, body: Buffer.from(JSON.stringify(body)), summary: { op: 'create', image: body.Image, name: query.get('name') ?? undefined } };
      }
      case 'container': {
        const id = await ownContainer(app, op.ref);
        const suffix = op.action === 'remove' ? '' : `/${op.action === 'inspect' ? 'json' : op.action}`;
        return { path: `${version}/containers/${id}${suffix}${qs()}`, summary: { op: op.action, container: id.slice(0, 12) } };
      }
      case 'pull':
        if (!query.get('fromImage')) throw new Refusal(400, 'refused by the docker proxy: only pulls (fromImage) are allowed on /images/create, not imports');
        return { path: `${version}/images/create${qs()}`, summary: { op: 'pull', image: query.get('fromImage') } };
      case 'image':
        return { path: `${version}/images/${op.ref}/json`, summary: { op: 'image inspect', image: op.ref } };
    }
  }

  function refused(res: ServerResponse, req: IncomingMessage, appId: string | undefined, err: unknown): void {
    if (err instanceof Refusal) {
      logger.warn({ app: appId, method: req.method, path: req.url?.slice(0, 200), status: err.status, reason: err.message }, 'refused');
      sendError(res, err.status, err.message);
    } else {
      logger.error({ app: appId, method: req.method, path: req.url?.slice(0, 200), err }, 'request failed');
      sendError(res, 500, `the docker proxy could not handle this request: ${(err as Error).message}`);
    }
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    let app: App | undefined;
    void (async () => {
      app = callerApp(req);
      const route = matchRoute(req.method ?? '', req.url ?? '');
      if (route.op.kind === 'container' && route.op.action === 'attach') throw new Refusal(400, 'refused by the docker proxy: attach needs a connection upgrade (Upgrade: tcp)');
      const target = await enginePath(app, route, req);
      if (!target.body) req.resume();
      logger[route.op.kind === 'engine' ? 'debug' : 'info']({ app: app.id, ...target.summary }, 'accepted');
      forward(req, res, target.path, target.body);
    })().catch((err) => {
      req.resume();
      refused(res, req, app?.id, err);
    });
  });

  // attach (docker run without -d): the engine hijacks the connection; the two sockets are piped both ways.
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    let app: App | undefined;
    // The docker CLI closes its sending side when stdin ends and still reads the output. Only here:
    // server-wide, half-open sockets would let a client that never finishes its TLS handshake linger.
    socket.allowHalfOpen = true;
    socket.on('error', () => socket.destroy());
    void (async () => {
      app = callerApp(req);
      const route = matchRoute(req.method ?? '', req.url ?? '');
      if (route.op.kind !== 'container' || route.op.action !== 'attach') throw new Refusal(400, 'refused by the docker proxy: only attach may upgrade the connection');
      const target = await enginePath(app, route, req);
      logger.info({ app: app.id, ...target.summary }, 'accepted');
      const up = engineRequest(engine, 'POST', target.path, { ...pickHeaders(req.headers, FORWARDED_REQUEST_HEADERS), connection: 'Upgrade', upgrade: 'tcp' });
      up.on('upgrade', (ur, engineSocket, engineHead) => {
        const lines = [`HTTP/1.1 ${ur.statusCode ?? 101} ${ur.statusMessage ?? 'UPGRADED'}`, ...Object.entries(ur.headers).map(([k, v]) => `${k}: ${String(v)}`)];
        socket.write(lines.join('\r\n') + '\r\n\r\n');
        if (engineHead.length) socket.write(engineHead);
        if (head.length) engineSocket.write(head);
        engineSocket.on('error', () => socket.destroy());
        socket.on('close', () => engineSocket.destroy());
        engineSocket.on('close', () => socket.end());
        engineSocket.pipe(socket);
        socket.pipe(engineSocket);
      });
      up.on('response', (ur) => {
        // the engine refused the attach (no such container, …): relay its answer and close
        const lines = [`HTTP/1.1 ${ur.statusCode} ${ur.statusMessage ?? ''}`, ...Object.entries(responseHeaders(ur.headers)).map(([k, v]) => `${k}: ${String(v)}`), 'connection: close'];
        socket.write(lines.join('\r\n') + '\r\n\r\n');
        ur.pipe(socket);
      });
      up.on('error', (err) => rawError(socket, 502, `the Docker engine at ${o.config.dockerHost} is not reachable: ${err.message}`));
      up.end();
    })().catch((err) => {
      const status = err instanceof Refusal ? err.status : 500;
      logger.warn({ app: app?.id, method: req.method, path: req.url?.slice(0, 200), status, reason: (err as Error).message }, 'refused');
      rawError(socket, status, (err as Error).message);
    });
  });

  server.on('tlsClientError', (err) => logger.info({ reason: err.message }, 'TLS handshake refused (no valid client certificate)'));
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: application/json\r\n\r\n' + errorBody('malformed HTTP request'));
    else socket.destroy();
  });
  server.headersTimeout = 30_000;
  server.requestTimeout = 0; // logs -f, wait and attach stay open as long as the container runs

  const host = o.host ?? o.config.listen;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? o.config.ports.dockerProxy, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    endpoints: [`tcp://${o.config.hostname}:${port} (Docker API over TLS; app client certificates)`],
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function rawError(socket: Socket, status: number, message: string): void {
  const body = errorBody(message);
  if (socket.writable) socket.end(`HTTP/1.1 ${status} Error\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  else socket.destroy();
}

/**
 * The client's list filters (either of the engine's two JSON shapes) plus the app's own
 * labels; label filters are ANDed, so nothing of another app's can come through.
 */
export function ownFilters(raw: string | null, appId: string): Record<string, Record<string, boolean>> {
  let given: unknown = {};
  if (raw) {
    try {
      given = JSON.parse(raw);
    } catch {
      throw new Refusal(400, 'refused by the docker proxy: the filters query parameter is not valid JSON');
    }
  }
  if (typeof given !== 'object' || given === null || Array.isArray(given)) throw new Refusal(400, 'refused by the docker proxy: the filters query parameter must be a JSON object');
  const entries = Object.entries(given).map(([key, value]): [string, Record<string, boolean>] => {
    const values: unknown[] | null = Array.isArray(value) ? value : typeof value === 'object' && value !== null ? Object.keys(value) : null;
    if (!values || values.some((v) => typeof v !== 'string')) throw new Refusal(400, `refused by the docker proxy: filter ${JSON.stringify(key.slice(0, 100))} must be a list of strings`);
    return [key, Object.fromEntries((values as string[]).map((v) => [v, true]))];
  });
  const out = Object.fromEntries(entries);
  out.label = { ...(Object.hasOwn(out, 'label') ? out.label : {}), [`${LABEL_APP}=${appId}`]: true, [`${LABEL_ROLE}=child`]: true };
  return out;
}
