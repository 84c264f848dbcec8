import fs from 'node:fs';
import path from 'node:path';
import { LABEL_APP, LABEL_ROLE } from '@hearth/runtime';
import { Refusal } from './routes.ts';

/** Where the app sees its data folder; binds name paths under it. */
export const APP_DATA = '/app/data';

export interface CreateContext {
  appId: string;
  /** the app's data folder on the host ($HEARTH_DATA_DIR/apps/<id>/data) */
  hostDataDir: string;
  /** the one network mode children get (HEARTH_DOCKER_PROXY_NETWORK) */
  networkMode: string;
}

type Json = Record<string, unknown>;

const refuse = (field: string, why: string): never => {
  throw new Refusal(403, `refused by the docker proxy: ${field} ${why}`);
};

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** null, "", 0, false, [] and {}: what the docker CLI sends for options it was not given. */
function isUnset(v: unknown): boolean {
  if (v === undefined || v === null || v === '' || v === 0 || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  return isObject(v) && Object.keys(v).length === 0;
}

/** HostConfig fields a child may set to anything: they only shape the child itself. */
const FREE_HOST_FIELDS = new Set([
  'ContainerIDFile', 'RestartPolicy', 'AutoRemove', 'ConsoleSize', 'Annotations', 'CapDrop', 'Dns', 'DnsOptions', 'DnsSearch', 'ExtraHosts',
  'GroupAdd', 'ReadonlyRootfs', 'ShmSize', 'Tmpfs', 'CpuShares', 'Memory', 'NanoCpus', 'BlkioWeight', 'CpuPeriod', 'CpuQuota', 'CpusetCpus',
  'CpusetMems', 'KernelMemory', 'KernelMemoryTCP', 'MemoryReservation', 'MemorySwap', 'MemorySwappiness', 'Init', 'PidsLimit', 'Ulimits',
  'CpuCount', 'CpuPercent', 'IOMaximumIOps', 'IOMaximumBandwidth', 'OomScoreAdj',
]);

/** HostConfig fields the rules below look at; every other field must be left unset. */
const CHECKED_HOST_FIELDS = new Set([
  'Binds', 'Mounts', 'NetworkMode', 'PidMode', 'IpcMode', 'UTSMode', 'UsernsMode', 'CgroupnsMode', 'SecurityOpt', 'LogConfig', 'Isolation',
  'Runtime', 'MaskedPaths', 'ReadonlyPaths',
]);

const BIND_OPTIONS = new Set(['ro', 'rw', 'private', 'rprivate', 'cached', 'delegated', 'consistent']);

/**
 * An app-side path under /app/data → the host path Docker should bind. `..`, relative paths and
 * paths elsewhere are refused; so is any symlink on the way that leads out of the data folder.
 * The answer is the resolved path, so Docker is not handed a symlink to follow later.
 */
export function hostBindSource(field: string, appPath: string, ctx: CreateContext): string {
  if (!appPath.startsWith('/')) refuse(field, `${JSON.stringify(appPath)} is a named volume; only bind mounts under ${APP_DATA} are allowed`);
  if (appPath.split('/').some((s) => s === '..' || s === '.')) refuse(field, `${JSON.stringify(appPath)} contains "." or ".."; name the folder under ${APP_DATA} directly`);
  const clean = path.posix.normalize(appPath).replace(/\/+$/, '') || '/';
  if (clean !== APP_DATA && !clean.startsWith(`${APP_DATA}/`)) refuse(field, `${JSON.stringify(appPath)} is outside ${APP_DATA}; bind mounts must be under ${APP_DATA}`);
  const rest = clean.slice(APP_DATA.length).split('/').filter(Boolean);
  fs.mkdirSync(ctx.hostDataDir, { recursive: true, mode: 0o750 });
  const root = fs.realpathSync(ctx.hostDataDir);
  // Resolve the part that exists; the rest Docker creates as plain folders.
  let resolved = root;
  let i = 0;
  for (; i < rest.length; i++) {
    const next = path.join(resolved, rest[i]!);
    let real: string;
    try {
      real = fs.realpathSync(next);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !isDanglingLink(next)) break;
      return refuse(field, `${JSON.stringify(appPath)} cannot be resolved (${(err as NodeJS.ErrnoException).code})`);
    }
    if (real !== root && !real.startsWith(`${root}/`)) refuse(field, `${JSON.stringify(appPath)} leads out of ${APP_DATA} through a symbolic link`);
    resolved = real;
  }
  return path.join(resolved, ...rest.slice(i));
}

function isDanglingLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function checkBinds(binds: unknown, ctx: CreateContext): string[] | undefined {
  if (binds === undefined || binds === null) return undefined;
  if (!Array.isArray(binds)) return refuse('HostConfig.Binds', 'must be a list of "source:target[:options]"');
  return binds.map((b, i) => {
    const field = `HostConfig.Binds[${i}]`;
    if (typeof b !== 'string') return refuse(field, 'must be a string "source:target[:options]"');
    const parts = b.split(':');
    if (parts.length < 2 || parts.length > 3 || !parts[1]) return refuse(field, `${JSON.stringify(b)} is not "source:target[:options]"`);
    for (const o of parts[2]?.split(',') ?? []) if (!BIND_OPTIONS.has(o)) refuse(field, `option ${JSON.stringify(o)} is not allowed (allowed: ${[...BIND_OPTIONS].join(', ')})`);
    return [hostBindSource(field, parts[0]!, ctx), ...parts.slice(1)].join(':');
  });
}

function checkMounts(mounts: unknown, ctx: CreateContext): Json[] | undefined {
  if (mounts === undefined || mounts === null) return undefined;
  if (!Array.isArray(mounts)) return refuse('HostConfig.Mounts', 'must be a list');
  return mounts.map((m, i) => {
    const field = `HostConfig.Mounts[${i}]`;
    if (!isObject(m)) return refuse(field, 'must be an object');
    if (m.Type === 'tmpfs') {
      if (!isUnset(m.Source)) refuse(`${field}.Source`, 'must be empty for a tmpfs mount');
      return m;
    }
    if (m.Type !== 'bind') return refuse(`${field}.Type`, `${JSON.stringify(m.Type)} is not allowed (allowed: bind under ${APP_DATA}, tmpfs)`);
    if (typeof m.Source !== 'string') return refuse(`${field}.Source`, 'must be a path under /app/data');
    if (!isUnset(m.VolumeOptions)) refuse(`${field}.VolumeOptions`, 'is not allowed on a bind mount');
    if (isObject(m.BindOptions)) {
      const p = m.BindOptions.Propagation;
      if (!isUnset(p) && p !== 'private' && p !== 'rprivate') refuse(`${field}.BindOptions.Propagation`, `${JSON.stringify(p)} is not allowed (allowed: private, rprivate)`);
      if (!isUnset(m.BindOptions.CreateMountpoint)) refuse(`${field}.BindOptions.CreateMountpoint`, 'is not allowed');
    }
    return { ...m, Source: hostBindSource(`${field}.Source`, m.Source, ctx) };
  });
}

/** A namespace mode: the engine's own default, or one that keeps the child to itself. */
function checkNamespace(host: Json, field: string, allowed: string[]): void {
  const v = host[field];
  if (isUnset(v) || allowed.includes(v as string)) return;
  refuse(`HostConfig.${field}`, `${JSON.stringify(v)} is not allowed${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}: children get no host or shared namespaces`);
}

function checkNetwork(body: Json, host: Json, ctx: CreateContext): void {
  const mode = host.NetworkMode;
  if (isUnset(mode) || mode === 'default') host.NetworkMode = ctx.networkMode;
  else if (mode !== ctx.networkMode) refuse('HostConfig.NetworkMode', `${JSON.stringify(mode)} is not allowed: children use the network ${JSON.stringify(ctx.networkMode)} (HEARTH_DOCKER_PROXY_NETWORK)`);
  const net = body.NetworkingConfig;
  if (isUnset(net)) return;
  if (!isObject(net)) return refuse('NetworkingConfig', 'must be an object');
  const endpoints = net.EndpointsConfig;
  if (isUnset(endpoints)) return;
  if (!isObject(endpoints)) return refuse('NetworkingConfig.EndpointsConfig', 'must be an object');
  for (const name of Object.keys(endpoints)) {
    if (name !== ctx.networkMode && name !== 'default') refuse(`NetworkingConfig.EndpointsConfig.${name}`, `is not allowed: children use the network ${JSON.stringify(ctx.networkMode)}`);
  }
  if ('default' in endpoints) {
    const { default: settings, ...rest } = endpoints;
    net.EndpointsConfig = { ...rest, [ctx.networkMode]: settings };
  }
}

