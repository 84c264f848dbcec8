import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from '@hearth/testkit';
import { handToDovecot, startDovecot } from './dovecot.ts';
import { stack, type Stack } from './helpers.ts';
import { sortCorpus } from './sort-corpus.ts';
import { Wire } from './wire.ts';

/**
 * SORT, THREAD and ESORT against Dovecot 2.3: the same ~200-message Maildir served by both,
 * the same commands sent on a raw connection, the same untagged answers and statuses expected
 * (only the tagged line's human text may differ).
 */
const COMMANDS = [
  ...['ARRIVAL', 'CC', 'DATE', 'FROM', 'SIZE', 'SUBJECT', 'TO', 'DISPLAYFROM', 'DISPLAYTO'].flatMap((k) => [`SORT (${k}) UTF-8 ALL`, `SORT (REVERSE ${k}) UTF-8 ALL`]),
  'SORT (SUBJECT DATE) UTF-8 ALL',
  'SORT (REVERSE DATE SUBJECT) US-ASCII ALL',
  'SORT (FROM REVERSE SIZE) UTF-8 ALL',
  'SORT (SUBJECT) UTF-8 SINCE 3-Jul-2003',
  'SORT (DATE) UTF-8 OR SUBJECT hello FROM alice',
  'UID SORT (SUBJECT ARRIVAL) UTF-8 ALL',
  'UID SORT (REVERSE FROM) UTF-8 1:50',
  'THREAD ORDEREDSUBJECT UTF-8 ALL',
  'THREAD REFERENCES UTF-8 ALL',
  'UID THREAD REFERENCES UTF-8 ALL',
  'UID THREAD ORDEREDSUBJECT UTF-8 ALL',
  'THREAD REFERENCES UTF-8 1:120',
  'THREAD REFERENCES UTF-8 SUBJECT meeting',
  'THREAD REFS UTF-8 ALL',
  'UID THREAD REFS UTF-8 1:120',
  'THREAD REFS UTF-8 SUBJECT meeting',
  'SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL',
  'UID SORT RETURN (ALL) (REVERSE SUBJECT) UTF-8 ALL',
  'SORT RETURN () (FROM) UTF-8 ALL',
  'SORT RETURN (COUNT) (FROM) UTF-8 SUBJECT nothing-matches-this',
  'SORT RETURN (PARTIAL 1:10) (SUBJECT) UTF-8 ALL',
  'UID SORT RETURN (PARTIAL 190:250 COUNT) (REVERSE DATE) UTF-8 ALL',
  'SORT RETURN (PARTIAL 300:400) (SUBJECT) UTF-8 ALL',
  'SEARCH RETURN (PARTIAL 5:20) NOT SUBJECT meeting',
  'SEARCH RETURN (MIN MAX COUNT ALL) SUBJECT hello',
  'SORT (SUBJECT) utf-8 SUBJECT nothing-matches-this',
  'THREAD references UTF-8 SUBJECT nothing-matches-this',
  'THREAD ORDEREDSUBJECT UTF-8 SUBJECT nothing-matches-this',
  'SORT RETURN (MIN) (DATE) UTF-8 SUBJECT nothing-matches-this',
  'SORT (FOO) UTF-8 ALL',
  'SORT () UTF-8 ALL',
  'SORT (REVERSE) UTF-8 ALL',
  'THREAD FOO UTF-8 ALL',
];

async function answers(port: number, login: string, password: string): Promise<string[]> {
  const w = await Wire.connect(port);
  try {
    await w.until(/\r\n/);
    assert.match(await w.cmd('l', `LOGIN ${login} ${password}`), /^l OK/m);
    assert.match(await w.cmd('s', 'SELECT INBOX'), /^s OK/m);
    const out: string[] = [];
    for (const [i, c] of COMMANDS.entries()) {
      const text = await w.cmd(`t${i}`, c, 30_000);
      // the tagged line's status (and code), without the server's own words
      out.push(`${c}\n${text.replace(/^(t\d+ (?:OK|NO|BAD)(?: \[[^\]]*\])?).*$/m, '$1')}`);
    }
    return out;
  } finally {
    w.close();
  }
}

/**
 * Fills Hearth's INBOX with `fill`, then runs `answers` against Hearth and against Dovecot serving
 * a copy of the same Maildir (same files, uidlist and mtimes, so neither sees the other's writes);
 * the answers must be equal, one by one.
 */
