import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { appTestEnv, docker, hearth, runCommand, startDaemon, waitFor, type AppTestEnv } from '@hearth/testkit';

/** The tls addon: the app's pair read-only at /etc/certs, replaced by `app cert` or on disk, the app restarted each time. */
describe('tls addon', () => {
  let t: AppTestEnv;
  let env: Record<string, string>;
  let image: string;
  const id = `tls${Date.now().toString(36)}`;
  const domain = `${id}.example.test`;
  const certsDir = (): string => path.join(t.dataDir, 'apps', id, 'certs');
  const startedAt = (): string => JSON.parse(docker(['inspect', `hearth-app-${id}`]))[0].State.StartedAt;
  const inApp = async (...cmd: string[]): Promise<{ code: number; stdout: string; stderr: string }> => hearth(['app', 'exec', id, '--', ...cmd], { env });
  const newPair = async (cn: string): Promise<{ cert: string; key: string }> => {
    const cert = path.join(t.dataDir, `${cn}.crt`);
    const key = path.join(t.dataDir, `${cn}.key`);
    const r = await runCommand('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${cn}`, '-keyout', key, '-out', cert]);
    assert.equal(r.code, 0, r.out);
    return { cert, key };
  };

  before(async () => {
    t = await appTestEnv(id, { cmd: 'exec sleep 100000', env: { HEARTH_CERT_POLL_SECONDS: '0.5', HEARTH_LOG_LEVEL: 'info' } });
    ({ env, image } = t);
  });
  after(() => t.cleanup());

  it('puts a self-signed pair for the app\'s domain read-only at /etc/certs, replaces it with app cert and restarts the app', { timeout: 180_000 }, async () => {
    const manifest = path.join(t.dataDir, 'app.json');
    fs.writeFileSync(manifest, JSON.stringify({ addons: { tls: {}, localstorage: {} } }));
    let r = await hearth(['app', 'install', manifest, '--id', id, '--domain', domain, '--image', image], { env });
    assert.equal(r.code, 0, r.stderr);
    r = await inApp('cat', '/etc/certs/tls_cert.pem');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(new X509Certificate(r.stdout).subject, `CN=${domain}`);
    assert.equal(r.stdout, fs.readFileSync(path.join(certsDir(), 'tls_cert.pem'), 'utf8'));
    assert.equal((await inApp('sh', '-c', 'test -s /etc/certs/tls_key.pem')).code, 0);
    r = await inApp('sh', '-c', 'echo x > /etc/certs/tls_cert.pem');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Read-only file system/);

    // A key that does not belong to the certificate changes nothing.
    const a = await newPair('a.example.test');
    const b = await newPair('b.example.test');
    const before = fs.readFileSync(path.join(certsDir(), 'tls_cert.pem'), 'utf8');
    r = await hearth(['app', 'cert', id, '--cert', a.cert, '--key', b.key], { env });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'hearth: the key does not belong to the certificate\n');
    assert.equal(fs.readFileSync(path.join(certsDir(), 'tls_cert.pem'), 'utf8'), before);

    const started = startedAt();
    r = await hearth(['app', 'cert', id, '--cert', a.cert, '--key', a.key], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /the app was restarted/);
    assert.notEqual(startedAt(), started);
    assert.equal(new X509Certificate((await inApp('cat', '/etc/certs/tls_cert.pem')).stdout).subject, 'CN=a.example.test');
    assert.equal((await inApp('cat', '/etc/certs/tls_key.pem')).stdout, fs.readFileSync(a.key, 'utf8'));
  });

  it('restarts the app when its pair changes on disk (a renewal), once', { timeout: 120_000 }, async () => {
    const daemon = await startDaemon('services/runtime/src/main.ts', env, (out) => out.includes('"msg":"ready"'), 60000);
    try {
      await new Promise((res) => setTimeout(res, 1500));
      const started = startedAt();
      assert.equal(daemon.output().includes('tls certificate changed'), false, 'no restart while nothing changed');
      const c = await newPair('c.example.test');
      // What a renewal job does: write the new files in place.
      fs.copyFileSync(c.key, path.join(certsDir(), 'tls_key.pem'));
      fs.copyFileSync(c.cert, path.join(certsDir(), 'tls_cert.pem'));
      await waitFor(() => startedAt() !== started, 30000, 250);
      assert.equal(new X509Certificate((await inApp('cat', '/etc/certs/tls_cert.pem')).stdout).subject, 'CN=c.example.test');
      await new Promise((res) => setTimeout(res, 2000));
      assert.equal(daemon.output().match(/tls certificate changed; app restarted/g)?.length, 1);
    } finally {
      await daemon.stop();
    }
  });
});
