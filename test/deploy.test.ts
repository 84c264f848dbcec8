import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments, parse } from 'yaml';
import { DEFAULT_PORTS, type PortName } from '@hearth/config';
import { REPO_ROOT, runCommand } from '@hearth/testkit';

/**
 * The deployment recipes in deploy/, checked offline: every Kubernetes object against the
 * API's JSON schema (kubernetes-models), the HAProxy config by haproxy itself, the compose
 * file by docker-compose, and all three against what the daemons really listen on.
 */

const DEPLOY = path.join(REPO_ROOT, 'deploy');
const require = createRequire(import.meta.url);

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
}
interface Container {
  name: string;
  command: string[];
  ports?: { name: string; containerPort: number }[];
  readinessProbe?: { exec?: { command: string[] } };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodTemplate {
  metadata: { labels: Record<string, string> };
  spec: { containers: Container[]; volumes?: { name: string; persistentVolumeClaim?: { claimName: string } }[]; hostNetwork?: boolean };
}

const k8s = parseAllDocuments(fs.readFileSync(path.join(DEPLOY, 'kubernetes', 'hearth.yaml'), 'utf8')).map((d) => d.toJS() as K8sObject);
const byKind = (kind: string) => k8s.filter((o) => o.kind === kind);
const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
/** the port names the container healthcheck takes (healthcheck.js <port-name>...) */
const healthNames = (c: Container): PortName[] => (c.readinessProbe?.exec?.command ?? []).slice(2) as PortName[];

describe('Kubernetes manifests (deploy/kubernetes/hearth.yaml)', () => {
  it('every object is valid against the Kubernetes API schema', () => {
    assert.ok(k8s.length > 10);
    for (const o of k8s) {
      const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
      const model = require(`kubernetes-models/${group ? `${group}/` : ''}${version}/${o.kind}`) as Record<string, new (data: unknown) => { validate(): void }>;
      assert.doesNotThrow(() => new model[o.kind]!(o).validate(), `${o.kind} ${o.metadata.name}`);
    }
  });

  it('a Deployment per daemon, no StatefulSet; each replicated one has a PodDisruptionBudget, a readiness check on its real ports, and the shared volume', () => {
    assert.equal(byKind('StatefulSet').length, 0);
    const deployments = byKind('Deployment');
    const names = deployments.map((d) => d.metadata.name).sort();
    assert.deepEqual(names, ['apps', 'console', 'imap', 'ldap', 'managesieve', 'oidc', 'pop3', 'proxyauth', 'sftp', 'smtp', 'turn']);
    const claims = byKind('PersistentVolumeClaim');
    assert.deepEqual(claims.map((c) => [c.metadata.name, (c.spec as { accessModes: string[] }).accessModes]), [['hearth-data', ['ReadWriteMany']]]);
    for (const d of deployments) {
      const spec = d.spec as { replicas: number; template: PodTemplate };
      const [c] = spec.template.spec.containers;
      assert.ok(c, d.metadata.name);
      assert.ok(fs.existsSync(path.join(REPO_ROOT, c.command[2]!.replace('/dist/', '/src/').replace(/\.js$/, '.ts'))), `${d.metadata.name} runs ${c.command[2]}`);
      assert.deepEqual(c.volumeMounts, [{ name: 'data', mountPath: '/data' }]);
      assert.equal(spec.template.spec.volumes?.[0]?.persistentVolumeClaim?.claimName, 'hearth-data');
      if (d.metadata.name === 'apps') {
        assert.equal(spec.replicas, 1, 'the per-app Redis instances run once');
        continue;
      }
      assert.ok(spec.replicas >= 2, `${d.metadata.name}: replicas`);
      const health = healthNames(c);
      assert.ok(health.length > 0, `${d.metadata.name}: readiness probe`);
      const published = new Set((c.ports ?? []).map((p) => p.containerPort));
      for (const n of health) assert.ok(published.has(DEFAULT_PORTS[n]), `${d.metadata.name}: ${n} is port ${DEFAULT_PORTS[n]}`);
      const labels = spec.template.metadata.labels;
      const budgets = byKind('PodDisruptionBudget').filter((p) => matches((p.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels, labels));
      assert.equal(budgets.length, 1, `${d.metadata.name}: one PodDisruptionBudget`);
      assert.ok((budgets[0]!.spec as { minAvailable: number }).minAvailable < spec.replicas, `${d.metadata.name}: a node can be drained`);
      if (spec.template.spec.hostNetwork) continue; // TURN: on the node's ports
      const services = byKind('Service').filter((s) => matches((s.spec as { selector: Record<string, string> }).selector, labels));
      const targets = new Set(services.flatMap((s) => (s.spec as { ports: { targetPort: string }[] }).ports.map((p) => p.targetPort)));
      for (const p of c.ports ?? []) assert.ok(targets.has(p.name), `${d.metadata.name}: port ${p.name} has a Service`);
    }
  });
});

interface HaproxyBackend {
  name: string;
  mode: string;
  service: string;
  port: number;
}

function haproxyConfig(): { binds: number[]; backends: HaproxyBackend[] } {
  const binds: number[] = [];
  const backends: HaproxyBackend[] = [];
  let current: HaproxyBackend | null = null;
  for (const raw of fs.readFileSync(path.join(DEPLOY, 'haproxy.cfg'), 'utf8').split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const section = /^(frontend|backend|global|defaults|resolvers) ?(\S*)/.exec(line);
    if (section) current = section[1] === 'backend' ? { name: section[2]!, mode: '', service: '', port: 0 } : null;
    if (section?.[1] === 'backend') backends.push(current!);
    const bind = /^bind :(\d+)$/.exec(line);
    if (bind) binds.push(Number(bind[1]));
    const mode = /^mode (\w+)$/.exec(line);
    if (mode && current) current.mode = mode[1]!;
    const server = /^server-template \S+ \d+ ([\w-]+):(\d+)$/.exec(line);
    if (server && current) Object.assign(current, { service: server[1], port: Number(server[2]) });
  }
  return { binds, backends };
}

describe('HAProxy and compose (deploy/haproxy.cfg, deploy/compose.replicas.yml)', () => {
  it('haproxy -c accepts the config', async () => {
    const r = await runCommand('haproxy', ['-c', '-f', path.join(DEPLOY, 'haproxy.cfg')]);
    assert.equal(r.code, 0, r.out);
  });

  it('docker-compose accepts the compose file', async () => {
    const r = await runCommand('docker-compose', ['-f', path.join(DEPLOY, 'compose.replicas.yml'), 'config', '-q']);
    assert.equal(r.code, 0, r.out);
  });

  it('every backend is a replicated compose service on a port its daemon listens on; only HAProxy publishes them', () => {
    const compose = parse(fs.readFileSync(path.join(DEPLOY, 'compose.replicas.yml'), 'utf8'), { merge: true }) as { services: Record<string, { deploy?: { replicas: number }; ports?: string[] }> };
    const { binds, backends } = haproxyConfig();
    const daemonPorts = new Set<number>(Object.values(DEFAULT_PORTS));
    assert.ok(backends.length >= 10);
    for (const b of backends) {
      const s = compose.services[b.service];
      assert.ok(s, `backend ${b.name}: compose service ${b.service}`);
      assert.ok((s.deploy?.replicas ?? 1) >= 2, `${b.service} is replicated`);
      assert.equal(s.ports, undefined, `${b.service} publishes nothing itself`);
      assert.ok(daemonPorts.has(b.port), `backend ${b.name}: ${b.port} is a daemon's port`);
      assert.ok(['tcp', 'http'].includes(b.mode), `backend ${b.name}: mode`);
    }
    assert.ok(!binds.includes(DEFAULT_PORTS.smtpInbound), 'the MX port is not balanced: inbound mail needs the sender address');
    const published = (compose.services.haproxy?.ports ?? []).map((p) => Number(p.split(':')[0]));
    assert.deepEqual([...published].sort(), [...binds].sort());
  });
});
