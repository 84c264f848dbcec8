import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { checkCreate, type CreateContext } from '../src/create-rules.ts';
import { matchRoute, Refusal } from '../src/routes.ts';
import { ownFilters } from '../src/server.ts';

const refusal = (status: number, message: RegExp) => (e: unknown) => e instanceof Refusal && e.status === status && message.test(e.message);

describe('routes', () => {
  it('matches the whitelisted operations, with or without an API version prefix', () => {
    assert.deepEqual(matchRoute('GET', '/v1.41/containers/json?all=1').op, { kind: 'list' });
    assert.equal(matchRoute('GET', '/v1.41/containers/json').version, '/v1.41');
    assert.equal(matchRoute('HEAD', '/_ping').version, '');
    assert.deepEqual(matchRoute('POST', '/v1.43/containers/abc/start').op, { kind: 'container', action: 'start', ref: 'abc' });
    assert.deepEqual(matchRoute('DELETE', '/v1.41/containers/my_child.1?force=1&v=1').op, { kind: 'container', action: 'remove', ref: 'my_child.1' });
    assert.deepEqual(matchRoute('GET', '/v1.41/images/hearth-test/busybox:latest/json').op, { kind: 'image', ref: 'hearth-test/busybox:latest' });
    assert.deepEqual(matchRoute('POST', '/v1.41/images/create?fromImage=busybox&tag=1').op, { kind: 'pull' });
  });

  it('refuses everything else, naming the operation', () => {
    for (const [method, url] of [
      ['POST', '/v1.41/containers/abc/exec'],
      ['GET', '/volumes'],
      ['POST', '/v1.41/networks/create'],
      ['POST', '/v1.41/build'],
      ['POST', '/v1.41/swarm/init'],
      ['GET', '/v1.41/plugins'],
      ['POST', '/v1.41/containers/prune'],
      ['PUT', '/v1.41/containers/abc/archive'],
      ['GET', '/v1.41/containers/abc/export'],
      ['POST', '/v1.41/containers/abc/update'],
      ['GET', '/events'],
      ['POST', '/session'],
    ]) {
      assert.throws(() => matchRoute(method!, url!), refusal(403, /^refused by the docker proxy: [A-Z]+ \/\S+ is not an allowed operation/), `${method} ${url}`);
    }
    assert.throws(() => matchRoute('POST', '/v1.41/containers/abc/exec'), refusal(403, /POST \/containers\/\{id\}\/exec is not/));
  });

  it('refuses paths that could be read two ways, old API versions and unknown query parameters', () => {
    assert.throws(() => matchRoute('GET', '/v1.41/containers/../volumes'), refusal(400, /malformed path/));
    assert.throws(() => matchRoute('GET', '/v1.41/containers/%2e%2e/json'), refusal(400, /malformed path/));
    assert.throws(() => matchRoute('GET', '/v1.41//containers/json'), refusal(400, /malformed path/));
    assert.throws(() => matchRoute('GET', 'containers/json'), refusal(400, /malformed path/));
    assert.throws(() => matchRoute('POST', '/v1.23/containers/abc/start'), refusal(400, /API version 1\.23 is too old/));
    assert.throws(() => matchRoute('DELETE', '/v1.41/containers/abc?link=1'), refusal(400, /query parameter "link" is not allowed on DELETE \/containers\/abc/));
    assert.throws(() => matchRoute('POST', '/v1.41/images/create?fromSrc=-'), refusal(400, /query parameter "fromSrc"/));
    assert.throws(() => matchRoute('GET', '/v1.41/containers/a$b/json'), refusal(404, /^No such container: a\$b$/));
    assert.throws(() => matchRoute('GET', '/v1.41/images/a..b/json'), refusal(400, /invalid image reference/));
  });
});

