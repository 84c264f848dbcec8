import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { appDockerCertsDir, DOCKER_CERT_PATH } from '@hearth/runtime';
import { issueCertificate, loadCa, normalSerial } from '@hearth/tls';
import type { Addon, AddonContext, Credentials } from '../addon.ts';

/** Writes aside and renames, file by file, so a running app never reads a half-written file. */
function writeAtomically(file: string, contents: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, contents, { mode });
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, file);
}

/** A new client certificate for the app (CN = app id) from the Hearth CA, written where DOCKER_CERT_PATH points. */
async function issue(ctx: AddonContext): Promise<Credentials> {
  const ca = await loadCa(ctx.config);
  const issued = await issueCertificate(ca, { commonName: ctx.app.id, usage: 'client', organizationalUnit: 'Hearth docker addon' });
  const dir = appDockerCertsDir(ctx.config.dataDir, ctx.app.id);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  writeAtomically(path.join(dir, 'key.pem'), issued.key, 0o600);
  writeAtomically(path.join(dir, 'cert.pem'), issued.cert, 0o644);
  writeAtomically(path.join(dir, 'ca.pem'), ca.cert, 0o644);
  return { serial: issued.serial };
}

/** The serial of the certificate on disk, if there is one. */
function serialOnDisk(ctx: AddonContext): string | undefined {
  try {
    return normalSerial(new X509Certificate(fs.readFileSync(path.join(appDockerCertsDir(ctx.config.dataDir, ctx.app.id), 'cert.pem'))).serialNumber);
  } catch {
    return undefined;
  }
}

/**
 * The seed's restricted Docker API: a client certificate naming the app, which the docker proxy
 * (services/dockerproxy) accepts while the app is installed and the serial is the stored one.
 * Rotate issues a new certificate (the old one is refused from then on); uninstall deletes it.
 */
export const docker: Addon = {
  name: 'docker',
  optionsSchema: z.object({}).strict(),
  async provision(ctx, existing) {
    if (existing?.serial && serialOnDisk(ctx) === existing.serial) return existing;
    return issue(ctx);
  },
  async rotate(ctx) {
    return issue(ctx);
  },
  async deprovision(ctx) {
    fs.rmSync(appDockerCertsDir(ctx.config.dataDir, ctx.app.id), { recursive: true, force: true });
  },
  env({ config }) {
    const host = `tcp://${config.hostname}:${config.ports.dockerProxy}`;
    return [
      ['CLOUDRON_DOCKER_HOST', host],
      ['DOCKER_HOST', host],
      ['DOCKER_TLS_VERIFY', '1'],
      ['DOCKER_CERT_PATH', DOCKER_CERT_PATH],
    ];
  },
};
