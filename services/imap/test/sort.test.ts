import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from '@hearth/testkit';
import { handToDovecot, startDovecot } from './dovecot.ts';
import { stack } from './helpers.ts';
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
  'SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL',
  'UID SORT RETURN (ALL) (REVERSE SUBJECT) UTF-8 ALL',
  'SORT RETURN () (FROM) UTF-8 ALL',
  'SORT RETURN (COUNT) (FROM) UTF-8 SUBJECT nothing-matches-this',
  'SORT RETURN (PARTIAL 1:10) (SUBJECT) UTF-8 ALL',
  'UID SORT RETURN (PARTIAL 190:250 COUNT) (REVERSE DATE) UTF-8 ALL',
  'SORT RETURN (PARTIAL 300:400) (SUBJECT) UTF-8 ALL',
  'SEARCH RETURN (PARTIAL 5:20) NOT SUBJECT meeting',
  'SEARCH RETURN (MIN MAX COUNT ALL) SUBJECT hello',
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

test('SORT, THREAD and ESORT answer as Dovecot does on the same 200-message Maildir', async () => {
  const h = await stack();
  const root = tempDir('hearth-sort-dovecot-');
  try {
    for (const m of sortCorpus()) await h.store.ingest(h.user.email, m.raw, { internalDate: m.internalDate, assignUid: true });
    // Dovecot serves a copy (same files, uidlist and mtimes), so neither server sees the other's writes
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
    for (let i = 0; i < COMMANDS.length; i++) assert.equal(ours[i], theirs[i]);
  } finally {
    await h.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
});