describe('container create rules', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-dockerproxy-'));
  after(() => fs.rmSync(root, { recursive: true, force: true }));
  const hostDataDir = path.join(root, 'apps', 'a1', 'data');
  const ctx: CreateContext = { appId: 'a1', hostDataDir, networkMode: 'none' };
  const create = (host: Record<string, unknown>, extra: Record<string, unknown> = {}) => checkCreate({ Image: 'busybox', HostConfig: host, ...extra }, ctx);

  it('translates binds under /app/data to the host folder and labels the child', () => {
    const out = create({ Binds: ['/app/data/x:/x:ro', '/app/data:/d'], Privileged: false, CapAdd: null, Devices: [], NetworkMode: 'default' }, { Labels: { keep: 'me', 'hearth.app': 'other', 'hearth.role': 'app' } });
    const real = fs.realpathSync(hostDataDir);
    assert.deepEqual((out.HostConfig as { Binds: string[] }).Binds, [`${real}/x:/x:ro`, `${real}:/d`]);
    assert.equal((out.HostConfig as { NetworkMode: string }).NetworkMode, 'none');
    assert.deepEqual(out.Labels, { keep: 'me', 'hearth.app': 'a1', 'hearth.role': 'child' });
  });

  it('allows symlinks that stay inside the data folder and refuses those that leave it', () => {
    fs.mkdirSync(path.join(hostDataDir, 'real'), { recursive: true });
    fs.symlinkSync('real', path.join(hostDataDir, 'inside'));
    fs.symlinkSync('/etc', path.join(hostDataDir, 'outside'));
    fs.symlinkSync('../../..', path.join(hostDataDir, 'up'));
    fs.symlinkSync('/nonexistent/x', path.join(hostDataDir, 'dangling'));
    const real = fs.realpathSync(hostDataDir);
    assert.deepEqual((create({ Binds: ['/app/data/inside/new/dir:/x'] }).HostConfig as { Binds: string[] }).Binds, [`${real}/real/new/dir:/x`]);
    for (const src of ['/app/data/outside', '/app/data/outside/ssl', '/app/data/up/apps', '/app/data/dangling']) {
      assert.throws(() => create({ Binds: [`${src}:/x`] }), refusal(403, /HostConfig\.Binds\[0\] .*(leads out of \/app\/data|cannot be resolved)/), src);
    }
    assert.throws(() => create({ Mounts: [{ Type: 'bind', Source: '/app/data/outside', Target: '/x' }] }), refusal(403, /HostConfig\.Mounts\[0\]\.Source .* leads out of/));
  });

  it('refuses each host-touching option by its field name', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ Binds: ['/:/host'] }, /HostConfig\.Binds\[0\] "\/" is outside \/app\/data/],
      [{ Binds: ['/app/database:/x'] }, /is outside \/app\/data/],
      [{ Binds: ['/app/data/a/../../x:/x'] }, /contains "\." or "\.\."/],
      [{ Binds: ['/app/data/./x:/x'] }, /contains "\." or "\.\."/],
      [{ Binds: ['vol:/x'] }, /named volume/],
      [{ Binds: ['/app/data:/x:rshared'] }, /option "rshared" is not allowed/],
      [{ Binds: [42] }, /HostConfig\.Binds\[0\] must be a string/],
      [{ Binds: 'x' }, /HostConfig\.Binds must be a list/],
      [{ Mounts: [{ Type: 'volume', Source: 'v', Target: '/x' }] }, /HostConfig\.Mounts\[0\]\.Type "volume" is not allowed/],
      [{ Mounts: [{ Type: 'bind', Source: '/app/data', Target: '/x', BindOptions: { Propagation: 'rshared' } }] }, /Propagation "rshared" is not allowed/],
      [{ Privileged: true }, /HostConfig\.Privileged is not allowed/],
      [{ CapAdd: ['NET_ADMIN'] }, /HostConfig\.CapAdd is not allowed/],
      [{ Devices: [{ PathOnHost: '/dev/sda' }] }, /HostConfig\.Devices is not allowed/],
      [{ DeviceRequests: [{ Count: -1 }] }, /HostConfig\.DeviceRequests is not allowed/],
      [{ VolumesFrom: ['other'] }, /HostConfig\.VolumesFrom is not allowed/],
      [{ Links: ['other:o'] }, /HostConfig\.Links is not allowed/],
      [{ PortBindings: { '80/tcp': [{ HostPort: '80' }] } }, /HostConfig\.PortBindings is not allowed/],
      [{ Sysctls: { 'kernel.shmmax': '1' } }, /HostConfig\.Sysctls is not allowed/],
      [{ CgroupParent: '/' }, /HostConfig\.CgroupParent is not allowed/],
      [{ MaskedPaths: [] }, /HostConfig\.MaskedPaths is not allowed/],
      [{ ReadonlyPaths: [] }, /HostConfig\.ReadonlyPaths is not allowed/],
      [{ PidMode: 'host' }, /HostConfig\.PidMode "host" is not allowed/],
      [{ PidMode: 'container:abc' }, /HostConfig\.PidMode "container:abc" is not allowed/],
      [{ IpcMode: 'host' }, /HostConfig\.IpcMode "host"/],
      [{ UTSMode: 'host' }, /HostConfig\.UTSMode "host"/],
      [{ UsernsMode: 'host' }, /HostConfig\.UsernsMode "host"/],
      [{ CgroupnsMode: 'host' }, /HostConfig\.CgroupnsMode "host"/],
      [{ NetworkMode: 'host' }, /HostConfig\.NetworkMode "host" is not allowed: children use the network "none"/],
      [{ NetworkMode: 'container:x' }, /HostConfig\.NetworkMode "container:x"/],
      [{ SecurityOpt: ['seccomp=unconfined'] }, /SecurityOpt "seccomp=unconfined" is not allowed/],
      [{ SecurityOpt: ['label=disable'] }, /SecurityOpt "label=disable" is not allowed/],
      [{ Runtime: 'runsc' }, /HostConfig\.Runtime "runsc" is not allowed/],
      [{ LogConfig: { Type: 'syslog', Config: { 'syslog-address': 'udp://x' } } }, /LogConfig\.Type "syslog" is not allowed/],
      [{ OomScoreAdj: -1000 }, /HostConfig\.OomScoreAdj must not be negative/],
      [{ SomethingNew: { x: 1 } }, /HostConfig\.SomethingNew is not allowed/],
    ];
    for (const [host, message] of cases) assert.throws(() => create(host), refusal(403, message), JSON.stringify(host));
    assert.throws(() => create({}, { Volumes: { '/data': {} } }), refusal(403, /^refused by the docker proxy: Volumes \(anonymous volumes\) are not allowed/));
    assert.throws(() => create({}, { NetworkingConfig: { EndpointsConfig: { bridge: {} } } }), refusal(403, /NetworkingConfig\.EndpointsConfig\.bridge is not allowed/));
    assert.throws(() => checkCreate([], ctx), refusal(403, /the request body must be a JSON object/));
    assert.throws(() => create({}, { Labels: 'x' }), refusal(403, /Labels must be an object/));
  });

  it('lets through what only shapes the child itself', () => {
    const out = create({ Memory: 1 << 26, CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'], Tmpfs: { '/run': 'size=1m' }, Mounts: [{ Type: 'tmpfs', Target: '/t' }], ReadonlyRootfs: true, AutoRemove: true, IpcMode: 'private' });
    assert.equal((out.HostConfig as { Memory: number }).Memory, 1 << 26);
  });
});

describe('list filters', () => {
  it("adds the app's labels to either filter shape", () => {
    assert.deepEqual(ownFilters(null, 'a1'), { label: { 'hearth.app=a1': true, 'hearth.role=child': true } });
    assert.deepEqual(ownFilters('{"label":["hearth.app=a2"],"status":{"running":true}}', 'a1'), {
      label: { 'hearth.app=a2': true, 'hearth.app=a1': true, 'hearth.role=child': true },
      status: { running: true },
    });
    assert.throws(() => ownFilters('{', 'a1'), refusal(400, /not valid JSON/));
    assert.throws(() => ownFilters('[]', 'a1'), refusal(400, /must be a JSON object/));
    assert.throws(() => ownFilters('{"label":[1]}', 'a1'), refusal(400, /filter "label" must be a list of strings/));
  });
});
