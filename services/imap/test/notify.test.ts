import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { parseCommand, parseNotify } from '../src/imap-parser.ts';
import { message, run, stack, type Stack } from './helpers.ts';
import { Wire } from './wire.ts';

/**
 * NOTIFY (RFC 5465) over raw sockets and imaplib. Expected values are the RFC's examples (with
 * the verified errata 1804 and 2318: each event list in parentheses) and its rules; changes come
 * from a second session and from the mail store's ingest, the path SMTP delivers through.
 */

let s: Stack;
before(async () => {
  s = await stack();
  const acct = await s.store.open(s.user.email);
  for (const f of ['Lists', 'Lists.Lemonade', 'Lists.Imap', 'misc']) await acct.createFolder(f);
});
after(() => s.close());

/** this helper's own loopback address, so its connections are told apart from other tests' */
const FROM = '127.0.0.31';

async function login(): Promise<Wire> {
  const w = await Wire.connect(s.imap.ports.imap, { from: FROM });
  await w.until(/^\* OK/m);
  assert.match(await w.cmd('L', `LOGIN ${s.user.username} ${s.user.password}`), /^L OK/m);
  return w;
}

test('codec: RFC 5465 §3.1 example commands parse into their groups, filters and events', () => {
  const parse = (line: string): ReturnType<typeof parseNotify> => parseNotify(parseCommand([line]).args);
  const b = parse('b notify set status (selected (MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge)) (subtree Lists (MessageNew))');
  assert.equal(b.kind, 'set');
  if (b.kind !== 'set') return;
  assert.equal(b.status, true);
  assert.deepEqual(
    b.groups.map((g) => [g.filter, g.mailboxes.length, g.events?.map((e) => e.name)]),
    [
      ['SELECTED', 0, ['MessageNew', 'MessageExpunge']],
      ['SUBTREE', 1, ['MessageNew']],
    ],
  );
  assert.deepEqual(
    b.groups[0]!.events![0]!.fetch!.map((t) => (t.kind === 'atom' ? t.value : t.kind)),
    ['uid', 'body.peek[header.fields (from to subject)]'],
  );
  const e = parse('e notify set (selected (MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge)) (subtree Lists (MessageNew)) (mailboxes misc (MessageNew))');
  assert.equal(e.kind === 'set' && e.status, false);
  assert.deepEqual(e.kind === 'set' && e.groups.map((g) => g.filter), ['SELECTED', 'SUBTREE', 'MAILBOXES']);
  assert.deepEqual(parse('c notify none'), { kind: 'none' });
});

test('NOTIFY is advertised after login', async () => {
  const w = await login();
  assert.match(await w.cmd('C', 'CAPABILITY'), /^\* CAPABILITY .* NOTIFY( |\r\n)/m);
  w.close();
});

