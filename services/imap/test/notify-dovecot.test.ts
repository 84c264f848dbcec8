import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { tempDir } from '@hearth/testkit';
import { handToDovecot, startDovecot } from './dovecot.ts';
import { stack } from './helpers.ts';
import { Wire } from './wire.ts';

/** this helper's own loopback address: Dovecot listens on it, and the clients connect from it */
const ADDR = '127.0.0.31';

/**
 * One NOTIFY sequence, session A watching while session B changes things, reduced to the shape of
 * what A is told at each step: the kinds of untagged responses, their data items and attributes,
 * without numbers and names, which two servers may choose differently.
 */
async function notifySequence(port: number, host: string, login: string, password: string): Promise<string[]> {
  const connect = async (): Promise<Wire> => {
    const w = await Wire.connect(port, { host, from: ADDR });
    await w.until(/^\* OK/m);
    // both advertise NOTIFY (Dovecot with its default mailbox_list_index = yes)
    assert.match(await w.cmd('L', `LOGIN ${login} ${password}`), /^L OK \[CAPABILITY [^\]]* NOTIFY[\] ]/m);
    return w;
  };
  const a = await connect();
  const b = await connect();
  const shapes: string[] = [];
  try {
    await b.cmd('c', 'CREATE misc');
    await a.cmd('s', 'SELECT INBOX');
    const set = await a.cmd('n', 'NOTIFY SET (SELECTED (MessageNew (UID FLAGS) MessageExpunge FlagChange)) (PERSONAL (MessageNew MessageExpunge MailboxName))');
    assert.match(set, /^n OK/m, set);
    /** B's command, then what A hears until it has seen `until` */
    const step = async (name: string, command: string, until: RegExp): Promise<void> => {
      assert.match(await b.cmd('b', command), /^b OK/m, `${name} on the changing side`);
      shapes.push(`${name}: ${shape(await a.until(until, 15_000))}`);
    };
    /**
     * B's command, then A's NOOP: Dovecot 2.3 tells of the selected mailbox's changes at a command
     * or in IDLE, not between commands, so "after any command" is where the two can be compared.
     */
    const selectedStep = async (name: string, command: string): Promise<void> => {
      assert.match(await b.cmd('b', command), /^b OK/m, `${name} on the changing side`);
      shapes.push(`${name}: ${shape(await a.cmd('N', 'NOOP'))}`);
    };
    await selectedStep('append to selected', 'APPEND INBOX {20+}\r\nSubject: 1\r\n\r\nhello');
    await b.cmd('s', 'SELECT INBOX');
    await selectedStep('flag in selected', 'STORE 1 +FLAGS (\\Flagged)');
    await selectedStep('delete flag in selected', 'STORE 1 +FLAGS (\\Deleted)');
    await selectedStep('expunge in selected', 'EXPUNGE');
    await step('append elsewhere', 'APPEND misc {20+}\r\nSubject: 2\r\n\r\nhello', /STATUS [^\r\n]*\r\n/);
    await step('create', 'CREATE made', /LIST [^\r\n]*\r\n/);
    await step('rename', 'RENAME made moved', /LIST [^\r\n]*\r\n/);
    await step('delete', 'DELETE moved', /LIST [^\r\n]*\r\n/);
    // the STATUS option: a STATUS for each watched mailbox but the selected one, before the tagged OK
    const status = await a.cmd('t', 'NOTIFY SET STATUS (SELECTED-DELAYED (MessageNew MessageExpunge)) (PERSONAL (MessageNew MessageExpunge SubscriptionChange))');
    assert.doesNotMatch(status, /^\* STATUS "?INBOX"? /m, 'not the selected mailbox');
    shapes.push(`set status: ${shape(status)}`);
    await step('subscribe', 'SUBSCRIBE misc', /LIST [^\r\n]*\r\n/);
    // Dovecot 2.3 tells nothing of an UNSUBSCRIBE; RFC 5465 §5 counts it, and notify.test.ts checks Hearth's LIST for it
    assert.match(await b.cmd('u', 'UNSUBSCRIBE misc'), /^u OK/m);
    // bad input gets the same class of answer
    for (const bad of ['NOTIFY SET (SELECTED (MessageNew))', 'NOTIFY SET (SELECTED (FlagChange))', 'NOTIFY SET (PERSONAL (AnnotationChange))', 'NOTIFY BOGUS']) {
      const r = await a.cmd('x', bad);
      shapes.push(`${bad}: ${/^x (OK|NO|BAD)( \[BADEVENT)?/m.exec(r)?.slice(1).join('') ?? r}`);
    }
    assert.match(await a.cmd('z', 'NOTIFY NONE'), /^z OK/m);
  } finally {
    a.close();
    b.close();
  }
  return shapes;
}

/** Untagged responses as kinds: `EXISTS`, `FETCH(FLAGS UID)`, `STATUS(MESSAGES UIDNEXT UNSEEN)`, `LIST(\NonExistent)`, … */
function shape(text: string): string {
  const kinds = new Set<string>();
  for (const line of text.split('\r\n')) {
    let m: RegExpExecArray | null;
    // RECENT left out: Dovecot also tells of a recent count that fell by an expunge, RFC 3501 does not ask for it
    if ((m = /^\* \d+ (EXISTS|EXPUNGE)$/.exec(line))) kinds.add(m[1]!);
    else if ((m = /^\* \d+ FETCH \((.*)\)$/.exec(line))) kinds.add(`FETCH(${[...m[1]!.matchAll(/(?:^|[ (])([A-Z]+) /g)].map((x) => x[1]).sort().join(' ')})`);
    else if ((m = /^\* STATUS \S+ \((.*)\)$/.exec(line))) kinds.add(`STATUS(${m[1]!.split(' ').filter((_, i) => i % 2 === 0).sort().join(' ')})`);
    else if ((m = /^\* LIST \(([^)]*)\) \S+ \S+(.*)$/.exec(line))) kinds.add(`LIST(${m[1]!.split(' ').filter((x) => x && !/^\\Has(No)?Children$/.test(x)).join(' ')}${/OLDNAME/.test(m[2]!) ? ' OLDNAME' : ''})`);
  }
  return [...kinds].sort().join(' ');
}

test('NOTIFY tells a watching session what Dovecot tells it, for the same sequence', async () => {
  const root = tempDir('hearth-notify-dovecot-');
  fs.chmodSync(root, 0o755);
  const maildir = path.join(root, 'mail');
  for (const d of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(maildir, d), { recursive: true });
  handToDovecot(maildir);
  const dovecot = await startDovecot({ dir: path.join(root, 'dovecot'), maildir, login: 'u', password: 'pw', host: ADDR });
  let theirs: string[];
  try {
    theirs = await notifySequence(dovecot.port, ADDR, 'u', 'pw');
  } finally {
    await dovecot.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
  const h = await stack();
  try {
    const ours = await notifySequence(h.imap.ports.imap, '127.0.0.1', h.user.username, h.user.password);
    assert.deepEqual(ours, theirs);
  } finally {
    await h.close();
  }
});
