import { z } from 'zod';
import type { Addon } from '../addon.ts';

/** Webmail apps: no credentials of their own; users sign in with their own passwords. */
export const email: Addon = {
  name: 'email',
  optionsSchema: z.object({}).strict(),
  async provision() {
    return {};
  },
  env({ config, directory }) {
    const domains = new Set([config.domain, ...directory.mailboxes().map((m) => m.address.split('@')[1]!)]);
    return [
      ['CLOUDRON_EMAIL_SMTP_SERVER', config.hostname],
      ['CLOUDRON_EMAIL_SMTP_PORT', String(config.ports.smtp)],
      ['CLOUDRON_EMAIL_IMAP_SERVER', config.hostname],
      ['CLOUDRON_EMAIL_IMAP_PORT', String(config.ports.imap)],
      ['CLOUDRON_EMAIL_IMAPS_PORT', String(config.ports.imaps)],
      ['CLOUDRON_EMAIL_SIEVE_SERVER', config.hostname],
      ['CLOUDRON_EMAIL_SIEVE_PORT', String(config.ports.sieve)],
      ['CLOUDRON_EMAIL_DOMAIN', config.domain],
      ['CLOUDRON_EMAIL_DOMAINS', [...domains].sort().join(',')],
      ['CLOUDRON_EMAIL_SERVER_HOST', config.hostname],
    ];
  },
};
