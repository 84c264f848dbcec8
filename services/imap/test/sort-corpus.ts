/**
 * A SORT/THREAD corpus: ~200 messages with the subjects, addresses, dates and References that
 * trip up base-subject extraction and threading (Re:/Fwd:/[tags]/(fwd), encoded words, case and
 * decomposition, missing and broken dates, missing parents, loops, duplicate Message-IDs).
 * Deterministic: the same seed gives the same bytes and INTERNALDATEs.
 */
import { prng } from '@hearth/testkit';

export interface CorpusMessage {
  raw: Buffer;
  internalDate: Date;
}

const SUBJECTS = [
  'Hello',
  'Re: Hello',
  'RE: hello',
  're:Hello',
  'Fwd: Hello',
  'FW: hello',
  'Fw : hello',
  'Re: Re: Hello',
  'Re[2]: Hello',
  '[list] Re: Hello',
  '[list] [other] Re: Hello',
  'Re: [list] Hello',
  'Hello (fwd)',
  'Hello (fwd) (fwd)  ',
  '[Fwd: Hello]',
  '[Fwd: Re: Hello]',
  'Fwd: [Fwd: Hello]',
  're: [fwd: re: Hello]',
  '[tag]',
  '[tag] ',
  '  Hello  ',
  'Hello\tWorld',
  'Hello\r\n World',
  'Hello World',
  '=?UTF-8?B?UmU6IEjDqWxsbw==?=',
  '=?ISO-8859-1?Q?Re:_H=E9llo?=',
  '=?UTF-8?Q?H=C3=A9llo?=',
  'Héllo',
  'Ärger',
  'ärger',
  'Arger',
  'ﬁle',
  'FILE',
  'straße',
  'STRASSE',
  'Ǆemal',
  '',
  'Re:',
  'Fwd:',
  'Reply: Hello',
  'Re : Meeting',
  'Meeting',
  'Meeting (fwd)',
  'Fw: Re: Fwd: deep',
  'deep',
  'Agenda',
  'Re: Agenda',
  '[ANN] Release 1.0',
  'Re: [ANN] Release 1.0',
  'zebra',
  'Zebra',
  '=?UTF-8?B?w4RyZ2Vy?= again',
  '=?UTF-8?Q?a?= =?UTF-8?Q?b?=',
];

const FROMS = [
  'Alice <alice@example.test>',
  'bob@example.test',
  '"Zed, Z" <zed@x.test>',
  '=?UTF-8?Q?=C3=89mile?= <emile@x.test>',
  '(comment) carol@x.test',
  'undisclosed-recipients:;',
  'Dave <DAVE@x.test>',
  '<nobody@x.test>',
  'eve@x.test (Eve Comment)',
  'Émile Raw <emile2@x.test>',
  'frank@x.test, george@x.test',
  '"" <empty@x.test>',
  'Group: helen@x.test, ian@x.test;',
  'mallory',
];

const DATES = [
  'Tue, 1 Jul 2003 10:52:37 +0200',
  'Tue, 1 Jul 2003 08:52:37 +0000',
  'Mon, 30 Jun 2003 23:00:00 -0500',
  '1 Jul 2003 10:52 +0200',
  'Wed, 2 Jul 2003 10:00:00 EST',
  'Wed, 2 Jul 2003 10:00:00 GMT',
  'Thu, 3 Jul 2003 00:00:00 +1400',
  'Fri, 4 Jul 2003 12:00:00 -1200',
  'not a date',
  'Sat, 5 Jul 2003 12:00:00 +0000',
  '5 Jul 2003 12:00:00 +0000 (UTC)',
  'Sun, 06 Jul 2003 01:02:03 +0100',
  'Mon, 7 Jul 2003 09:00:00 +0000',
  'Thu, 01 Jan 2015 00:00:00 +0000',
  'Sat, 1 Mar 2025 12:00:00 +0000',
];

interface Spec {
  subject?: string | null;
  from?: string | null;
  to?: string | null;
  cc?: string | null;
  date?: string | null;
  id?: string | null;
  references?: string;
  inReplyTo?: string;
}

