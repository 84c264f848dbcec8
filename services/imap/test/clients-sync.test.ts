import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from '@hearth/testkit';
import { loadTls } from '@hearth/tls';
import { message, run, stack, type Stack } from './helpers.ts';

/**
 * Debian's mbsync (isync) and offlineimap3 syncing an account with Hearth's IMAP over implicit TLS
 * into a local Maildir, then syncing changes made on both sides. What the server and the Maildir
 * must hold afterwards follows from what the test did on each side.
 */

const HOST = '127.0.0.32';
/** "Café" in modified UTF-7 (RFC 3501 §5.1.3): mbsync keeps it as the local folder's name, offlineimap decodes it */
const CAFE = 'Caf&AOk-';
const CAFE_DECODED = 'Café';

let s: Stack;
let caFile: string;

before(async () => {
  s = await stack({ env: { HEARTH_LISTEN: HOST, HEARTH_HOSTNAME: HOST } });
  caFile = (await loadTls(s.env.config)).certFile;
});
after(() => s.close());

/** folder → subject → IMAP system flags (sorted, without \Recent) */
type MailState = Record<string, Record<string, string[]>>;

/** What each account holds before the first sync (created over IMAP below). */
const SEEDED: MailState = {
  INBOX: { 'Inbox seen': ['\\Seen'], 'Inbox flagged': ['\\Flagged'], 'Inbox plain': [] },
  Projects: { 'Projects answered': ['\\Answered', '\\Seen'] },
  'Projects.2026': { 'Plans 2026': ['\\Seen'] },
  [CAFE]: { 'Cafe menu': [] },
};

