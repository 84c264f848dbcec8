import { parseEnv } from '@hearth/config';
import { z } from 'zod';

/** Per-mailbox limits (IMAP QUOTA's STORAGE and MESSAGE resources); 0 means none. */
export interface MailQuota {
  bytes: number;
  messages: number;
}

export const NO_QUOTA: MailQuota = { bytes: 0, messages: 0 };

const schema = z.object({
  HEARTH_MAIL_QUOTA_MB: z.coerce.number().int().min(0).default(10240),
  HEARTH_MAIL_QUOTA_MESSAGES: z.coerce.number().int().min(0).default(0),
});

/** The quota every daemon that writes into a mailbox enforces (SMTP delivery, IMAP APPEND/COPY, Sieve). */
export function loadMailQuota(env: NodeJS.ProcessEnv = process.env): MailQuota {
  const e = parseEnv(schema, env);
  return { bytes: e.HEARTH_MAIL_QUOTA_MB * 1024 * 1024, messages: e.HEARTH_MAIL_QUOTA_MESSAGES };
}
