import { createHash, createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { selfSigned } from '@hearth/tls';
import { EngineError } from './engine.ts';
import { appCertsDir } from './names.ts';

/** The tls addon's files, as the app sees them in /etc/certs. */
export const CERT_FILE = 'tls_cert.pem';
export const KEY_FILE = 'tls_key.pem';
/** the fingerprint of the pair the app's container was last (re)started with; the runtime daemon compares against it */
const APPLIED_FILE = '.applied';

export class CertError extends Error {}

/** Checks that `certPem` is a certificate (chain) and `keyPem` its private key; the message says what is wrong. */
export function checkCertPair(certPem: string, keyPem: string): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new CertError(`the certificate is not a PEM certificate: ${(err as Error).message}`);
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new CertError(`the key is not a PEM private key: ${(err as Error).message}`);
  }
  if (!cert.checkPrivateKey(key)) throw new CertError('the key does not belong to the certificate');
}

function writeAside(file: string, contents: string, mode: number): string {
  const tmp = `${file}.${randomBytes(4).toString('hex')}`;
  fs.writeFileSync(tmp, contents, { mode });
  return tmp;
}

/** Puts a pair in the app's certificate folder; each file is replaced atomically (rename), so the app never reads half a file. */
export function writeAppCert(dataDir: string, appId: string, certPem: string, keyPem: string): void {
  checkCertPair(certPem, keyPem);
  const dir = appCertsDir(dataDir, appId);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certTmp = writeAside(path.join(dir, CERT_FILE), certPem, 0o644);
  const keyTmp = writeAside(path.join(dir, KEY_FILE), keyPem, 0o600);
  fs.renameSync(keyTmp, path.join(dir, KEY_FILE));
  fs.renameSync(certTmp, path.join(dir, CERT_FILE));
}

/** The app's pair when it has one, otherwise a self-signed one for its domain (shared/tls). */
export async function ensureAppCert(dataDir: string, appId: string, domain: string): Promise<void> {
  const dir = appCertsDir(dataDir, appId);
  if (fs.existsSync(path.join(dir, CERT_FILE)) && fs.existsSync(path.join(dir, KEY_FILE))) return;
  const pems = await selfSigned(domain, [{ type: 2, value: domain }]);
  writeAppCert(dataDir, appId, pems.cert, pems.private);
  markCertApplied(dataDir, appId);
}

/** SHA-256 over both files; null when the app has no pair. */
export function certFingerprint(dataDir: string, appId: string): string | null {
  const dir = appCertsDir(dataDir, appId);
  try {
    return createHash('sha256').update(fs.readFileSync(path.join(dir, CERT_FILE))).update(fs.readFileSync(path.join(dir, KEY_FILE))).digest('hex');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new EngineError(`cannot read the certificate of app ${appId}: ${(err as Error).message}`);
  }
}

/** Records that the app's container now runs with the current pair. */
export function markCertApplied(dataDir: string, appId: string): void {
  const fp = certFingerprint(dataDir, appId);
  if (fp) fs.writeFileSync(path.join(appCertsDir(dataDir, appId), APPLIED_FILE), fp + '\n');
}

/** True when the pair on disk is not the one the app was last started with (a renewal or `app cert`). */
export function certChanged(dataDir: string, appId: string): boolean {
  const fp = certFingerprint(dataDir, appId);
  if (!fp) return false;
  try {
    return fs.readFileSync(path.join(appCertsDir(dataDir, appId), APPLIED_FILE), 'utf8').trim() !== fp;
  } catch {
    return true;
  }
}
