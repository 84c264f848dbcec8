import { parseEnv } from '@hearth/config';
import { z } from 'zod';

/** Settings only the IMAP daemon has, read once at start. */
export interface ImapSettings {
  /** largest APPEND message */
  maxMessageBytes: number;
  /** per-mailbox storage quota (0 = none) */
  quotaBytes: number;
}

const schema = z.object({
  HEARTH_IMAP_MAX_MESSAGE_MB: z.coerce.number().int().min(1).max(1024).default(50),
  HEARTH_MAIL_QUOTA_MB: z.coerce.number().int().min(0).default(10240),
});

export function loadImapSettings(env: NodeJS.ProcessEnv = process.env): ImapSettings {
  const e = parseEnv(schema, env);
  return { maxMessageBytes: e.HEARTH_IMAP_MAX_MESSAGE_MB * 1024 * 1024, quotaBytes: e.HEARTH_MAIL_QUOTA_MB * 1024 * 1024 };
}
