import os from 'node:os';
import { randomBytes } from 'node:crypto';

const host = os.hostname().replace(/[/:]/g, '_');

/** A Maildir file name unique across processes and hosts, with the size (`S=`) Dovecot reads. */
export function uniqueName(size: number): string {
  // seconds and microseconds of the wall clock, as Dovecot writes them, so names sort by arrival
  const us = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  return `${Math.floor(us / 1e6)}.M${us % 1e6}P${process.pid}R${randomBytes(6).toString('hex')}.${host},S=${size}`;
}
