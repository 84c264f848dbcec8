import { z } from 'zod';
import { generateSecret } from '@hearth/directory';
import type { Addon } from '../addon.ts';
import { appMailAddress } from './mail-address.ts';

export const recvmail: Addon = {
  name: 'recvmail',
  optionsSchema: z.object({}).strict(),
  async provision(ctx, existing) {
    if (existing) return existing;
    const address = appMailAddress(ctx);
    return { username: address, password: generateSecret(), address };
  },
  async rotate(_ctx, existing) {
    return { ...existing, password: generateSecret() };
  },
  mailboxes(_ctx, c) {
    return [c.address!];
  },
  env({ config }, c) {
    return [
      ['CLOUDRON_MAIL_IMAP_SERVER', config.hostname],
      ['CLOUDRON_MAIL_IMAP_PORT', String(config.ports.imap)],
      ['CLOUDRON_MAIL_IMAPS_PORT', String(config.ports.imaps)],
      ['CLOUDRON_MAIL_POP3_PORT', String(config.ports.pop3)],
      ['CLOUDRON_MAIL_POP3S_PORT', String(config.ports.pop3s)],
      ['CLOUDRON_MAIL_IMAP_USERNAME', c.username!],
      ['CLOUDRON_MAIL_IMAP_PASSWORD', c.password!],
      ['CLOUDRON_MAIL_TO', c.address!],
      ['CLOUDRON_MAIL_TO_DOMAIN', config.domain],
    ];
  },
};
