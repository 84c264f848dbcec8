import os from 'node:os';
import { randomBytes } from 'node:crypto';

const host = os.hostname().replace(/[/:]/g, '_');

/** A Maildir file name unique across processes and hosts, with the size (`S=`) Dovecot reads. */
export function uniqueName(size: number): string {
  return `${Math.floor(Date.now() / 1000)}.M${process.hrtime.bigint() % 1000000n}P${process.pid}R${randomBytes(6).toString('hex')}.${host},S=${size}`;
}
