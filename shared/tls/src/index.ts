import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { writeFileOnce, type HearthConfig } from '@hearth/config';

export interface TlsMaterial {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

type AltName = { type: 2; value: string } | { type: 7; ip: string };

/** A self-signed server certificate (RSA 2048, SHA-256, five years) for `commonName` and `altNames`. */
export async function selfSigned(commonName: string, altNames: AltName[]): Promise<{ cert: string; private: string }> {
  // loaded only when a certificate is made (first start), not by every daemon at every start
  const { generate } = await import('selfsigned');
  return generate([{ name: 'commonName', value: commonName }], {
    keySize: 2048,
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 5 * 365 * 24 * 3600 * 1000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
}

/**
 * The certificate every TLS port serves: HEARTH_TLS_CERT/KEY when set, otherwise a
 * self-signed pair generated once into $HEARTH_DATA_DIR/tls/ and reused after.
 * Concurrent daemons starting together agree on one pair (write to temp, then link).
 */
export async function loadTls(config: HearthConfig): Promise<TlsMaterial> {
  if (config.tlsCert && config.tlsKey) {
    return { cert: fs.readFileSync(config.tlsCert, 'utf8'), key: fs.readFileSync(config.tlsKey, 'utf8'), certFile: config.tlsCert, keyFile: config.tlsKey };
  }
  const dir = path.join(config.dataDir, 'tls');
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  const bundleFile = path.join(dir, 'bundle.pem');
  let bundle: string;
  if (fs.existsSync(bundleFile)) bundle = fs.readFileSync(bundleFile, 'utf8');
  else {
    const altNames: AltName[] = [
      { type: 2 as const, value: 'localhost' },
      { type: 7 as const, ip: '127.0.0.1' },
      { type: 7 as const, ip: '::1' },
    ];
    if (net.isIP(config.hostname)) {
      if (!['127.0.0.1', '::1'].includes(config.hostname)) altNames.push({ type: 7, ip: config.hostname });
    } else if (config.hostname !== 'localhost') altNames.push({ type: 2, value: config.hostname });
    const pems = await selfSigned(config.hostname, altNames);
    // One file written once decides the winner when several daemons start at once; the losers use its pair.
    bundle = writeFileOnce(bundleFile, pems.private + pems.cert);
  }
  const key = bundle.slice(0, bundle.indexOf('-----BEGIN CERTIFICATE-----'));
  const cert = bundle.slice(bundle.indexOf('-----BEGIN CERTIFICATE-----'));
  if (!fs.existsSync(certFile)) fs.writeFileSync(certFile, cert);
  if (!fs.existsSync(keyFile)) fs.writeFileSync(keyFile, key, { mode: 0o600 });
  return { cert, key, certFile, keyFile };
}
export { loadCa, issueCertificate, normalSerial, type CertificateAuthority, type IssuedCertificate } from './ca.ts';
