import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, runCommand, waitFor } from '@hearth/testkit';
import { engineDocker, proxyStack, type ProxyStack } from './fixture.ts';

/** The engine's view of a container, as the operator sees it. */
function inspect(ref: string): { Id: string; State: { Running: boolean }; Config: { Labels: Record<string, string> }; HostConfig: { Binds: string[] | null; NetworkMode: string } } {
  return JSON.parse(engineDocker(['inspect', '--type', 'container', ref]))[0];
}

const engineHas = (ref: string): boolean => engineDocker(['ps', '-aq', '--no-trunc', '--filter', `id=${ref}`]).trim() !== '';

describe('docker addon: the real docker CLI through the proxy', () => {
  let s: ProxyStack;
  let alpha: string;
  let beta: string;
  let alphaCerts: string;
  let betaCerts: string;
  let BUSYBOX: string;

  before(async () => {
    s = await proxyStack();
    BUSYBOX = s.busybox;
    alpha = `alpha-${s.run}`;
    beta = `beta-${s.run}`;
    const env = await s.install(alpha);
    assert.equal(env.CLOUDRON_DOCKER_HOST, `tcp://127.0.0.1:${s.port}`);
    assert.equal(env.DOCKER_HOST, env.CLOUDRON_DOCKER_HOST);
    assert.equal(env.DOCKER_TLS_VERIFY, '1');
    assert.equal(env.DOCKER_CERT_PATH, '/etc/docker-certs');
    await s.install(beta);
    alphaCerts = s.certDir(alpha);
    betaCerts = s.certDir(beta);
  });
  after(async () => s?.close());

  it('stores the certificate in Docker’s layout with a private key and folder', () => {
    assert.deepEqual(fs.readdirSync(alphaCerts).sort(), ['ca.pem', 'cert.pem', 'key.pem']);
    assert.equal(fs.statSync(alphaCerts).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(alphaCerts, 'key.pem')).mode & 0o777, 0o600);
  });

  it('runs, lists, shows logs of, stops and removes a child with a bind under /app/data', async () => {
    const name = `child-${s.run}`;
    const run = await s.docker(alphaCerts, ['run', '-d', '--name', name, '--label', 'hearth.app=somebody-else', '-v', '/app/data/work:/work', BUSYBOX, 'sh', '-c', 'echo started; echo from-child > /work/out; sleep 120']);
    assert.equal(run.code, 0, run.out);
    const id = run.stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const hostFile = path.join(s.t.dataDir, 'apps', alpha, 'data', 'work', 'out');
    await waitFor(() => fs.existsSync(hostFile) && fs.readFileSync(hostFile, 'utf8') === 'from-child\n', 20_000);

    // The engine's view: our labels (the client's hearth.app overwritten), the host path, the allowed network.
    const info = inspect(id);
    assert.equal(info.Config.Labels['hearth.app'], alpha);
    assert.equal(info.Config.Labels['hearth.role'], 'child');
    assert.deepEqual(info.HostConfig.Binds, [`${fs.realpathSync(path.join(s.t.dataDir, 'apps', alpha, 'data'))}/work:/work`]);
    assert.equal(info.HostConfig.NetworkMode, 'host');

    const ps = await s.docker(alphaCerts, ['ps', '--format', '{{.Names}}']);
    assert.equal(ps.code, 0, ps.out);
    assert.deepEqual(ps.stdout.trim().split('\n'), [name]);
    const logs = await s.docker(alphaCerts, ['logs', name]);
    assert.equal(logs.code, 0, logs.out);
    assert.equal(logs.stdout, 'started\n');
    const inspected = await s.docker(alphaCerts, ['inspect', '--format', '{{.State.Running}}', name]);
    assert.equal(inspected.stdout.trim(), 'true', inspected.out);

    assert.equal((await s.docker(alphaCerts, ['stop', '-t', '1', name])).code, 0);
    assert.equal(inspect(id).State.Running, false);
    const rm = await s.docker(alphaCerts, ['rm', name]);
    assert.equal(rm.code, 0, rm.out);
    assert.equal(engineHas(id), false);
  });

  it('streams a foreground run (attach and wait), stdin included', async () => {
    const r = await s.docker(alphaCerts, ['run', '--rm', '-i', BUSYBOX, 'sh', '-c', 'echo out; cat; exit 3'], 'from stdin\n');
    assert.equal(r.code, 3, r.out);
    assert.equal(r.stdout, 'out\nfrom stdin\n');
  });

  it('follows logs as they are written (logs -f streams through the proxy)', async () => {
    const name = `ticker-${s.run}`;
    assert.equal((await s.docker(alphaCerts, ['run', '-d', '--name', name, BUSYBOX, 'sh', '-c', 'for i in 1 2 3; do echo tick $i; sleep 1; done'])).code, 0);
    const follow = await s.docker(alphaCerts, ['logs', '-f', name]);
    assert.equal(follow.code, 0, follow.out);
    assert.equal(follow.stdout, 'tick 1\ntick 2\ntick 3\n');
    assert.equal((await s.docker(alphaCerts, ['rm', name])).code, 0);
  });

  it('refuses what the seed does not allow, naming the rule', async () => {
    const sleeper = `sleeper-${s.run}`;
    assert.equal((await s.docker(alphaCerts, ['run', '-d', '--name', sleeper, BUSYBOX, 'sleep', '120'])).code, 0);
    const cases: [string[], RegExp][] = [
      [['run', '--privileged', BUSYBOX, 'true'], /HostConfig\.Privileged is not allowed/],
      [['run', '-v', '/etc:/x', BUSYBOX, 'true'], /HostConfig\.Binds\[0\] "\/etc" is outside \/app\/data/],
      [['run', '-v', '/app/data/../../docker-certs:/x', BUSYBOX, 'true'], /HostConfig\.Binds\[0\] .* contains "\." or "\.\."/],
      [['run', '-v', '/etc/docker-certs:/x', BUSYBOX, 'true'], /outside \/app\/data/],
      [['run', '--mount', 'type=volume,source=shared,target=/x', BUSYBOX, 'true'], /HostConfig\.Mounts\[0\]\.Type "volume" is not allowed/],
      [['run', '--cap-add', 'SYS_ADMIN', BUSYBOX, 'true'], /HostConfig\.CapAdd is not allowed/],
      [['run', '--device', '/dev/kmsg', BUSYBOX, 'true'], /HostConfig\.Devices is not allowed/],
      [['run', '--pid', 'host', BUSYBOX, 'true'], /HostConfig\.PidMode "host" is not allowed/],
      [['run', '--ipc', 'host', BUSYBOX, 'true'], /HostConfig\.IpcMode "host" is not allowed/],
      [['run', '--uts', 'host', BUSYBOX, 'true'], /HostConfig\.UTSMode "host" is not allowed/],
      [['run', '--network', 'bridge', BUSYBOX, 'true'], /HostConfig\.NetworkMode "bridge" is not allowed/],
      [['run', '--security-opt', 'apparmor=unconfined', BUSYBOX, 'true'], /HostConfig\.SecurityOpt "apparmor=unconfined" is not allowed/],
      [['run', '--name', 'hearth-app-x', BUSYBOX, 'true'], /name "hearth-app-x" is reserved/],
      [['exec', sleeper, 'ls'], /POST \/containers\/\{id\}\/exec is not an allowed operation/],
      [['kill', sleeper], /POST \/containers\/\{id\}\/kill is not an allowed operation/],
      [['volume', 'ls'], /GET \/volumes is not an allowed operation/],
      [['network', 'create', `n-${s.run}`], /POST \/networks\/create is not an allowed operation/],
      [['images'], /GET \/images\/json is not an allowed operation/],
      [['system', 'prune', '-f'], /POST \/containers\/prune is not an allowed operation/],
    ];
    for (const [args, message] of cases) {
      const r = await s.docker(alphaCerts, args);
      assert.notEqual(r.code, 0, `docker ${args.join(' ')} succeeded`);
      assert.match(r.stderr, /Error response from daemon: /, `docker ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, `docker ${args.join(' ')}: ${r.stderr}`);
    }
    assert.equal(engineDocker(['ps', '-aq', '--filter', `label=hearth.app=${alpha}`]).trim(), inspect(sleeper).Id.slice(0, 12), 'a refused create left a container');
    assert.equal(inspect(sleeper).State.Running, true);
    assert.equal((await s.docker(alphaCerts, ['rm', '-f', sleeper])).code, 0);
    assert.equal(engineDocker(['network', 'ls', '-q', '--filter', `name=n-${s.run}`]).trim(), '');
  });

  it('refuses a bind through a symbolic link that leads out of /app/data', async () => {
    fs.symlinkSync('/etc', path.join(s.t.dataDir, 'apps', alpha, 'data', 'escape'));
    const r = await s.docker(alphaCerts, ['run', '-v', '/app/data/escape/ssl:/x', BUSYBOX, 'true']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /HostConfig\.Binds\[0\] "\/app\/data\/escape\/ssl" leads out of \/app\/data through a symbolic link/);
  });

  it('forwards a pull and relays the engine’s error (no registry here)', async () => {
    const ref = `127.0.0.1:${await freePort()}/hearth-test/nothing:1`;
    const r = await s.docker(alphaCerts, ['pull', ref]);
    assert.notEqual(r.code, 0);
    // the engine's own words: it tried the (closed) loopback registry
    assert.match(r.stderr, /connection refused/, r.out);
    const image = await s.docker(alphaCerts, ['image', 'inspect', '--format', '{{.Id}}', BUSYBOX]);
    assert.equal(image.code, 0, image.out);
    assert.equal(image.stdout.trim(), engineDocker(['image', 'inspect', '--format', '{{.Id}}', BUSYBOX]).trim());
  });

  it("keeps each app's children to itself: another app's certificate can neither see nor touch them", async () => {
    const name = `private-${s.run}`;
    const run = await s.docker(alphaCerts, ['run', '-d', '--name', name, BUSYBOX, 'sleep', '120']);
    assert.equal(run.code, 0, run.out);
    const id = run.stdout.trim();
    const listed = await s.docker(betaCerts, ['ps', '-a', '--format', '{{.Names}}']);
    assert.equal(listed.code, 0, listed.out);
    assert.equal(listed.stdout.trim(), '');
    // a filter naming alpha's label is ANDed with beta's own
    const filtered = await s.docker(betaCerts, ['ps', '-aq', '--filter', `label=hearth.app=${alpha}`]);
    assert.equal(filtered.stdout.trim(), '', filtered.out);
    for (const args of [['logs', name], ['stop', name], ['rm', name], ['inspect', '--type', 'container', name], ['wait', id], ['rm', id.slice(0, 12)], ['start', name]]) {
      const r = await s.docker(betaCerts, args);
      assert.notEqual(r.code, 0, `beta: docker ${args.join(' ')} succeeded`);
      assert.match(r.stderr, /No such container/, `beta: docker ${args.join(' ')}: ${r.stderr}`);
    }
    // rm -f reports success for a container it cannot find (the CLI ignores "No such container" with -f): it must still be there.
    await s.docker(betaCerts, ['rm', '-f', name]);
    assert.equal(inspect(id).State.Running, true);
    // Hearth's own containers (the app's, tasks') are not the app's children either.
    const own = engineDocker(['create', '--label', `hearth.app=${alpha}`, '--label', 'hearth.role=app', '--network', 'host', BUSYBOX, 'true']).trim();
    const r = await s.docker(alphaCerts, ['rm', '-f', own]);
    assert.match(r.stderr, /No such container/);
    assert.equal(engineHas(own), true);
    engineDocker(['rm', own]);
  });

  it('gives children no Docker access: no certificates inside, and the proxy refuses a client without one', async () => {
    const r = await s.docker(alphaCerts, ['run', '--rm', '-v', '/app/data:/app/data', BUSYBOX, 'sh', '-c', 'ls /etc/docker-certs 2>&1; env | grep -c DOCKER_ || true; ls /app/data | grep -c pem || true']);
    assert.equal(r.code, 0, r.out);
    assert.match(r.stdout, /No such file or directory/);
    assert.deepEqual(r.stdout.trim().split('\n').slice(1), ['0', '0']);
    // what a child on the host network could try: the port without a certificate
    const curl = await runCommand('curl', ['-sS', '--cacert', path.join(alphaCerts, 'ca.pem'), `https://127.0.0.1:${s.port}/_ping`]);
    assert.notEqual(curl.code, 0, curl.out);
    const plain = await runCommand('docker', ['ps'], { env: { DOCKER_HOST: `tcp://127.0.0.1:${s.port}`, DOCKER_TLS_VERIFY: '', DOCKER_CERT_PATH: '' } });
    assert.notEqual(plain.code, 0, plain.out);
    // and with the app's certificate, curl gets the engine's answer
    const ok = await runCommand('curl', ['-sS', '--cacert', path.join(alphaCerts, 'ca.pem'), '--cert', path.join(alphaCerts, 'cert.pem'), '--key', path.join(alphaCerts, 'key.pem'), `https://127.0.0.1:${s.port}/_ping`]);
    assert.equal(ok.stdout, 'OK', ok.out);
  });

  it('refuses the old certificate after rotate and accepts the new one', async () => {
    const old = path.join(s.t.dataDir, 'old-certs');
    fs.cpSync(betaCerts, old, { recursive: true });
    assert.equal((await s.docker(old, ['ps'])).code, 0);
    const rotated = await s.cli(['app', 'rotate', beta]);
    assert.equal(rotated.code, 0, rotated.stderr);
    await waitFor(async () => (await s.docker(old, ['ps'])).code !== 0, 10_000);
    const r = await s.docker(old, ['ps']);
    assert.match(r.stderr, /no longer valid/);
    const fresh = await s.docker(betaCerts, ['ps']);
    assert.equal(fresh.code, 0, fresh.out);
  });

  it('removes the children and the certificate on uninstall, and refuses the certificate from then on', async () => {
    const kept = path.join(s.t.dataDir, 'kept-certs');
    fs.cpSync(alphaCerts, kept, { recursive: true });
    const children = (): string[] => engineDocker(['ps', '-aq', '--filter', `label=hearth.app=${alpha}`]).split('\n').filter(Boolean);
    const before = children().length;
    for (const args of [['run', '-d', BUSYBOX, 'sleep', '120'], ['create', BUSYBOX, 'true']]) {
      const r = await s.docker(alphaCerts, args);
      assert.equal(r.code, 0, r.out);
    }
    assert.equal(children().length, before + 2);
    const r = await s.cli(['app', 'uninstall', alpha]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(children(), []);
    assert.equal(fs.existsSync(alphaCerts), false);
    await waitFor(async () => (await s.docker(kept, ['ps'])).code !== 0, 10_000);
    assert.match((await s.docker(kept, ['ps'])).stderr, /no longer valid/);
  });
});