/** Threads whose shapes RFC 5256 spells out, then random messages replying at random. */
const FIXED: Spec[] = [
  { subject: 'Thread A', id: '<a1@t>' },
  { subject: 'Re: Thread A', id: '<a2@t>', references: '<a1@t>' },
  { subject: 'Re: Thread A', id: '<a3@t>', references: '<a1@t> <a2@t>' },
  { subject: 'Re: Thread A', id: '<a4@t>', inReplyTo: '<a2@t>' },
  // missing parent with two children: a dummy root
  { subject: 'Re: Thread B', id: '<b2@t>', references: '<b1@t>' },
  { subject: 'Re: Thread B', id: '<b3@t>', references: '<b1@t>' },
  // missing parent with one child: promoted
  { subject: 'Re: Thread C', id: '<c2@t>', references: '<c0@t>' },
  // a loop, a self-reference, a duplicate Message-ID
  { subject: 'Loop', id: '<d1@t>', references: '<d2@t>' },
  { subject: 'Re: Loop', id: '<d2@t>', references: '<d1@t>' },
  { subject: 'Self', id: '<e1@t>', references: '<e1@t>' },
  { subject: 'Dup', id: '<f1@t>' },
  { subject: 'Dup again', id: '<f1@t>', references: '<a1@t>' },
  // broken References
  { subject: 'Broken refs', id: '<g1@t>', references: 'garbage <no-at-sign> < x @ y >' },
  // conflicting parents: the first link wins
  { subject: 'Conflict', id: '<h1@t>' },
  { subject: 'Conflict 2', id: '<h2@t>', references: '<h1@t>' },
  { subject: 'Conflict 3', id: '<h3@t>', references: '<h9@t> <h2@t>' },
  { subject: 'Conflict 4', id: '<h4@t>', references: '<h8@t> <h3@t>' },
  // no Message-ID at all
  { subject: 'Re: Thread A', id: null, references: '<a3@t>' },
  // roots of one subject, merged in step 5
  { subject: 'Meeting', id: '<m1@t>' },
  { subject: 'Re: Meeting', id: '<m2@t>' },
  { subject: 'Meeting', id: '<m3@t>' },
  { subject: 'Re: Meeting', id: '<m5@t>', references: '<m4@t>' },
  { subject: 'Re: Meeting', id: '<m6@t>', references: '<m4@t>' },
  { subject: 'Fwd: Meeting', id: '<m8@t>', references: '<m7@t>' },
  { subject: 'Re: Meeting', id: '<m9@t>', references: '<m7@t>' },
  { subject: 'Meeting (fwd)', id: '<m10@t>', inReplyTo: '<m3@t> <m1@t>' },
];

function render(s: Spec, body: string): Buffer {
  const lines: string[] = [];
  if (s.from !== null) lines.push(`From: ${s.from ?? 'Alice <alice@example.test>'}`);
  if (s.to !== null && s.to !== undefined) lines.push(`To: ${s.to}`);
  if (s.cc) lines.push(`Cc: ${s.cc}`);
  if (s.subject !== null) lines.push(`Subject: ${s.subject ?? 'no subject given'}`);
  if (s.date !== null && s.date !== undefined) lines.push(`Date: ${s.date}`);
  if (s.id) lines.push(`Message-ID: ${s.id}`);
  if (s.references) lines.push(`References: ${s.references}`);
  if (s.inReplyTo) lines.push(`In-Reply-To: ${s.inReplyTo}`);
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}\r\n`, 'utf8');
}

export function sortCorpus(count = 200, seed = 5256): CorpusMessage[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const base = Date.UTC(2003, 6, 1, 12, 0, 0);
  const out: CorpusMessage[] = [];
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    let spec: Spec;
    if (i < FIXED.length) spec = { ...FIXED[i]!, date: DATES[i % DATES.length] };
    else {
      const r = rnd();
      const refs: string[] = [];
      if (r < 0.4 && ids.length) {
        const n = 1 + Math.floor(rnd() * 3);
        for (let k = 0; k < n; k++) refs.push(rnd() < 0.15 ? `<missing${Math.floor(rnd() * 20)}@t>` : pick(ids));
      }
      spec = {
        subject: rnd() < 0.03 ? null : pick(SUBJECTS),
        from: rnd() < 0.03 ? null : pick(FROMS),
        to: rnd() < 0.2 ? null : pick(FROMS),
        cc: rnd() < 0.5 ? null : pick(FROMS),
        date: rnd() < 0.08 ? null : pick(DATES),
        id: rnd() < 0.05 ? null : rnd() < 0.03 && ids.length ? pick(ids) : `<r${i}@t>`,
        references: refs.length && rnd() < 0.8 ? refs.join(rnd() < 0.5 ? ' ' : '\r\n ') : undefined,
        inReplyTo: refs.length && rnd() < 0.5 ? refs[refs.length - 1] : undefined,
      };
    }
    if (spec.id) ids.push(spec.id);
    // INTERNALDATEs an hour apart, some equal (ties go by sequence number)
    const internalDate = new Date(base + (i % 17 === 3 ? i - 1 : i) * 3_600_000 - (i % 5) * 86_400_000);
    out.push({ raw: render(spec, 'x'.repeat(Math.floor(rnd() * 300))), internalDate });
  }
  return out;
}