async function python(script: string): Promise<string> {
  const r = await run('/usr/bin/python3', ['-c', script]);
  assert.equal(r.code, 0, `python failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const IMAP_LOGIN = (login: string, password: string): string => `
import imaplib, json, re
M = imaplib.IMAP4('${HOST}', ${s.imap.ports.imap})
M.starttls()
M.login(${JSON.stringify(login)}, ${JSON.stringify(password)})
`;

/**
 * Creates the folders and messages of SEEDED through IMAP (CREATE, APPEND with flags) in an
 * account that holds no message yet; returns the account's whole state: its empty folders and SEEDED.
 */
async function seed(login: string, password: string): Promise<MailState> {
  const before = await serverState(login, password);
  for (const [name, msgs] of Object.entries(before)) assert.deepEqual(msgs, {}, `${name} starts empty`);
  assert.ok('INBOX' in before);
  const appends = Object.entries(SEEDED).flatMap(([folder, msgs]) =>
    Object.entries(msgs).map(([subject, flags]) => [folder, `(${flags.join(' ')})`, message(subject, `body of ${subject}`).toString('latin1')]),
  );
  await python(`${IMAP_LOGIN(login, password)}
for name in ['Projects', 'Projects.2026', ${JSON.stringify(CAFE)}]:
    typ, data = M.create(name)
    assert typ == 'OK', data
for folder, flags, raw in json.loads(${JSON.stringify(JSON.stringify(appends))}):
    typ, data = M.append(folder, flags, None, raw.encode('latin1'))
    assert typ == 'OK', data
M.logout()
`);
  return { ...before, ...SEEDED };
}

/** The server's folders and messages as imaplib sees them (EXAMINE, FETCH FLAGS and Subject). */
async function serverState(login: string, password: string): Promise<MailState> {
  const out = await python(`${IMAP_LOGIN(login, password)}
state = {}
typ, lines = M.list('""', '*')
for line in lines:
    m = re.match(rb'\\(([^)]*)\\) "(.)" (.*)$', line)
    attrs, name = m.group(1).decode(), m.group(3).decode()
    if '\\\\Noselect' in attrs or '\\\\NonExistent' in attrs:
        continue
    name = name[1:-1] if name.startswith('"') else name
    typ, data = M.select('"%s"' % name, readonly=True)
    assert typ == 'OK', (name, data)
    folder = state[name] = {}
    if int(data[0]) == 0:
        continue
    typ, data = M.fetch('1:*', '(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
    for item in data:
        if not isinstance(item, tuple):
            continue
        flags = re.search(rb'FLAGS \\(([^)]*)\\)', item[0]).group(1).decode().split()
        subject = item[1].decode().split(':', 1)[1].strip()
        folder[subject] = sorted(f for f in flags if f != '\\\\Recent')
print(json.dumps(state))
M.logout()
`);
  return JSON.parse(out) as MailState;
}

/** Maildir info flags (the part after ":2,") as IMAP system flags */
const MAILDIR_FLAGS: Record<string, string> = { D: '\\Draft', F: '\\Flagged', R: '\\Answered', S: '\\Seen', T: '\\Deleted' };

function isMaildir(dir: string): boolean {
  return ['cur', 'new', 'tmp'].every((d) => fs.existsSync(path.join(dir, d)));
}

/** Every Maildir under `root` (named by its path with "/" between levels) with its messages' subjects and flags. */
function maildirState(root: string): MailState {
  const state: MailState = {};
  const walk = (dir: string, name: string): void => {
    if (isMaildir(dir)) {
      const folder: Record<string, string[]> = (state[name] = {});
      for (const sub of ['new', 'cur']) {
        for (const file of fs.readdirSync(path.join(dir, sub))) {
          const raw = fs.readFileSync(path.join(dir, sub, file), 'latin1');
          const subject = /^Subject: (.*)$/m.exec(raw)?.[1]?.trim() ?? '';
          const info = /:2,([A-Za-z]*)$/.exec(file)?.[1] ?? '';
          folder[subject] = [...info].flatMap((c) => MAILDIR_FLAGS[c] ?? []).sort();
        }
      }
    }
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || ['cur', 'new', 'tmp'].includes(entry.name) || entry.name.startsWith('.')) continue;
      walk(path.join(dir, entry.name), name ? `${name}/${entry.name}` : entry.name);
    }
  };
  walk(root, '');
  return state;
}

/** The Maildir file of the message with `subject` in a local folder. */
function localFile(folderDir: string, subject: string): string {
  for (const sub of ['cur', 'new']) {
    for (const name of fs.readdirSync(path.join(folderDir, sub))) {
      const file = path.join(folderDir, sub, name);
      if (/^Subject: (.*)$/m.exec(fs.readFileSync(file, 'latin1'))?.[1]?.trim() === subject) return file;
    }
  }
  throw new Error(`no local message "${subject}" in ${folderDir}`);
}

/** Sets a message's Maildir flags as a local mail reader would: rename into cur/ with the new info. */
function setLocalFlags(file: string, letters: string): void {
  const base = path.basename(file).replace(/:2,[A-Za-z]*$/, '');
  fs.renameSync(file, path.join(path.dirname(path.dirname(file)), 'cur', `${base}:2,${letters}`));
}

/** A new local folder holding one read message, as a mail reader would create it. */
function createLocalFolder(dir: string, subject: string): void {
  for (const sub of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  fs.writeFileSync(path.join(dir, 'cur', `1700000000.local1.hearth-test:2,S`), message(subject, `body of ${subject}`));
}

/**
 * The changes made between the two syncs: a message delivered on the server, and locally a flag
 * set, a message deleted and a folder created. Returns what both sides must hold after the second sync.
 */
async function changeBothSides(seeded: MailState, email: string, local: string, inbox: string): Promise<MailState> {
  await s.store.deliver(email, message('Delivered later', 'arrived between the syncs'));
  setLocalFlags(localFile(inbox, 'Inbox plain'), 'F');
  fs.rmSync(localFile(inbox, 'Inbox seen'));
  createLocalFolder(path.join(local, 'Notes'), 'Local note');
  return {
    ...seeded,
    INBOX: { 'Inbox flagged': ['\\Flagged'], 'Inbox plain': ['\\Flagged'], 'Delivered later': [] },
    Notes: { 'Local note': ['\\Seen'] },
  };
}

/** A server-side state with IMAP names turned into the local layout's ("." levels become "/" directories). */
function asLocal(state: MailState, decodeNames = false): MailState {
  return Object.fromEntries(Object.entries(state).map(([name, msgs]) => [(decodeNames && name === CAFE ? CAFE_DECODED : name).replaceAll('.', '/'), msgs]));
}

test('mbsync: full sync of nested and non-ASCII folders with flags, then changes on both sides sync both ways', async () => {
  const { username: login, password, email } = s.user;
  const seeded = await seed(login, password);
  const dir = tempDir('hearth-mbsync-');
  const local = path.join(dir, 'Mail');
  const inbox = path.join(local, 'INBOX');
  fs.mkdirSync(local);
  const config = path.join(dir, 'mbsyncrc');
  fs.writeFileSync(
    config,
    `IMAPAccount hearth
Host ${HOST}
Port ${s.imap.ports.imaps}
User ${login}
Pass ${password}
SSLType IMAPS
CertificateFile ${caFile}

IMAPStore remote
Account hearth

MaildirStore local
Path ${local}/
Inbox ${inbox}
SubFolders Verbatim

Channel hearth
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
`,
  );
  const mbsync = async (): Promise<void> => {
    const r = await run('mbsync', ['-c', config, '-a'], { env: { HOME: dir }, timeoutMs: 120_000 });
    assert.equal(r.code, 0, `mbsync failed:\n${r.stdout}\n${r.stderr}`);
  };
  try {
    await mbsync();
    assert.deepEqual(maildirState(local), asLocal(seeded), 'the first sync copied every folder, message and flag');
    const expected = await changeBothSides(seeded, email, local, inbox);
    await mbsync();
    assert.deepEqual(await serverState(login, password), expected, 'the server got the local flag, deletion and folder');
    assert.deepEqual(maildirState(local), asLocal(expected), 'the Maildir got the delivered message');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['Mail', 'mbsyncrc'], 'nothing written outside the Maildir but the config');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('offlineimap: full sync of nested and non-ASCII folders with flags, then changes on both sides sync both ways', async () => {
  const { username: login, password, address: email } = s.app;
  const seeded = await seed(login, password);
  const dir = tempDir('hearth-offlineimap-');
  const local = path.join(dir, 'Mail');
  const config = path.join(dir, 'offlineimaprc');
  fs.writeFileSync(
    config,
    `[general]
accounts = hearth
metadata = ${dir}/metadata
ui = basic

[Account hearth]
localrepository = local
remoterepository = remote
utf8foldernames = yes

[Repository local]
type = Maildir
localfolders = ${local}
sep = /

[Repository remote]
type = IMAP
remotehost = ${HOST}
remoteport = ${s.imap.ports.imaps}
ssl = yes
sslcacertfile = ${caFile}
remoteuser = ${login}
remotepass = ${password}
`,
  );
  const offlineimap = async (): Promise<void> => {
    const r = await run('offlineimap', ['-c', config, '-o'], { env: { HOME: dir }, timeoutMs: 120_000 });
    assert.equal(r.code, 0, `offlineimap failed:\n${r.stdout}\n${r.stderr}`);
    assert.doesNotMatch(r.stdout + r.stderr, /ERROR/, `offlineimap reported errors:\n${r.stdout}\n${r.stderr}`);
  };
  try {
    await offlineimap();
    assert.deepEqual(maildirState(local), asLocal(seeded, true), 'the first sync copied every folder, message and flag');
    const expected = await changeBothSides(seeded, email, local, path.join(local, 'INBOX'));
    await offlineimap();
    assert.deepEqual(await serverState(login, password), expected, 'the server got the local flag, deletion and folder');
    assert.deepEqual(maildirState(local), asLocal(expected, true), 'the Maildir got the delivered message');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['Mail', 'metadata', 'offlineimaprc'], 'nothing written outside the temp dir');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
