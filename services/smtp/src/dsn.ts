import { randomBytes } from 'node:crypto';
import { headerEnd } from '@hearth/message';
import { newMessageId, rfc5322Date } from './message.ts';

export interface FailedRecipient {
  address: string;
  /** RFC 3463 status, e.g. 5.1.1 */
  status: string;
  /** the remote reply or our reason */
  diagnostic: string;
  remoteMta?: string | null;
}

export interface DsnInput {
  reportingMta: string;
  /** mailer-daemon address the bounce comes from */
  postmaster: string;
  /** the original envelope sender: the bounce goes there */
  to: string;
  queueId: string;
  arrivalDate: Date;
  failed: FailedRecipient[];
  /** the original message; only its header section is returned */
  original: Buffer;
  date?: Date;
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').replace(/[^\x20-\x7e]/g, '?').slice(0, 900);
}

/** A non-delivery report (RFC 3464 multipart/report; report-type=delivery-status). */
export function buildDsn(d: DsnInput): Buffer {
  const boundary = `hearth-dsn-${randomBytes(8).toString('hex')}`;
  const domain = d.postmaster.slice(d.postmaster.lastIndexOf('@') + 1);
  const human = [
    'This is the mail system at host ' + d.reportingMta + '.',
    '',
    "I'm sorry to have to inform you that your message could not",
    'be delivered to one or more recipients. It is attached below.',
    '',
    ...d.failed.map((f) => `<${oneLine(f.address)}>: ${oneLine(f.diagnostic)}`),
  ];
  const perMessage = [`Reporting-MTA: dns; ${d.reportingMta}`, `X-Hearth-Queue-ID: ${d.queueId}`, `Arrival-Date: ${rfc5322Date(d.arrivalDate)}`];
  const perRecipient = d.failed.map((f) => {
    const lines = [`Final-Recipient: rfc822; ${oneLine(f.address)}`, 'Action: failed', `Status: ${f.status}`];
    if (f.remoteMta) lines.push(`Remote-MTA: dns; ${oneLine(f.remoteMta)}`);
    lines.push(`Diagnostic-Code: smtp; ${oneLine(f.diagnostic)}`);
    return lines.join('\r\n');
  });
  const headers = d.original.subarray(0, headerEnd(d.original)).toString('latin1').replace(/(\r\n)+$/, '');
  const parts = [
    `From: Mail Delivery System <${d.postmaster}>`,
    `To: <${d.to}>`,
    'Subject: Undelivered Mail Returned to Sender',
    `Date: ${rfc5322Date(d.date)}`,
    `Message-ID: ${newMessageId(domain)}`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    'This is a MIME-encapsulated message.',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Description: Notification',
    '',
    ...human,
    '',
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    'Content-Description: Delivery report',
    '',
    perMessage.join('\r\n'),
    '',
    perRecipient.join('\r\n\r\n'),
    '',
    `--${boundary}`,
    'Content-Type: text/rfc822-headers',
    'Content-Description: Undelivered Message Headers',
    '',
    headers,
    '',
    `--${boundary}--`,
    '',
  ];
  return Buffer.from(parts.join('\r\n'), 'latin1');
}