function checkHostConfig(body: Json, ctx: CreateContext): void {
  if (body.HostConfig === undefined || body.HostConfig === null) body.HostConfig = {};
  const host = body.HostConfig;
  if (!isObject(host)) return refuse('HostConfig', 'must be an object');
  for (const [field, value] of Object.entries(host)) {
    if (FREE_HOST_FIELDS.has(field) || CHECKED_HOST_FIELDS.has(field)) continue;
    // Privileged, CapAdd, Devices, DeviceRequests, DeviceCgroupRules, VolumesFrom, Links, PortBindings,
    // PublishAllPorts, Sysctls, CgroupParent, StorageOpt, VolumeDriver, blkio device limits, OomKillDisable, …
    if (!isUnset(value)) refuse(`HostConfig.${field}`, 'is not allowed');
  }
  if (typeof host.OomScoreAdj === 'number' && host.OomScoreAdj < 0) refuse('HostConfig.OomScoreAdj', 'must not be negative');
  // An explicit empty list would unmask /proc paths; only the engine's defaults are allowed.
  for (const field of ['MaskedPaths', 'ReadonlyPaths']) if (host[field] !== undefined && host[field] !== null) refuse(`HostConfig.${field}`, 'is not allowed');
  checkNamespace(host, 'PidMode', []);
  checkNamespace(host, 'IpcMode', ['private', 'none', 'shareable']);
  checkNamespace(host, 'UTSMode', []);
  checkNamespace(host, 'UsernsMode', []);
  checkNamespace(host, 'CgroupnsMode', ['private']);
  if (!isUnset(host.Runtime) && host.Runtime !== 'runc') refuse('HostConfig.Runtime', `${JSON.stringify(host.Runtime)} is not allowed`);
  if (!isUnset(host.Isolation) && host.Isolation !== 'default') refuse('HostConfig.Isolation', `${JSON.stringify(host.Isolation)} is not allowed`);
  if (!isUnset(host.SecurityOpt)) {
    if (!Array.isArray(host.SecurityOpt)) refuse('HostConfig.SecurityOpt', 'must be a list');
    for (const o of host.SecurityOpt as unknown[]) {
      if (typeof o !== 'string' || !/^no-new-privileges(?:[:=]true)?$/.test(o)) refuse('HostConfig.SecurityOpt', `${JSON.stringify(o)} is not allowed (only no-new-privileges; no unconfined profiles or label changes)`);
    }
  }
  if (isObject(host.LogConfig) && !isUnset(host.LogConfig.Type) && !['json-file', 'local', 'none'].includes(host.LogConfig.Type as string)) {
    refuse('HostConfig.LogConfig.Type', `${JSON.stringify(host.LogConfig.Type)} is not allowed (allowed: json-file, local, none)`);
  }
  const binds = checkBinds(host.Binds, ctx);
  if (binds) host.Binds = binds;
  const mounts = checkMounts(host.Mounts, ctx);
  if (mounts) host.Mounts = mounts;
  checkNetwork(body, host, ctx);
}

/**
 * A container create body as the app sent it → the body the engine gets: refused (naming the
 * field and the rule) unless it stays within the app's data folder and its own namespaces,
 * with bind sources translated to the host and the hearth.* labels set by us.
 */
export function checkCreate(body: unknown, ctx: CreateContext): Json {
  if (!isObject(body)) return refuse('the request body', 'must be a JSON object (a container configuration)');
  if (!isUnset(body.Volumes)) refuse('Volumes', `(anonymous volumes) are not allowed; bind a folder under ${APP_DATA} instead`);
  checkHostConfig(body, ctx);
  if (body.Labels !== undefined && body.Labels !== null && !isObject(body.Labels)) refuse('Labels', 'must be an object of strings');
  const labels = Object.fromEntries(Object.entries((body.Labels as Json | null) ?? {}).filter(([k]) => !k.startsWith('hearth.')));
  body.Labels = { ...labels, [LABEL_APP]: ctx.appId, [LABEL_ROLE]: 'child' };
  return body;
}

/** Container names starting "hearth" are Hearth's own (app containers, scheduler runs). */
export function checkName(name: string | null): void {
  if (name && /^\/?hearth/i.test(name)) refuse('the container name', `${JSON.stringify(name.slice(0, 100))} is reserved: names starting with "hearth" are Hearth's own`);
}