test('RFC 5465 §3.1: new messages in the selected mailbox come with the asked FETCH, others as STATUS', async () => {
  const a = await login();
  const b = await login();
  await a.cmd('S', 'SELECT INBOX');
  assert.match(
    await a.cmd('a', 'notify set (selected (MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge)) (subtree Lists (MessageNew))'),
    /^a OK/m,
  );
  // a message delivered to INBOX by SMTP's path: EXISTS, then the FETCH the client asked for
  await s.store.ingest(s.user.email, message('notify one'));
  const arrived = await a.until(/FETCH \(UID \d+ BODY\[HEADER\.FIELDS \(FROM TO SUBJECT\)\] \{\d+\}\r\n[\s\S]*?\)\r\n/i);
  assert.match(arrived, /^\* \d+ EXISTS\r\n/m);
  assert.match(arrived, /Subject: notify one\r\n/);
  assert.doesNotMatch(arrived, /Date:/, 'only the asked header fields');
  // a message in a mailbox under Lists: STATUS with MESSAGES and UIDNEXT
  await b.cmd('A', 'APPEND Lists.Lemonade {20+}\r\nSubject: x\r\n\r\nhello');
  const st = await a.until(/^\* STATUS [^\r\n]*\r\n/m);
  assert.match(st, /^\* STATUS "?Lists\.Lemonade"? \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)\r\n/m);
  // the STATUS option: one STATUS per mailbox with message events, before the tagged OK
  const b2 = await a.cmd('b', 'notify set status (selected (MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge)) (subtree Lists (MessageNew))');
  assert.match(b2, /^\* STATUS "?Lists"? \(MESSAGES 0 UIDNEXT 1 UIDVALIDITY \d+ UNSEEN 0\)\r\n/m);
  assert.match(b2, /^\* STATUS "?Lists\.Lemonade"? \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)\r\n/m);
  assert.match(b2, /^\* STATUS "?Lists\.Imap"? \(/m);
  assert.doesNotMatch(b2, /^\* STATUS "?(INBOX|misc)"? /m, 'neither the selected mailbox nor one outside the filter');
  // errata 2318: a later NOTIFY SET without STATUS adds a mailbox quietly
  const e = await a.cmd('e', 'notify set (selected (MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge)) (subtree Lists (MessageNew)) (mailboxes misc (MessageNew))');
  assert.match(e, /^e OK/m);
  assert.doesNotMatch(e, /STATUS/);
  await b.cmd('A', 'APPEND misc {20+}\r\nSubject: y\r\n\r\nhello');
  assert.match(await a.until(/^\* STATUS "?misc"? [^\r\n]*\r\n/m), /^\* STATUS "?misc"? \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)\r\n/m);
  // NOTIFY NONE: nothing more, not even for the selected mailbox
  assert.match(await a.cmd('n', 'notify none'), /^n OK/m);
  await b.cmd('A', 'APPEND misc {20+}\r\nSubject: z\r\n\r\nhello');
  await s.store.ingest(s.user.email, message('after none'));
  const quiet = await a.cmd('N', 'NOOP');
  assert.doesNotMatch(quiet, /STATUS|EXISTS|FETCH/);
  a.close();
  b.close();
});

