import type { Directory } from '@hearth/directory';

/** A local recipient: the mailbox that gets the message, and the RFC 5233 detail the address carried. */
export interface LocalRecipient {
  /** the directory's mailbox address (lowercase) */
  mailbox: string;
  /** "lists" of user+lists@domain; null when the address had none */
  detail: string | null;
}

/**
 * Postfix's recipient_delimiter rule: an address that is a mailbox as written is that mailbox;
 * otherwise `user<delim>detail@domain` is `user@domain`'s when that is a mailbox. The split is at
 * the first delimiter character; "" turns subaddressing off.
 */
export function localRecipient(directory: Directory, address: string, delimiter: string): LocalRecipient | null {
  const exact = directory.mailbox(address);
  if (exact) return { mailbox: exact.address, detail: null };
  const at = address.lastIndexOf('@');
  if (!delimiter || at < 1) return null;
  const local = address.slice(0, at);
  const sep = [...delimiter].map((d) => local.indexOf(d)).filter((i) => i > 0).sort((a, b) => a - b)[0];
  if (sep === undefined) return null;
  const base = directory.mailbox(`${local.slice(0, sep)}${address.slice(at)}`);
  return base ? { mailbox: base.address, detail: local.slice(sep + 1) } : null;
}
