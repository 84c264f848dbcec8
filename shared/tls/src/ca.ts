import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { writeFileOnce, type HearthConfig } from '@hearth/config';

/** Hearth's own certificate authority: it signs per-app client certificates and the servers that check them. */
export interface CertificateAuthority {
  cert: string;
  key: string;
  /** the CA certificate's file, to hand to clients as their ca.pem */
  certFile: string;
}

export interface IssuedCertificate {
  cert: string;
  key: string;
  /** upper-case hex without leading zeros, as node's X509Certificate and getPeerCertificate() print it */
  serial: string;
}

const YEAR_MS = 365 * 24 * 3600 * 1000;
// EC keys: as strong as RSA-3072 and fast enough to issue one per app install.
const KEYS = { keyType: 'ec', curve: 'P-256', algorithm: 'sha256' } as const;

/** The serial as getPeerCertificate() reports it, so stored and presented serials compare as strings. */
export function normalSerial(serial: string): string {
  return serial.toUpperCase().replace(/^0+(?=.)/, '');
}

/**
 * The CA in $HEARTH_DATA_DIR/ca/ (folder 0700, key 0600), created on first use. The CLI and the
 * daemons may create it at the same moment: one file written once decides which pair they all use.
 */
export async function loadCa(config: HearthConfig): Promise<CertificateAuthority> {
  const dir = path.join(config.dataDir, 'ca');
  const bundleFile = path.join(dir, 'ca-bundle.pem');
  const certFile = path.join(dir, 'ca.pem');
  let bundle: string;
  if (fs.existsSync(bundleFile)) bundle = fs.readFileSync(bundleFile, 'utf8');
  else {
    const { generate } = await import('selfsigned');
    const pems = await generate([{ name: 'commonName', value: `Hearth CA (${config.hostname})` }], {
      ...KEYS,
      notAfterDate: new Date(Date.now() + 20 * YEAR_MS),
      extensions: [
        { name: 'basicConstraints', cA: true, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      ],
    });
    bundle = writeFileOnce(bundleFile, pems.private + pems.cert);
  }
  const at = bundle.indexOf('-----BEGIN CERTIFICATE-----');
  const key = bundle.slice(0, at);
  const cert = bundle.slice(at);
  if (!fs.existsSync(certFile)) fs.writeFileSync(certFile, cert, { mode: 0o644 });
  return { cert, key, certFile };
}

/**
 * A certificate signed by the CA: for a client (CN names who it is, e.g. an app id) or for a
 * server (valid for the given host names and addresses, plus localhost and loopback).
 */
export async function issueCertificate(ca: CertificateAuthority, opts: { commonName: string; usage: 'client' | 'server'; hosts?: string[]; organizationalUnit?: string }): Promise<IssuedCertificate> {
  const altNames: ({ type: 2; value: string } | { type: 7; ip: string })[] = [];
  if (opts.usage === 'server') {
    for (const h of new Set(['localhost', '127.0.0.1', '::1', ...(opts.hosts ?? [])])) altNames.push(net.isIP(h) ? { type: 7, ip: h } : { type: 2, value: h });
  }
  const { generate } = await import('selfsigned');
  const pems = await generate(
    [{ name: 'commonName', value: opts.commonName }, ...(opts.organizationalUnit ? [{ shortName: 'OU', value: opts.organizationalUnit }] : [])],
    {
      ...KEYS,
      ca: { key: ca.key, cert: ca.cert },
      notAfterDate: new Date(Date.now() + 5 * YEAR_MS),
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: opts.usage === 'server', clientAuth: opts.usage === 'client' },
        ...(altNames.length ? [{ name: 'subjectAltName' as const, altNames }] : []),
      ],
    },
  );
  return { cert: pems.cert, key: pems.private, serial: normalSerial(new crypto.X509Certificate(pems.cert).serialNumber) };
}