/** Session B: imaplib, one short script per change. */
async function imaplib(body: string): Promise<string> {
  const r = await run('/usr/bin/python3', [
    '-c',
    `import imaplib\nM = imaplib.IMAP4('127.0.0.1', ${s.imap.ports.imap})\nM.login('${s.user.username}', '${s.user.password}')\n${body}\nM.logout()\n`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

test('A watches SELECTED and PERSONAL; B (imaplib) and an SMTP delivery change things; A is told at once, in IDLE, and after commands', async () => {
  const a = await login();
  await a.cmd('S', 'SELECT INBOX');
  await a.cmd('N', 'NOOP');
  assert.match(await a.cmd('n', 'NOTIFY SET (SELECTED (MessageNew (UID FLAGS) MessageExpunge FlagChange)) (PERSONAL (MessageNew MessageExpunge MailboxName))'), /^n OK/m);

  // delivery through the mail store's ingest (SMTP's path, here another store as another process would be), A between commands
  await s.store.ingest(s.user.email, message('watched delivery'));
  const arrived = await a.until(/^\* \d+ FETCH [^\r\n]*\r\n/m, 15_000);
  const exists = /^\* (\d+) EXISTS\r\n/m.exec(arrived);
  const fetched = /^\* (\d+) FETCH \(UID (\d+) FLAGS \(([^)]*)\)\)\r\n/m.exec(arrived);
  assert.ok(exists && fetched, arrived);
  assert.equal(fetched[1], exists[1], 'the FETCH is of the new message');
  assert.equal(fetched[3], '\\Recent', 'A selected INBOX first, so the message is recent for A');
  const [seq, uid] = [Number(fetched[1]), Number(fetched[2])];

  // B flags it: FlagChange, an unsolicited FETCH of its flags
  await imaplib(`M.select('INBOX')\nM.uid('STORE', '${uid}', '+FLAGS', '(\\\\Flagged)')`);
  assert.match(await a.until(/FETCH[^\r\n]*\r\n/, 15_000), new RegExp(`^\\* ${seq} FETCH \\(FLAGS \\(\\\\Flagged \\\\Recent\\)\\)\\r\\n`, 'm'));

  // B expunges it: with SELECTED (not -DELAYED) the EXPUNGE comes without waiting for a command
  await imaplib(`M.select('INBOX')\nM.uid('STORE', '${uid}', '+FLAGS', '(\\\\Deleted)')\nM.expunge()`);
  assert.match(await a.until(/EXPUNGE\r\n/, 15_000), new RegExp(`^\\* ${seq} EXPUNGE\\r\\n`, 'm'));

  // another mailbox: STATUS; a flag change there is not asked for (no FlagChange in PERSONAL), so only the APPEND shows
  await imaplib(`M.append('misc', None, None, b'Subject: m\\r\\n\\r\\nhi\\r\\n')`);
  const first = await a.until(/STATUS[^\r\n]*\r\n/, 15_000);
  const messages = Number(/MESSAGES (\d+)/.exec(first)?.[1]);
  await imaplib(`M.select('misc')\nM.store('1', '+FLAGS', '(\\\\Seen)')\nM.append('misc', None, None, b'Subject: n\\r\\n\\r\\nhi\\r\\n')`);
  const second = await a.until(/STATUS[^\r\n]*\r\n/, 15_000);
  assert.equal(second.match(/STATUS/g)?.length, 1, second);
  assert.match(second, new RegExp(`^\\* STATUS "?misc"? \\(MESSAGES ${messages + 1} UIDNEXT \\d+ UIDVALIDITY \\d+ UNSEEN \\d+\\)\\r\\n`, 'm'));

  // MailboxName: LIST responses (RFC 5465 §5), the rename with its OLDNAME (RFC 5258 §3)
  await imaplib(`M.create('Projects')`);
  assert.match(await a.until(/LIST[^\r\n]*\r\n/, 15_000), /^\* LIST \(\) "\." "?Projects"?\r\n/m);
  await imaplib(`M.rename('Projects', 'Plans')`);
  assert.match(await a.until(/LIST[^\r\n]*\r\n/, 15_000), /^\* LIST \(\) "\." "?Plans"? \("OLDNAME" \("?Projects"?\)\)\r\n/m);
  await imaplib(`M.append('Plans', None, None, b'Subject: p\\r\\n\\r\\nhi\\r\\n')`);
  assert.match(await a.until(/STATUS[^\r\n]*\r\n/, 15_000), /^\* STATUS "?Plans"? \(MESSAGES 1 /m, 'a mailbox made after NOTIFY SET is watched too');
  await imaplib(`M.delete('Plans')`);
  assert.match(await a.until(/LIST[^\r\n]*\r\n/, 15_000), /^\* LIST \(\\NonExistent\) "\." "?Plans"?\r\n/m);

  // in IDLE
  a.write('I IDLE\r\n');
  await a.until(/^\+ /m);
  await s.store.ingest(s.user.email, message('idle delivery'));
  assert.match(await a.until(/FETCH[^\r\n]*\r\n/, 15_000), /^\* \d+ EXISTS\r\n[\s\S]*^\* \d+ FETCH \(UID \d+ FLAGS \(\\Recent\)\)\r\n/m);
  a.write('DONE\r\n');
  assert.match(await a.until(/^I OK/m), /^I OK/m);

  // SELECTED-DELAYED: an expunge waits for a command that may carry it, while other mailboxes' news still come at once
  assert.match(await a.cmd('d', 'NOTIFY SET (SELECTED-DELAYED (MessageNew MessageExpunge)) (PERSONAL (MessageNew MessageExpunge))'), /^d OK/m);
  await imaplib(`M.select('INBOX')\nM.store('1:*', '+FLAGS', '(\\\\Deleted)')\nM.expunge()\nM.append('misc', None, None, b'Subject: o\\r\\n\\r\\nhi\\r\\n')`);
  const meanwhile = await a.until(/STATUS[^\r\n]*\r\n/, 15_000);
  assert.doesNotMatch(meanwhile, /EXPUNGE/);
  // UID FETCH may carry EXPUNGE (RFC 3501 §7.4.1 holds it back only for FETCH, STORE and SEARCH)
  assert.match(await a.cmd('f', 'UID FETCH 1:* (FLAGS)'), /^\* \d+ EXPUNGE\r\n[\s\S]*^f OK/m);
  a.close();
});

test('bad NOTIFY input is answered BAD or NO [BADEVENT] and the daemon serves on', async () => {
  const w = await Wire.connect(s.imap.ports.imap, { from: FROM });
  await w.until(/^\* OK/m);
  assert.match(await w.cmd('p', 'NOTIFY NONE'), /^p BAD/m, 'not before login');
  assert.match(await w.cmd('L', `LOGIN ${s.user.username} ${s.user.password}`), /^L OK/m);
  const badEvent = /^x NO \[BADEVENT \(MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange\)\] /m;
  const cases: [string, RegExp][] = [
    ['NOTIFY', /^x BAD/m],
    ['NOTIFY BOGUS', /^x BAD/m],
    ['NOTIFY NONE extra', /^x BAD/m],
    ['NOTIFY SET', /^x BAD/m],
    ['NOTIFY SET STATUS', /^x BAD/m],
    ['NOTIFY SET ()', /^x BAD/m],
    ['NOTIFY SET (bogus (MessageNew))', /^x BAD/m],
    ['NOTIFY SET (personal MessageNew)', /^x BAD/m],
    ['NOTIFY SET (personal ())', /^x BAD/m],
    ['NOTIFY SET (subtree (MessageNew))', /^x BAD/m],
    ['NOTIFY SET (mailboxes () (MessageNew))', /^x BAD/m],
    ['NOTIFY SET (personal (MessageNew) extra)', /^x BAD/m],
    // RFC 5465 §5: MessageNew and MessageExpunge together for the selected mailbox, FlagChange only beside them
    ['NOTIFY SET (selected (MessageNew))', /^x BAD/m],
    ['NOTIFY SET (selected (MessageExpunge))', /^x BAD/m],
    ['NOTIFY SET (selected-delayed (FlagChange))', /^x BAD/m],
    ['NOTIFY SET (selected (MailboxName))', /^x BAD/m],
    ['NOTIFY SET (selected NONE) (selected-delayed NONE)', /^x BAD/m],
    ['NOTIFY SET (selected (MessageNew (bogus.item) MessageExpunge))', /^x BAD/m],
    ['NOTIFY SET (selected (MessageNew () MessageExpunge))', /^x BAD/m],
    [`NOTIFY SET ${'('.repeat(80)}`, /^x BAD/m],
    // events the server does not know or offer: NO [BADEVENT (what it offers)]
    ['NOTIFY SET (personal (Bogus))', badEvent],
    ['NOTIFY SET (personal (AnnotationChange))', badEvent],
    ['NOTIFY SET (personal (MailboxMetadataChange))', badEvent],
    ['NOTIFY SET (personal (ServerMetadataChange))', badEvent],
    ['NOTIFY SET (selected (MessageNew MessageExpunge AnnotationChange))', badEvent],
  ];
  for (const [command, expected] of cases) {
    assert.match(await w.cmd('x', command), expected, command);
    // an OK between them keeps the count of bad commands from ending the connection
    assert.match(await w.cmd('o', 'NOOP'), /^o OK/m, `still serving after ${command}`);
  }
  // the RFC's own forms are accepted: SUBTREE and MAILBOXES with one name or a list, NONE for a group
  assert.match(await w.cmd('g', 'NOTIFY SET (mailboxes (misc INBOX) (MessageNew MessageExpunge FlagChange)) (subtree "Lists" NONE) (inboxes (MessageNew))'), /^g OK/m);
  assert.match(await w.cmd('h', 'notify set status (SUBTREE Nonexistent (MessageNew MessageExpunge))'), /^h OK/m);
  w.close();
  const again = await login();
  assert.match(await again.cmd('o', 'NOOP'), /^o OK/m);
  again.close();
});

test('SUBSCRIBED follows the subscriptions (SubscriptionChange as LIST), and STATUS carries HIGHESTMODSEQ after ENABLE CONDSTORE', async () => {
  const a = await login();
  await a.cmd('E', 'ENABLE CONDSTORE');
  await imaplib(`M.unsubscribe('misc')`);
  assert.match(await a.cmd('n', 'NOTIFY SET (SUBSCRIBED (MessageNew MessageExpunge SubscriptionChange))'), /^n OK/m);
  await imaplib(`M.subscribe('misc')`);
  assert.match(await a.until(/LIST[^\r\n]*\r\n/, 15_000), /^\* LIST \(\\Subscribed\) "\." "?misc"?\r\n/m);
  await imaplib(`M.append('misc', None, None, b'Subject: q\\r\\n\\r\\nhi\\r\\n')`);
  assert.match(await a.until(/STATUS[^\r\n]*\r\n/, 15_000), /^\* STATUS "?misc"? \(MESSAGES \d+ UIDNEXT \d+ UIDVALIDITY \d+ UNSEEN \d+ HIGHESTMODSEQ \d+\)\r\n/m);
  await imaplib(`M.unsubscribe('misc')`);
  assert.match(await a.until(/LIST[^\r\n]*\r\n/, 15_000), /^\* LIST \(\) "\." "?misc"?\r\n/m);
  // no longer subscribed, so no longer watched: the next append shows nothing until a later one in a subscribed mailbox
  await imaplib(`M.append('misc', None, None, b'Subject: r\\r\\n\\r\\nhi\\r\\n')\nM.append('INBOX', None, None, b'Subject: s\\r\\n\\r\\nhi\\r\\n')`);
  const next = await a.until(/STATUS[^\r\n]*\r\n/, 15_000);
  assert.doesNotMatch(next, /STATUS "?misc/);
  assert.match(next, /^\* STATUS "?INBOX"? /m);
  a.close();
});

test('more mailboxes than one NOTIFY may watch: NO [NOTIFICATIONOVERFLOW], and the session goes on', async () => {
  const acct = await s.store.open(s.user.email);
  for (let i = 0; i <= 100; i++) await acct.createFolder(`Many.m${i}`);
  const w = await login();
  assert.match(await w.cmd('x', 'NOTIFY SET (subtree Many (MessageNew MessageExpunge))'), /^x NO \[NOTIFICATIONOVERFLOW\] /m);
  assert.match(await w.cmd('y', 'NOTIFY SET (subtree Many.m1 (MessageNew MessageExpunge))'), /^y OK/m);
  w.close();
});

test('notifications the client leaves unsent past the backlog: * OK [NOTIFICATIONOVERFLOW], then NOTIFY is off as after NOTIFY NONE', async () => {
  // a backlog smaller than one STATUS response, so the first notification overflows it
  const small = await stack({ notifyBacklogBytes: 40 });
  try {
    const w = await Wire.connect(small.imap.ports.imap, { from: FROM });
    await w.until(/^\* OK/m);
    assert.match(await w.cmd('L', `LOGIN ${small.user.username} ${small.user.password}`), /^L OK/m);
    assert.match(await w.cmd('n', 'NOTIFY SET (PERSONAL (MessageNew MessageExpunge))'), /^n OK/m);
    await small.store.ingest(small.user.email, message('overflowing'));
    const said = await w.until(/NOTIFICATIONOVERFLOW[^\r\n]*\r\n/, 15_000);
    assert.match(said, /^\* OK \[NOTIFICATIONOVERFLOW\] /m);
    assert.doesNotMatch(said, /STATUS/);
    await small.store.ingest(small.user.email, message('after the overflow'));
    await small.store.ingest(small.user.email, message('and another'));
    assert.doesNotMatch(await w.cmd('o', 'NOOP'), /STATUS/, 'as after NOTIFY NONE');
    w.close();
  } finally {
    await small.close();
  }
});
