import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { withFileLock, writeFileAtomic } from '@hearth/mailstore';
import type { SieveAction, SieveMessage } from './interpret.ts';
import { redirectAddress } from './interpret.ts';

export type VacationAction = Extract<SieveAction, { kind: 'vacation' }>;

/** Whom a vacation reply goes to and from which address, or why none is sent. */
export type VacationDecision = { send: true; to: string; from: string } | { send: false; reason: string };

/** RFC 2369 / RFC 2919 fields only mailing lists add */
const LIST_FIELDS = ['list-id', 'list-help', 'list-subscribe', 'list-unsubscribe', 'list-post', 'list-owner', 'list-archive'];
/** RFC 5230 §4.5: where the user's address must appear */
const RECIPIENT_FIELDS = ['to', 'cc', 'bcc', 'resent-to', 'resent-cc', 'resent-bcc'];
/** RFC 5230 §4.6 / RFC 3834 §2: return paths of automated senders */
const AUTOMATED_SENDER = /^(mailer-daemon|postmaster|listserv|majordomo|owner-.*|.*-owner|.*-request|.*-bounces?)$/i;

/**
 * RFC 5230 §§4.5–4.6 and RFC 3834 §2: answer only a person's mail that was sent to one of the
 * user's addresses (`own`: the mailbox's addresses and the recipient as given; plus :addresses),
 * never a bounce, a list, bulk or another automatic message, nor the user's own mail.
 */
export function decideVacation(msg: SieveMessage, action: VacationAction, own: readonly string[]): VacationDecision {
  const sender = msg.envelope.from.toLowerCase();
  if (!sender) return { send: false, reason: 'null return path' };
  const local = sender.slice(0, sender.lastIndexOf('@'));
  if (AUTOMATED_SENDER.test(local)) return { send: false, reason: 'automated sender' };
  const auto = msg.header('auto-submitted').map((v) => v.split(';')[0]!.trim().toLowerCase());
  if (auto.some((v) => v !== 'no')) return { send: false, reason: 'Auto-Submitted' };
  if (msg.header('precedence').some((v) => ['bulk', 'list', 'junk'].includes(v.trim().toLowerCase()))) return { send: false, reason: 'Precedence bulk/list/junk' };
  if (LIST_FIELDS.some((f) => msg.header(f).length > 0)) return { send: false, reason: 'mailing list' };
  const mine = new Set([...own, ...action.addresses].map((a) => a.toLowerCase()));
  if (mine.has(sender)) return { send: false, reason: "the user's own message" };
  const addressed = RECIPIENT_FIELDS.flatMap((f) => msg.addresses(f).flat()).find((a) => mine.has(a.toLowerCase()));
  if (!addressed) return { send: false, reason: 'not addressed to the user in To/Cc/Bcc' };
  const from = action.from && redirectAddress(action.from) ? action.from : addressed;
  return { send: true, to: msg.envelope.from, from };
}

/** replies remembered per mailbox; beyond this the ones that expire first are forgotten */
const MAX_ENTRIES = 10_000;

/**
 * RFC 5230 §4.2: who got which reply when, so each sender gets one per :days per handle. Kept in
 * the mailbox (`.hearth-vacation`, JSON, written atomically under a lock), so it survives restarts
 * and goes with the mailbox into backups.
 */
export class VacationLog {
  private readonly file: string;

  constructor(mailboxRoot: string) {
    this.file = path.join(mailboxRoot, '.hearth-vacation');
  }

  /** True when `sender` has had no reply with this handle in the last `days` days, and records one now. */
  async claim(handle: string, sender: string, days: number, now = Date.now()): Promise<boolean> {
    const key = `${createHash('sha256').update(handle).digest('hex').slice(0, 32)} ${sender.toLowerCase()}`;
    return withFileLock(`${this.file}.lock`, async () => {
      let entries: Record<string, number> = {};
      try {
        const parsed: unknown = JSON.parse(await fs.promises.readFile(this.file, 'utf8'));
        if (parsed && typeof parsed === 'object') entries = parsed as Record<string, number>;
      } catch {
        // none yet, or unreadable: start over (at worst one more reply)
      }
      const live = Object.entries(entries).filter(([, until]) => typeof until === 'number' && until > now);
      if (live.some(([k]) => k === key)) return false;
      live.push([key, now + days * 86_400_000]);
      live.sort((a, b) => b[1] - a[1]);
      await writeFileAtomic(this.file, JSON.stringify(Object.fromEntries(live.slice(0, MAX_ENTRIES))));
      return true;
    });
  }
}
