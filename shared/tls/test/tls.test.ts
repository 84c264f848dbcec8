import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { after, before, it } from 'node:test';
import { loadConfig } from '@hearth/config';
import { tempDir } from '@hearth/testkit';
import { loadTls } from '../src/index.ts';

let parent: string;
let umask: number;
before(() => {
  umask = process.umask(0o022);
  parent = tempDir();
});
after(() => {
  process.umask(umask);
  fs.rmSync(parent, { recursive: true, force: true });
});

it('generates one self-signed pair into a 0700 folder, the private key and bundle 0600, and reuses it', async () => {
  const dataDir = path.join(parent, 'data');
  const config = loadConfig({ HEARTH_DATA_DIR: dataDir, HEARTH_HOSTNAME: 'mail.example.test' });
  const tls = await loadTls(config);
  const mode = (f: string): number => fs.statSync(path.join(dataDir, 'tls', f)).mode & 0o777;
  assert.equal(mode('.'), 0o700);
  assert.equal(mode('key.pem'), 0o600);
  assert.equal(mode('bundle.pem'), 0o600);
  assert.ok(new X509Certificate(tls.cert).checkPrivateKey(createPrivateKey(tls.key)));
  assert.match(new X509Certificate(tls.cert).subjectAltName ?? '', /DNS:mail\.example\.test/);
  assert.equal((await loadTls(config)).cert, tls.cert);
});
