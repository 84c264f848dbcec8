import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { busyboxImage, docker as engineDocker, freePort, hearth, parseEnvLines, requireDocker, runCommand, startDaemon, testEnv, TEST_DOCKER_HOST, type CommandResult, type Daemon, type TestEnv } from '@hearth/testkit';

export { engineDocker };

/** The engine (scripts/dockerd.sh's) and the busybox image, imported from busybox-static when missing; fails, never skips, without an engine. */
export function engineWithBusybox(): string {
  requireDocker();
  return busyboxImage();
}

export interface ProxyStack {
  t: TestEnv;
  proxy: Daemon;
  port: number;
  /** a suffix unique to this run, for container names */
  run: string;
  /** the busybox image's tag */
  busybox: string;
  install(id: string): Promise<Record<string, string>>;
  cli(args: string[]): ReturnType<typeof hearth>;
  certDir(id: string): string;
  /** the real docker CLI as the app would run it: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH */
  docker(certDir: string, args: string[], input?: string): Promise<CommandResult>;
  close(): Promise<void>;
}

/** A data dir, the dockerproxy daemon in front of the test engine (children on the host network), and `hearth app` for installs. */
export async function proxyStack(): Promise<ProxyStack> {
  const busybox = engineWithBusybox();
  const port = await freePort();
  const t = await testEnv({ env: { HEARTH_DOCKER_HOST: TEST_DOCKER_HOST, HEARTH_DOCKER_PROXY_PORT: String(port), HEARTH_DOCKER_PROXY_NETWORK: 'host', HEARTH_LOG_LEVEL: 'info' } });
  const proxy = await startDaemon('services/dockerproxy/src/main.ts', t.env, (out) => out.includes('"ready"'));
  const dockerConfig = path.join(t.dataDir, 'docker-client');
  fs.mkdirSync(dockerConfig);
  const run = randomBytes(4).toString('hex');
  const installed: string[] = [];
  const s: ProxyStack = {
    t,
    proxy,
    port,
    run,
    busybox,
    cli: (args) => hearth(args, { env: t.env }),
    async install(id) {
      const file = path.join(t.dataDir, `${id}.json`);
      fs.writeFileSync(file, JSON.stringify({ id: `test.${id}`, title: id, version: '1.0.0', manifestVersion: 2, addons: { docker: {}, localstorage: {} } }));
      const r = await s.cli(['app', 'install', file, '--id', id, '--domain', `${id}.example.test`]);
      if (r.code !== 0) throw new Error(`install ${id}: ${r.stderr}`);
      installed.push(id);
      const env = await s.cli(['app', 'env', id]);
      return parseEnvLines(env.stdout);
    },
    certDir: (id) => path.join(t.dataDir, 'apps', id, 'docker-certs'),
    docker: (certDir, args, input) =>
      runCommand('docker', args, {
        input,
        timeoutMs: 60_000,
        env: { DOCKER_HOST: `tcp://127.0.0.1:${port}`, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certDir, DOCKER_CONFIG: dockerConfig },
      }),
    async close() {
      await proxy.stop();
      for (const id of installed) {
        const ids = engineDocker(['ps', '-aq', '--filter', `label=hearth.app=${id}`]).split('\n').filter(Boolean);
        if (ids.length) engineDocker(['rm', '-f', '-v', ...ids]);
      }
      await t.cleanup();
    },
  };
  return s;
}
