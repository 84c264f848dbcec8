import libmime from 'libmime';
import type { Logger } from '@hearth/log';
import type { MailStore } from '@hearth/mailstore';
import { compileScript, runScript, ScriptStore, type SieveAction, type SieveMessage } from '@hearth/sieve';
import { headerEnd, headerValues, mailboxes } from './message.ts';

function decoded(value: string): string {
  const utf8 = Buffer.from(value, 'latin1').toString('utf8');
  try {
    return libmime.decodeWords(utf8);
  } catch {
    return utf8;
  }
}

/** The message as a Sieve script sees it, through the SMTP daemon's header reader. */
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