async function sameAsDovecot(fill: (h: Stack) => Promise<void>, answers: (port: number, login: string, password: string) => Promise<string[]>): Promise<void> {
  const h = await stack();
  const root = tempDir('hearth-sort-dovecot-');
  try {
    await fill(h);
    fs.chmodSync(root, 0o755);
    const maildir = path.join(root, 'mail');
    fs.cpSync(h.store.mailboxPath(h.user.email), maildir, { recursive: true, preserveTimestamps: true });
    handToDovecot(maildir);
    const ours = await answers(h.imap.ports.imap, h.user.username, h.user.password);
    const dovecot = await startDovecot({ dir: path.join(root, 'dovecot'), maildir, login: 'u', password: 'pw' });
    let theirs: string[];
    try {
      theirs = await answers(dovecot.port, 'u', 'pw');
    } finally {
      await dovecot.stop();
    }
    for (let i = 0; i < ours.length; i++) assert.equal(ours[i], theirs[i]);
  } finally {
    await h.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

test('SORT, THREAD and ESORT answer as Dovecot does on the same 200-message Maildir', () =>
  sameAsDovecot(async (h) => {
    for (const m of sortCorpus()) await h.store.ingest(h.user.email, m.raw, { internalDate: m.internalDate, assignUid: true });
  }, answers));

/**
 * CONTEXT=SEARCH (RFC 5267 §4): searches kept up to date while another session flags, appends,
 * expunges and moves, and while this one stores flags; the ESEARCH updates (and every status)
 * must be Dovecot's. Other unsolicited lines (FETCH, EXISTS, RECENT) are left out of the comparison.
 */
const CONTEXT_SCRIPT: [who: 'a' | 'b', command: string][] = [
  ['a', 'SEARCH RETURN (UPDATE) UNSEEN'],
  ['a', 'SEARCH RETURN (ALL UPDATE) ALL'],
  ['a', 'UID SEARCH RETURN (COUNT UPDATE) UNSEEN'],
  ['a', 'SEARCH RETURN (PARTIAL 1:2 UPDATE) ALL'],
  ['a', 'UID SEARCH RETURN (MIN MAX UPDATE SAVE) SEEN'],
  ['a', 'SEARCH RETURN (UPDATE) ALL'],
  ['b', 'STORE 2 +FLAGS (\\Seen)'],
  ['a', 'NOOP'],
  ['b', 'STORE 1 -FLAGS (\\Seen)'],
  ['a', 'NOOP'],
  ['b', 'APPEND INBOX {15+}\r\nSubject: m7\r\n\r\n'],
  ['a', 'NOOP'],
  ['b', 'STORE 4 +FLAGS.SILENT (\\Deleted)'],
  ['b', 'EXPUNGE'],
  ['a', 'FETCH 1 UID'],
  ['a', 'NOOP'],
  ['b', 'MOVE 1 INBOX'],
  ['a', 'NOOP'],
  ['a', 'STORE 2 +FLAGS (\\Seen)'],
  ['a', 'CANCELUPDATE "a1" "a3"'],
  ['a', 'CANCELUPDATE "zz"'],
  ['a', 'CANCELUPDATE'],
  ['b', 'STORE 1:* -FLAGS (\\Seen)'],
  ['a', 'NOOP'],
  ['a', 'SELECT INBOX'],
  ['a', 'CANCELUPDATE "a0"'],
];

async function contextAnswers(port: number, login: string, password: string): Promise<string[]> {
  const [a, b] = [await Wire.connect(port), await Wire.connect(port)];
  try {
    for (const w of [a, b]) {
      await w.until(/\r\n/);
      assert.match(await w.cmd('l', `LOGIN ${login} ${password}`), /^l OK/m);
      assert.match(await w.cmd('s', 'SELECT INBOX'), /^s OK/m);
    }
    const out: string[] = [];
    for (const [i, [who, command]] of CONTEXT_SCRIPT.entries()) {
      const text = await (who === 'a' ? a : b).cmd(`${who}${i}`, command, 30_000);
      const kept = text.split('\r\n').filter((l) => l.startsWith('* ESEARCH') || new RegExp(`^${who}${i} `).test(l));
      out.push(`${who}: ${command}\n${kept.map((l) => l.replace(/^([ab]\d+ (?:OK|NO|BAD)(?: \[[^\]]*\])?).*$/, '$1')).join('\n')}`);
    }
    return out;
  } finally {
    a.close();
    b.close();
  }
}

test('CONTEXT=SEARCH: RETURN (UPDATE) and CANCELUPDATE answer as Dovecot does', () =>
  sameAsDovecot(async (h) => {
    const inbox = await (await h.store.open(h.user.email)).folder('INBOX');
    for (let i = 1; i <= 6; i++) {
      const { uid } = await h.store.ingest(h.user.email, Buffer.from(`Subject: m${i}\r\nFrom: a${i}@b.test\r\n\r\nx\r\n`), { assignUid: true });
      if (i % 2) await inbox.store([uid!], 'add', ['\\Seen']);
    }
  }, contextAnswers));
