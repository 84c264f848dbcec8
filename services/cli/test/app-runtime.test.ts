import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { appTestEnv, busyboxImage, docker, freePort, hearth, HEARTH_SOURCE_ARGS, parseEnvLines, runCommand, waitFor, type AppTestEnv } from '@hearth/testkit';

/** An app on the real engine through the real CLI, checked with the real docker CLI and curl. */
describe('hearth app on a Docker engine', () => {
  let t: AppTestEnv;
  let env: Record<string, string>;
  let image: string;
  let port: number;
  const id = `rt${Date.now().toString(36)}`;
  const domain = `${id}.example.test`;
  let manifestFile: string;

  type Inspected = {
    Id: string;
    State: { Running: boolean };
    Config: { Env: string[]; Labels: Record<string, string> };
    HostConfig: { ReadonlyRootfs: boolean; Memory: number; NetworkMode: string; RestartPolicy: { Name: string } };
    Mounts: { Destination: string; Type: string; Name?: string; Source: string; RW: boolean }[];
  };
  const inspect = (name: string): Inspected => JSON.parse(docker(['inspect', name]))[0];
  const status = async (): Promise<Record<string, string | number | null>> => {
    const r = await hearth(['app', 'status', id, '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const labelled = (kind: 'ps' | 'volume'): string[] =>
    docker(kind === 'ps' ? ['ps', '-a', '-q', '--filter', `label=hearth.app=${id}`] : ['volume', 'ls', '-q', '--filter', `label=hearth.app=${id}`]).split('\n').filter(Boolean);

  before(async () => {
    port = await freePort();
    t = await appTestEnv(id, {
      imageEnv: { HTTP_PORT: String(port) },
      cmd: 'mkdir -p /tmp/www && echo ok > /tmp/www/healthz && env > /tmp/www/env.txt && date +%s >> /app/data/starts && echo "app listening on $HTTP_PORT" && exec httpd -f -p 127.0.0.1:$HTTP_PORT -h /tmp/www',
    });
    ({ env, image } = t);
    manifestFile = path.join(t.dataDir, 'CloudronManifest.json');
    fs.writeFileSync(manifestFile, JSON.stringify({ title: 'Runtime test', version: '1.0.0', httpPort: port, healthCheckPath: '/healthz', memoryLimit: 64 * 1024 * 1024, addons: { ldap: {}, sendmail: {}, localstorage: {} } }));
  });
  after(() => t.cleanup());

  it('refuses a missing image and leaves no container, volume, directory or app behind', async () => {
    const r = await hearth(['app', 'install', manifestFile, '--id', id, '--domain', domain, '--image', 'hearth-test/no-such-image:1'], { env });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^hearth: image hearth-test\/no-such-image:1 is not on the Docker engine and could not be pulled: .+\n$/);
    assert.deepEqual(labelled('ps'), []);
    assert.deepEqual(labelled('volume'), []);
    assert.equal(fs.existsSync(path.join(t.dataDir, 'apps', id)), false);
    assert.match((await hearth(['app', 'show', id], { env })).stderr, /no such app/);
    const bad = await hearth(['app', 'install', manifestFile, '--id', id, '--domain', domain, '--image', 'Not An Image'], { env });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /image must be a Docker image reference/);
  });

  it('installs the app as a container: read-only root, own /tmp and /run, /app/data, memory limit, restart policy, host network, labels', async () => {
    // The docker addon's provisioning leaves the app's client certificate here; the runtime binds it read-only.
    const dockerCerts = path.join(t.dataDir, 'apps', id, 'docker-certs');
    fs.mkdirSync(dockerCerts, { recursive: true });
    fs.writeFileSync(path.join(dockerCerts, 'ca.pem'), 'not a real CA\n');
    const r = await hearth(['app', 'install', manifestFile, '--id', id, '--domain', domain, '--image', image], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`started container hearth-app-${id} from ${image.replace(/[.:/]/g, '\\$&')}`));
    const c = inspect(`hearth-app-${id}`);
    assert.equal(c.HostConfig.ReadonlyRootfs, true);
    assert.equal(c.HostConfig.Memory, 64 * 1024 * 1024);
    assert.equal(c.HostConfig.NetworkMode, 'host');
    assert.equal(c.HostConfig.RestartPolicy.Name, 'unless-stopped');
    assert.deepEqual(c.Config.Labels, { 'hearth.app': id, 'hearth.role': 'app' });
    const mounts = Object.fromEntries(c.Mounts.map((m) => [m.Destination, [m.Type, m.Name ?? m.Source, m.RW]]));
    assert.deepEqual(mounts, {
      '/tmp': ['volume', `hearth-app-${id}-tmp`, true],
      '/run': ['volume', `hearth-app-${id}-run`, true],
      '/app/data': ['bind', path.join(t.dataDir, 'apps', id, 'data'), true],
      '/etc/docker-certs': ['bind', dockerCerts, false],
    });

    await waitFor(async () => (await status()).health === 'healthy', 60000, 250);
    assert.equal(JSON.parse((await hearth(['app', 'show', id, '--json'], { env })).stdout).upstream, `http://127.0.0.1:${port}`, 'its own port is the upstream');
    const s = await status();
    assert.equal(s.state, 'running');
    assert.equal(s.restarts, 0);

    // The app sees exactly what `app env` prints, plus its origin and domain.
    const printed = parseEnvLines((await hearth(['app', 'env', id], { env })).stdout);
    const seen = parseEnvLines((await runCommand('curl', ['-sf', `http://127.0.0.1:${port}/env.txt`])).stdout);
    assert.ok(printed.CLOUDRON_LDAP_BIND_PASSWORD && printed.CLOUDRON_MAIL_SMTP_PASSWORD);
    for (const [k, v] of Object.entries(printed)) assert.equal(seen[k], v, k);
    assert.equal(seen.CLOUDRON_APP_ORIGIN, `https://${domain}`);
    assert.equal(seen.CLOUDRON_APP_DOMAIN, domain);
    // /app/data was created empty: only what the app wrote is there.
    assert.deepEqual(fs.readdirSync(path.join(t.dataDir, 'apps', id, 'data')), ['starts']);
  });

  it('runs commands in the app with its env: read-only root, writable /tmp and /app/data, exit status passed on', async () => {
    let r = await hearth(['app', 'exec', id, '--', 'sh', '-c', 'echo "$CLOUDRON_LDAP_BIND_DN"; touch /tmp/t /app/data/x && touch /rootfile'], { env });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, `cn=${id},ou=apps,dc=cloudron\n`);
    assert.match(r.stderr, /Read-only file system/);
    r = await hearth(['app', 'exec', id, '--', 'cat'], { env, input: 'through stdin\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'through stdin\n');
    fs.rmSync(path.join(t.dataDir, 'apps', id, 'data', 'x'));
  });

  it('opens an interactive shell through a pseudo-terminal', async () => {
    const r = await runCommand('script', ['-qec', `${process.execPath} ${HEARTH_SOURCE_ARGS.join(' ')} app exec ${id}`, '/dev/null'], {
      env,
      input: 'tty -s && echo "tty:$CLOUDRON_APP_DOMAIN"\nexit 7\n',
      timeoutMs: 30000,
    });
    assert.equal(r.code, 7, r.out);
    assert.match(r.out, new RegExp(`tty:${domain.replace(/\./g, '\\.')}`));
  });

  it('prints and follows the app\'s logs', async () => {
    const r = await hearth(['app', 'logs', id], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`app listening on ${port}`));
    // -f follows the running container (and ends, like docker logs -f, when it stops).
    const child = runCommand(process.execPath, [...HEARTH_SOURCE_ARGS, 'app', 'logs', id, '-f'], { env, timeoutMs: 120_000 });
    const early = await Promise.race([child, new Promise<null>((res) => setTimeout(() => res(null), 3000))]);
    assert.equal(early, null, 'logs -f ended while the app runs');
    assert.equal((await hearth(['app', 'stop', id], { env })).code, 0);
    const followed = await child;
    assert.equal(followed.code, 0, followed.stderr);
    assert.match(followed.stdout, new RegExp(`app listening on ${port}`));
    assert.equal((await hearth(['app', 'start', id], { env })).code, 0);
  });

  it('stops, starts and restarts; /app/data survives', async () => {
    assert.equal((await hearth(['app', 'stop', id], { env })).code, 0);
    assert.equal((await status()).state, 'exited');
    assert.equal((await status()).health, 'not running');
    assert.equal((await hearth(['app', 'start', id], { env })).code, 0);
    await waitFor(async () => (await status()).health === 'healthy', 60000, 250);
    const before = (await status()).startedAt;
    const r = await hearth(['app', 'restart', id], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `restarted app ${id}\n`);
    assert.notEqual((await status()).startedAt, before);
    const starts = fs.readFileSync(path.join(t.dataDir, 'apps', id, 'data', 'starts'), 'utf8').trim().split('\n');
    assert.ok(starts.length >= 4, starts.join(','));
  });

  it('rotate and reinstall recreate the container with the new env; a failed reinstall keeps the old one', async () => {
    const first = inspect(`hearth-app-${id}`).Id;
    const starts = (): number => fs.readFileSync(path.join(t.dataDir, 'apps', id, 'data', 'starts'), 'utf8').trim().split('\n').length;
    const startsBefore = starts();
    let r = await hearth(['app', 'rotate', id], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /container was recreated/);
    const second = inspect(`hearth-app-${id}`);
    assert.notEqual(second.Id, first);
    const password = parseEnvLines((await hearth(['app', 'env', id], { env })).stdout).CLOUDRON_LDAP_BIND_PASSWORD;
    assert.ok(second.Config.Env.includes(`CLOUDRON_LDAP_BIND_PASSWORD=${password}`));

    r = await hearth(['app', 'install', manifestFile, '--id', id, '--domain', domain, '--image', 'hearth-test/no-such-image:2'], { env });
    assert.equal(r.code, 1);
    assert.equal(inspect(`hearth-app-${id}`).Id, second.Id);
    assert.equal(inspect(`hearth-app-${id}`).State.Running, true);
    assert.equal(JSON.parse((await hearth(['app', 'show', id, '--json'], { env })).stdout).image, image);
    assert.deepEqual(labelled('ps'), [second.Id.slice(0, 12)]);

    r = await hearth(['app', 'install', manifestFile, '--id', id, '--domain', domain], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.notEqual(inspect(`hearth-app-${id}`).Id, second.Id);
    assert.equal(labelled('ps').length, 1, 'the previous container is gone');
    await waitFor(async () => (await status()).health === 'healthy', 60000, 250);
    // Both new containers ran with the same /app/data.
    assert.equal(starts(), startsBefore + 2);
  });

  it('uninstall removes the container, its volumes, every container labelled with the app, and /app/data', async () => {
    docker(['run', '-d', '--network', 'host', '--label', `hearth.app=${id}`, '--label', 'hearth.role=child', busyboxImage(), 'sleep', '300']);
    assert.equal(labelled('ps').length, 2);
    const r = await hearth(['app', 'uninstall', id], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(labelled('ps'), []);
    assert.deepEqual(labelled('volume'), []);
    assert.equal(fs.existsSync(path.join(t.dataDir, 'apps', id)), false);
    assert.match((await hearth(['app', 'status', id], { env })).stderr, /no such app/);
  });
});
