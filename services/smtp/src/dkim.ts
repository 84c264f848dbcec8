import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { writeFileOnce, type HearthConfig } from '@hearth/config';
import type { Directory } from '@hearth/directory';

export const DKIM_SELECTOR = 'hearth';

const DOMAIN_RE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/;

export interface DkimSigningKey {
  domainName: string;
  keySelector: string;
  privateKey: string;
}

function keyPath(dataDir: string, domain: string): string {
  return path.join(dataDir, 'dkim', `${domain}.private.pem`);
}

/** The domain's private key, generated (RSA 2048) and stored 0600 the first time it is needed. */
export function ensureDkimKey(dataDir: string, domain: string): string {
  const d = domain.toLowerCase();
  if (!DOMAIN_RE.test(d)) throw new Error(`not a domain name: ${domain}`);
  const file = keyPath(dataDir, d);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  // if another process won the race, its key is the key
  return writeFileOnce(file, privateKey);
}

export interface DkimDnsRecord {
  /** e.g. hearth._domainkey.example.test */
  name: string;
  type: 'TXT';
  /** v=DKIM1; k=rsa; p=<base64 SPKI> */
  value: string;
  /** the value cut into ≤255-character strings, as a zone file's TXT record needs them */
  strings: string[];
}

/** What `hearth mail dkim <domain>` prints: the TXT record to publish (creates the key if needed). */
export function dkimDnsRecord(config: HearthConfig, domain: string): DkimDnsRecord {
  const pem = ensureDkimKey(config.dataDir, domain);
  const spki = createPublicKey(pem).export({ type: 'spki', format: 'der' }).toString('base64');
  const value = `v=DKIM1; k=rsa; p=${spki}`;
  const strings: string[] = [];
  for (let i = 0; i < value.length; i += 255) strings.push(value.slice(i, i + 255));
  return { name: `${DKIM_SELECTOR}._domainkey.${domain.toLowerCase()}`, type: 'TXT', value, strings };
}

/** The record as a zone file line; a TXT string is at most 255 characters, resolvers join them. */
export function dkimZoneLine(record: DkimDnsRecord): string {
  return `${record.name}. IN TXT ${record.strings.map((part) => `"${part}"`).join(' ')}`;
}

/** The domains Hearth signs mail for: its own and those it hosts mailboxes in (a user's email elsewhere, gmail.com, is not ours to sign). */
export function signedDomains(config: HearthConfig, directory: Directory): Set<string> {
  const domains = new Set([config.domain]);
  for (const m of directory.mailboxes()) domains.add(m.address.slice(m.address.lastIndexOf('@') + 1).toLowerCase());
  return domains;
}

/** Signing keys per local domain, cached. */
export class DkimKeys {
  private readonly cache = new Map<string, DkimSigningKey>();

  constructor(private readonly dataDir: string) {}

  forDomain(domain: string): DkimSigningKey {
    const d = domain.toLowerCase();
    let k = this.cache.get(d);
    if (!k) {
      k = { domainName: d, keySelector: DKIM_SELECTOR, privateKey: ensureDkimKey(this.dataDir, d) };
      this.cache.set(d, k);
    }
    return k;
  }
}
