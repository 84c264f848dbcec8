import type { Logger } from '@hearth/log';
import { decodeMutf7, type MailStore } from '@hearth/mailstore';
import { compileScriptCached, messageBody, runScript, ScriptStore, type SieveAction, type SieveMessage, type VacationAction } from '@hearth/sieve';
import { decodeWords, headerFields, headerValues, mailboxes } from '@hearth/message';
import { newMessageId, rfc5322Date, splitAddress } from './message.ts';

/** A header value as Sieve compares it: 8-bit text as UTF-8 (RFC 6532), encoded words decoded (RFC 5228 2.7.2). */
function decoded(value: string): string {
  return decodeWords(Buffer.from(value, 'latin1').toString('utf8'));
}

/** The message as a Sieve script sees it, through the one message reader (@hearth/message) IMAP and SMTP use. */
export function sieveMessage(raw: Buffer, from: string, to: string): SieveMessage {
  // the header section is read once per message, each field's values once per name
  const fields = headerFields(raw);
  const values = new Map<string, string[]>();
  const raws = (name: string): string[] => {
    const want = name.toLowerCase();
    let v = values.get(want);
    if (!v) values.set(want, (v = fields.filter((f) => f.name === want).map((f) => f.value)));
    return v;
  };
  return {
    header: (name) => raws(name).map(decoded),
    addresses: (name) => raws(name).map((v) => mailboxes(v).map((m) => m.address)),
    size: raw.length,
    envelope: { from, to },
    body: messageBody(raw),
  };
}

export interface SieveRecipient {
  /** the mailbox whose script runs */
  mailbox: string;
  /** the recipient as given at RCPT (with any +detail): the envelope "to" the script sees */
  rcpt: string;
  delimiter: string;
}

/**
 * The actions of the mailbox's active Sieve script for this message; with no script, or a
 * script that fails (unreadable, invalid, or an error while running), the message is kept in
 * INBOX and the reason logged (RFC 5228 §2.10.6).
 */
export async function sieveActions(store: MailStore, r: SieveRecipient, raw: Buffer, envelopeFrom: string, logger: Logger): Promise<SieveAction[]> {
  const keep: SieveAction[] = [{ kind: 'keep', flags: [] }];
  const scripts = new ScriptStore(store.mailboxPath(r.mailbox));
  let text: string | null;
  try {
    text = await scripts.active();
  } catch (err) {
    logger.warn({ err, address: r.mailbox }, 'sieve script unreadable; message kept in INBOX');
    return keep;
  }
  if (text === null) return keep;
  try {
    const folders = /mailboxexists/i.test(text) ? (await (await store.open(r.mailbox)).listFolders()).map((f) => decodeMutf7(f.name) ?? f.name) : undefined;
    return runScript(compileScriptCached(text), sieveMessage(raw, envelopeFrom, r.rcpt), { folders, delimiter: r.delimiter });
  } catch (err) {
    logger.warn({ address: r.mailbox, reason: (err as Error).message }, 'sieve script failed; message kept in INBOX');
    return keep;
  }
}

/** RFC 2047 B-encoded words for non-ASCII header text, each under 76 characters, folded onto lines of their own. */
function encodedWords(text: string): string {
  if (/^[\x20-\x7e]*$/.test(text)) return text;
  const words: string[] = [];
  let chunk = '';
  for (const ch of text) {
    if (Buffer.byteLength(chunk + ch) > 45) {
      words.push(chunk);
      chunk = '';
    }
    chunk += ch;
  }
  words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w).toString('base64')}?=`).join('\r\n ');
}

/** Header text without line breaks (a script's :subject or :from must not add fields). */
const oneLine = (s: string): string => s.replace(/[\r\n]+/g, ' ').trim();

/**
 * The RFC 5230 / RFC 3834 reply to `original`: from the user's address, to the return path, with
 * `Auto-Submitted: auto-replied`, In-Reply-To/References, "Auto: <subject>" unless :subject, the
 * reason as text/plain (or, with :mime, as the MIME entity the script wrote).
 */
export function vacationReply(original: Buffer, action: VacationAction, from: string, to: string, now = new Date()): Buffer {
  const subject = oneLine(action.subject ?? `Auto: ${decoded(headerValues(original, 'subject')[0] ?? '')}`.trim());
  const messageId = headerValues(original, 'message-id')[0]?.trim();
  const validId = messageId && /^<[^<>\s]+>$/.test(messageId) ? messageId : null;
  const refs = (headerValues(original, 'references')[0] ?? headerValues(original, 'in-reply-to')[0] ?? '').split(/\s+/).filter((id) => /^<[^<>\s]+>$/.test(id));
  const fromDomain = splitAddress(mailboxes(from)[0]?.address ?? '')?.domain ?? 'localhost';
  const head = [
    `From: ${oneLine(from)}`,
    `To: <${to}>`,
    `Subject: ${encodedWords(subject)}`,
    `Date: ${rfc5322Date(now)}`,
    `Message-ID: ${newMessageId(fromDomain)}`,
    ...(validId ? [`In-Reply-To: ${validId}`, `References: ${[...refs, validId].slice(-20).join(' ')}`] : []),
    'Auto-Submitted: auto-replied (vacation)',
    'MIME-Version: 1.0',
  ];
  const crlf = (s: string): string => s.replace(/\r?\n/g, '\r\n');
  if (action.mime) {
    // the script's own entity: its header fields, a blank line, its body
    const entity = crlf(action.reason).replace(/^(\r\n)+/, '');
    return Buffer.from(`${head.join('\r\n')}\r\n${entity.includes('\r\n\r\n') ? entity : `\r\n${entity}`}`, 'utf8');
  }
  const ascii = /^[\x00-\x7f]*$/.test(action.reason);
  const body = ascii ? crlf(action.reason) : (Buffer.from(crlf(action.reason), 'utf8').toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
  return Buffer.from(`${head.join('\r\n')}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: ${ascii ? '7bit' : 'base64'}\r\n\r\n${body}${body.endsWith('\r\n') ? '' : '\r\n'}`, 'utf8');
}
