/**
 * The whitelist: which Docker Engine API calls an app may make through the proxy, and what
 * each one is. Anything not listed here is refused by name before the engine sees it.
 */

export type ContainerAction = 'inspect' | 'start' | 'stop' | 'wait' | 'logs' | 'remove' | 'attach' | 'resize';

export type Operation =
  /** _ping, version, info: what the docker CLI asks before anything else */
  | { kind: 'engine'; name: string }
  | { kind: 'list' }
  | { kind: 'create' }
  | { kind: 'container'; action: ContainerAction; ref: string }
  | { kind: 'pull' }
  | { kind: 'image'; ref: string };

export interface Route {
  /** the API version prefix as sent ("/v1.41") or "" */
  version: string;
  op: Operation;
  query: URLSearchParams;
}

/** A request the proxy will not forward: the Docker-style JSON error the client gets. */
export class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const MIN_API = [1, 24] as const;
const CONTAINER_REF = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const IMAGE_REF = /^[a-zA-Z0-9][a-zA-Z0-9._/:@-]{0,254}$/;

interface Rule {
  method: string;
  path: RegExp;
  op: (m: RegExpExecArray) => Operation;
  query: string[];
}

const container = (action: ContainerAction) => (m: RegExpExecArray) => ({ kind: 'container' as const, action, ref: m[1]! });

const RULES: Rule[] = [
  { method: 'GET', path: /^\/_ping$/, op: () => ({ kind: 'engine', name: '_ping' }), query: [] },
  { method: 'HEAD', path: /^\/_ping$/, op: () => ({ kind: 'engine', name: '_ping' }), query: [] },
  { method: 'GET', path: /^\/version$/, op: () => ({ kind: 'engine', name: 'version' }), query: [] },
  { method: 'GET', path: /^\/info$/, op: () => ({ kind: 'engine', name: 'info' }), query: [] },
  { method: 'GET', path: /^\/containers\/json$/, op: () => ({ kind: 'list' }), query: ['all', 'limit', 'size', 'filters'] },
  { method: 'POST', path: /^\/containers\/create$/, op: () => ({ kind: 'create' }), query: ['name', 'platform'] },
  { method: 'GET', path: /^\/containers\/(.+)\/json$/, op: container('inspect'), query: ['size'] },
  { method: 'POST', path: /^\/containers\/([^/]+)\/start$/, op: container('start'), query: ['detachKeys'] },
  { method: 'POST', path: /^\/containers\/([^/]+)\/stop$/, op: container('stop'), query: ['t', 'signal'] },
  { method: 'POST', path: /^\/containers\/([^/]+)\/wait$/, op: container('wait'), query: ['condition'] },
  { method: 'GET', path: /^\/containers\/([^/]+)\/logs$/, op: container('logs'), query: ['follow', 'stdout', 'stderr', 'since', 'until', 'timestamps', 'tail', 'details'] },
  { method: 'DELETE', path: /^\/containers\/([^/]+)$/, op: container('remove'), query: ['v', 'force'] },
  { method: 'POST', path: /^\/containers\/([^/]+)\/attach$/, op: container('attach'), query: ['detachKeys', 'logs', 'stream', 'stdin', 'stdout', 'stderr'] },
  { method: 'POST', path: /^\/containers\/([^/]+)\/resize$/, op: container('resize'), query: ['h', 'w'] },
  { method: 'POST', path: /^\/images\/create$/, op: () => ({ kind: 'pull' }), query: ['fromImage', 'tag', 'platform'] },
  { method: 'GET', path: /^\/images\/(.+)\/json$/, op: (m) => ({ kind: 'image', ref: m[1]! }), query: [] },
];

/** The whitelisted operation a request is, or a Refusal naming what is not allowed. */
export function matchRoute(method: string, rawUrl: string): Route {
  const q = rawUrl.indexOf('?');
  const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
  // Paths are rebuilt from the checked parts before they reach the engine; anything that could be
  // read two ways (encoded characters, dot segments, empty segments) is refused, not normalised.
  if (!rawPath.startsWith('/') || rawPath.includes('%') || rawPath.includes('//') || /(^|\/)\.\.?(\/|$)/.test(rawPath)) {
    throw new Refusal(400, `refused by the docker proxy: malformed path ${JSON.stringify(rawPath.slice(0, 200))}`);
  }
  let version = '';
  let path = rawPath;
  const v = /^\/v(\d+)\.(\d+)(\/.*)$/.exec(rawPath);
  if (v) {
    const [major, minor] = [Number(v[1]), Number(v[2])];
    if (major < MIN_API[0] || (major === MIN_API[0] && minor < MIN_API[1])) {
      throw new Refusal(400, `refused by the docker proxy: API version ${major}.${minor} is too old; the proxy serves ${MIN_API.join('.')} and later`);
    }
    version = `/v${major}.${minor}`;
    path = v[3]!;
  }
  for (const rule of RULES) {
    const m = rule.path.exec(path);
    if (!m || rule.method !== method) continue;
    const op = rule.op(m);
    // What the engine says for a name no container has: `docker inspect <image>` tries containers first.
    if (op.kind === 'container' && !CONTAINER_REF.test(op.ref)) throw new Refusal(404, `No such container: ${op.ref.slice(0, 200)}`);
    if (op.kind === 'image' && (!IMAGE_REF.test(op.ref) || op.ref.includes('..'))) throw new Refusal(400, `refused by the docker proxy: invalid image reference ${JSON.stringify(op.ref.slice(0, 200))}`);
    const query = new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1));
    for (const key of query.keys()) {
      if (!rule.query.includes(key)) throw new Refusal(400, `refused by the docker proxy: query parameter ${JSON.stringify(key.slice(0, 100))} is not allowed on ${method} ${path}`);
    }
    return { version, op, query };
  }
  throw new Refusal(403, `refused by the docker proxy: ${method} ${describe(path)} is not an allowed operation (allowed: create, start, stop, inspect, logs, wait, attach and remove containers, list the app's containers, pull and inspect images)`);
}

/** "/volumes" → "/volumes", "/containers/abc/exec" → "/containers/{id}/exec": the rule, not the caller's ids. */
function describe(path: string): string {
  const short = path.slice(0, 120);
  return short.replace(/^\/(containers|images|networks|volumes|plugins|services|secrets|configs|nodes|tasks|exec)\/([^/]+)\//, '/$1/{id}/');
}
