/**
 * Folder names as IMAP carries them (modified UTF-7, RFC 3501 §5.1.3), which is also how
 * Dovecot names Maildir++ folders on disk (`.Name`, hierarchy separator ".").
 */
export const DELIMITER = '.';
export const SPECIAL_USE: Record<string, string> = {
  Sent: '\\Sent',
  Drafts: '\\Drafts',
  Trash: '\\Trash',
  Junk: '\\Junk',
  Archive: '\\Archive',
};

export class MailStoreError extends Error {
  constructor(
    message: string,
    readonly code: 'nonexistent' | 'exists' | 'invalid' | 'cannot' | 'overquota',
  ) {
    super(message);
  }
}

/** Decodes modified UTF-7; null when the bytes are not valid modified UTF-7. */
export function decodeMutf7(name: string): string | null {
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return null;
    if (name[i] !== '&') {
      out += name[i];
      continue;
    }
    const end = name.indexOf('-', i);
    if (end < 0) return null;
    if (end === i + 1) {
      out += '&';
      i = end;
      continue;
    }
    const b64 = name.slice(i + 1, end);
    if (!/^[A-Za-z0-9+,]+$/.test(b64)) return null;
    const bytes = Buffer.from(b64.replace(/,/g, '/'), 'base64');
    if (bytes.length % 2 !== 0 || bytes.length === 0) return null;
    let chunk = '';
    for (let j = 0; j < bytes.length; j += 2) chunk += String.fromCharCode(bytes.readUInt16BE(j));
    if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(chunk)) return null;
    // Printable ASCII must not be encoded (it would make two spellings of one name).
    if ([...chunk].some((ch) => ch.charCodeAt(0) >= 0x20 && ch.charCodeAt(0) <= 0x7e)) return null;
    out += chunk;
    i = end;
  }
  return out;
}

export function encodeMutf7(text: string): string {
  let out = '';
  let pending = '';
  const flush = (): void => {
    if (!pending) return;
    const buf = Buffer.alloc(pending.length * 2);
    for (let j = 0; j < pending.length; j++) buf.writeUInt16BE(pending.charCodeAt(j), j * 2);
    out += '&' + buf.toString('base64').replace(/=+$/, '').replace(/\//g, ',') + '-';
    pending = '';
  };
  for (const ch of text) {
    const c = ch.charCodeAt(0);
    if (c >= 0x20 && c <= 0x7e) {
      flush();
      out += ch === '&' ? '&-' : ch;
    } else pending += ch;
  }
  flush();
  return out;
}

/**
 * A folder name as clients send it → the canonical name, or a MailStoreError.
 * INBOX is case-insensitive; others are kept as given.
 */
export function normalizeFolderName(name: string): string {
  if (/^inbox$/i.test(name)) return 'INBOX';
  if (name.length === 0 || name.length > 255) throw new MailStoreError('mailbox name length is 1–255', 'invalid');
  if (decodeMutf7(name) === null) throw new MailStoreError('mailbox name is not valid modified UTF-7', 'invalid');
  if (/[/\\*%]/.test(name)) throw new MailStoreError('mailbox name contains a forbidden character', 'invalid');
  const parts = name.split(DELIMITER);
  if (parts.some((p) => p === '' || p === '..')) throw new MailStoreError('mailbox name has an empty level', 'invalid');
  if (parts.length > 16) throw new MailStoreError('mailbox hierarchy too deep', 'invalid');
  if (/^inbox$/i.test(parts[0]!)) throw new MailStoreError('INBOX cannot have children here', 'invalid');
  return name;
}
