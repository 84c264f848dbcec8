import { z } from 'zod';
import { generateSecret } from '@hearth/directory';
import type { Addon } from '../addon.ts';
import { appMailAddress } from './mail-address.ts';

export const sendmail: Addon = {
  name: 'sendmail',
  optionsSchema: z.object({ optional: z.boolean().optional(), supportsDisplayName: z.boolean().optional() }).strict(),
  async provision(ctx, existing) {
    if (existing) return existing;
    const address = appMailAddress(ctx);
    return { username: address, password: generateSecret(), from: address, displayName: ctx.app.title };
  },
  async rotate(_ctx, existing) {
    return { ...existing, password: generateSecret() };
  },
  env({ config, options }, c) {
    // optional: the app lets its user configure mail completely; the seed says every variable is absent.
    if (options.optional) return [];
    const vars: [string, string][] = [
      ['CLOUDRON_MAIL_SMTP_SERVER', config.hostname],
      ['CLOUDRON_MAIL_SMTP_PORT', String(config.ports.smtp)],
      ['CLOUDRON_MAIL_SMTPS_PORT', String(config.ports.smtps)],
      ['CLOUDRON_MAIL_SMTP_USERNAME', c.username!],
      ['CLOUDRON_MAIL_SMTP_PASSWORD', c.password!],
      ['CLOUDRON_MAIL_FROM', c.from!],
    ];
    if (options.supportsDisplayName) vars.push(['CLOUDRON_MAIL_FROM_DISPLAY_NAME', c.displayName ?? '']);
    vars.push(['CLOUDRON_MAIL_DOMAIN', config.domain]);
    return vars;
  },
};
