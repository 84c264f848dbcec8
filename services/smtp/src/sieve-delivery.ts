import type { Logger } from '@hearth/log';
import type { MailStore } from '@hearth/mailstore';
import { compileScript, runScript, ScriptStore, type SieveAction, type SieveMessage } from '@hearth/sieve';
import { decodeWords, headerEnd, headerValues, mailboxes } from '@hearth/message';

/** A header value as Sieve compares it: 8-bit text as UTF-8 (RFC 6532), encoded words decoded (RFC 5228 2.7.2). */
function decoded(value: string): string {
  return decodeWords(Buffer.from(value, 'latin1').toString('utf8'));
}

/** The message as a Sieve script sees it, through the one message reader (@hearth/message) IMAP and SMTP use. */
function sieveMessage(raw: Buffer, from: string, to: string): SieveMessage {
  return {
    header: (name) => headerValues(raw, name).map(decoded),
    addresses: (name) => headerValues(raw, name).flatMap((v) => mailboxes(v).map((m) => m.address)),
    size: raw.length,
    envelope: { from, to },
    body: () => raw.subarray(headerEnd(raw)).toString('utf8'),
  };
}

/**
 * The actions of the mailbox's active Sieve script for this message; with no script, or a
 * script that fails (unreadable, invalid, or an error while running), the message is kept in
 * INBOX and the reason logged (RFC 5228 §2.10.6).
 */
export async function sieveActions(store: MailStore, address: string, raw: Buffer, envelopeFrom: string, logger: Logger): Promise<SieveAction[]> {
  const keep: SieveAction[] = [{ kind: 'keep', flags: [] }];
  const scripts = new ScriptStore(store.mailboxPath(address));
  let text: string | null;
  try {
    text = await scripts.active();
  } catch (err) {
    logger.warn({ err, address }, 'sieve script unreadable; message kept in INBOX');
    return keep;
  }
  if (text === null) return keep;
  try {
    return runScript(compileScript(text), sieveMessage(raw, envelopeFrom, address));
  } catch (err) {
    logger.warn({ address, reason: (err as Error).message }, 'sieve script failed; message kept in INBOX');
    return keep;
  }
}
