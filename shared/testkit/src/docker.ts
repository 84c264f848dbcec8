import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The engine the tests use: HEARTH_DOCKER_HOST, else DOCKER_HOST, else the one scripts/dockerd.sh starts. */
export const TEST_DOCKER_HOST = process.env.HEARTH_DOCKER_HOST || process.env.DOCKER_HOST || 'unix:///var/lib/hearth-dockerd/run/docker.sock';

/** Environment for the real `docker` CLI and for Hearth, both pointed at the test engine. */
export const dockerEnv = (): Record<string, string> => ({ DOCKER_HOST: TEST_DOCKER_HOST, HEARTH_DOCKER_HOST: TEST_DOCKER_HOST });

/** Runs the real docker CLI against the test engine; throws with its stderr on failure. */
export function docker(args: string[], input?: string | Buffer): string {
  const r = spawnSync('docker', args, { env: { ...process.env, ...dockerEnv() }, input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(`docker ${args[0]}: ${r.error.message} (install docker.io)`);
  if (r.status !== 0) throw new Error(`docker ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Fails (never skips) when the engine is missing: Docker is part of the test stack, CI starts it with scripts/dockerd.sh. */
export function requireDocker(): void {
  try {
    docker(['version', '--format', '{{.Server.Version}}']);
  } catch (err) {
    throw new Error(`no Docker engine at ${TEST_DOCKER_HOST}: run scripts/dockerd.sh (${(err as Error).message})`);
  }
}

/**
 * `docker import`s a root filesystem made by `fill(dir)`, tagged by the hash of its contents, so
 * it is built once per engine and reused; returns the tag.
 */
export function importedImage(repository: string, fill: (dir: string) => void): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-rootfs-'));
  try {
    fill(dir);
    const tar = execFileSync('tar', ['-C', dir, '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-c', '.'], { maxBuffer: 1024 * 1024 * 1024 });
    const tag = `${repository}:${createHash('sha256').update(tar).digest('hex').slice(0, 16)}`;
    if (!docker(['image', 'ls', '-q', tag]).trim()) docker(['import', '-', tag], tar);
    return tag;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Debian's busybox-static with every applet linked, plus /etc/passwd and /etc/group for root. */
export function fillBusybox(dir: string): void {
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'etc'));
  fs.copyFileSync('/bin/busybox', path.join(dir, 'bin/busybox'));
  fs.chmodSync(path.join(dir, 'bin/busybox'), 0o755);
  for (const applet of execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
    if (applet !== 'busybox') fs.symlinkSync('busybox', path.join(dir, 'bin', applet));
  }
  fs.writeFileSync(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  fs.writeFileSync(path.join(dir, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
}

/** hearth-test/busybox:<hash>, built from /bin/busybox (Debian busybox-static) when missing. */
export const busyboxImage = (): string => importedImage('hearth-test/busybox', fillBusybox);

/**
 * A throwaway image on top of `base` with environment and a shell command as its CMD
 * (`docker build` from a Dockerfile on stdin: metadata only, no layers); remove it with `docker rmi`.
 */
export function derivedImage(base: string, opts: { env?: Record<string, string>; cmd: string }): string {
  const tag = `hearth-test/app-${randomBytes(5).toString('hex')}:latest`;
  const lines = [`FROM ${base}`, ...Object.entries(opts.env ?? {}).map(([k, v]) => `ENV ${k}=${JSON.stringify(v)}`), `CMD ${JSON.stringify(['/bin/sh', '-c', opts.cmd])}`];
  docker(['build', '-q', '-t', tag, '-'], lines.join('\n') + '\n');
  return tag;
}

/** Containers (with their anonymous volumes) and volumes labelled hearth.app=<appId>: a test's leftovers. */
export function removeAppLeftovers(appId: string): void {
  const list = (args: string[]): string[] => docker(args).split('\n').filter(Boolean);
  for (const c of list(['ps', '-a', '-q', '--filter', `label=hearth.app=${appId}`])) docker(['rm', '-f', '-v', c]);
  for (const v of list(['volume', 'ls', '-q', '--filter', `label=hearth.app=${appId}`])) docker(['volume', 'rm', v]);
}

/**
 * Copies host files and folders (symlinks followed) into a root filesystem at the same paths, with
 * every shared library the ELF files among them load (`ldd`): real Debian tools in a tiny image.
 */
export function fillFromHost(dir: string, paths: string[]): void {
  const copied: string[] = [];
  const copy = (p: string): void => {
    const target = path.join(dir, p);
    if (fs.existsSync(target)) return;
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.cpSync(p, target, { recursive: true, dereference: true });
    copied.push(p);
  };
  for (const p of paths) copy(p);
  const elves = copied.flatMap((p) => (fs.statSync(p).isDirectory() ? (fs.readdirSync(p, { recursive: true }) as string[]).map((f) => path.join(p, f)).filter((f) => f.endsWith('.so')) : [p]));
  const ldd = spawnSync('ldd', elves, { encoding: 'utf8' }).stdout ?? '';
  for (const m of ldd.matchAll(/(?:=> )?(\/\S+) \(0x/g)) copy(m[1]!);
}
