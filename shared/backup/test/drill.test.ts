import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { stopRedisInstance } from '@hearth/provisioning';
import { freePort, parseEnvLines, runCommand, startDaemon, waitFor, type Daemon } from '@hearth/testkit';
import { startSink, swaks, type Sink } from '../../../services/smtp/test/helpers.ts';
import { appSql, backupStack, MYSQL_ADMIN_URL, PG_ADMIN_URL, type BackupStack } from './helpers.ts';

/**
 * The restore drill: a populated Hearth is backed up, its data dir and databases are wiped,
 * and `hearth backup restore latest` brings everything back, checked with real clients.
 */

const ALICE = { username: 'alice', email: 'alice@example.test', password: 'alice-password-1' };
let s: BackupStack;
let daemons: Daemon[] = [];
/** the smarthost: it answers 451 to the remote recipient until the end of the drill, and holds its port all along (a port only picked early could be taken by then) */
let relay: Sink;
let app: Record<string, string>;

async function startDaemons(): Promise<void> {
  const ready = (o: string): boolean => o.includes('"msg":"ready"');
  daemons = [
    await startDaemon('services/ldap/src/main.ts', s.env, ready),
    await startDaemon('services/imap/src/main.ts', s.env, ready),
    await startDaemon('services/smtp/src/main.ts', s.env, ready),
  ];
}

async function stopDaemons(): Promise<void> {
  await Promise.all(daemons.map((d) => d.stop()));
  daemons = [];
}

/** UIDVALIDITY, and every message's UID, flags and subject, of INBOX and Projects, as imaplib sees them. */
const IMAP_SNAPSHOT = `
import imaplib, json, os, re
m = imaplib.IMAP4('127.0.0.1', int(os.environ['PORT']))
m.login(os.environ['USER_NAME'], os.environ['USER_PASSWORD'])
out = {}
for box in ('INBOX', 'Projects'):
    typ, data = m.select(box, readonly=True)
    assert typ == 'OK', data
    validity = m.response('UIDVALIDITY')[1][0].decode()
    typ, data = m.uid('FETCH', '1:*', '(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
    msgs = []
    for part in data:
        if isinstance(part, tuple):
            meta = part[0].decode()
            uid = int(re.search(r'UID (\\d+)', meta).group(1))
            flags = sorted(re.search(r'FLAGS \\(([^)]*)\\)', meta).group(1).split())
            msgs.append([uid, flags, part[1].decode().strip()])
    out[box] = {'uidvalidity': validity, 'messages': sorted(msgs)}
print(json.dumps(out, sort_keys=True))
m.logout()
`;

const IMAP_POPULATE = `
import imaplib, os
m = imaplib.IMAP4('127.0.0.1', int(os.environ['PORT']))
m.login(os.environ['USER_NAME'], os.environ['USER_PASSWORD'])
m.create('Projects')
for i, (box, flags) in enumerate([('INBOX', '(\\\\Flagged $Label1)'), ('INBOX', '(\\\\Seen)'), ('Projects', '(\\\\Seen \\\\Answered)')]):
    msg = f'From: bob@remote.test\\r\\nTo: alice@example.test\\r\\nSubject: drill-{i}\\r\\n\\r\\nbody {i}\\r\\n'.encode()
    typ, data = m.append(box, flags, None, msg)
    assert typ == 'OK', data
m.select('INBOX')
typ, data = m.uid('STORE', '1', '+FLAGS', '(\\\\Deleted)')
m.logout()
`;

async function imap(script: string): Promise<string> {
  const r = await runCommand('python3', ['-c', script], { env: { PORT: s.env.HEARTH_IMAP_PORT!, USER_NAME: ALICE.username, USER_PASSWORD: ALICE.password }, timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.out);
  return r.stdout.trim();
}

async function ldapBind(password: string): Promise<{ code: number | null; out: string }> {
  const r = await runCommand('ldapsearch', ['-x', '-H', `ldap://127.0.0.1:${s.env.HEARTH_LDAP_PORT}`, '-D', `cn=${ALICE.username},ou=users,dc=cloudron`, '-w', password, '-b', 'ou=users,dc=cloudron', `(username=${ALICE.username})`, 'mail'], { timeoutMs: 20_000 });
  return { code: r.code, out: r.out };
}

async function queue(): Promise<{ id: string; recipients: { address: string; status: string; attempts?: number }[] }[]> {
  return JSON.parse(await s.ok(['mail', 'queue', '--json'])) as { id: string; recipients: { address: string; status: string; attempts?: number }[] }[];
}

before(async () => {
  relay = await startSink();
  relay.rcptReply = () => ({ code: 451, message: '4.3.0 try again later' });
  const ports: Record<string, string> = {};
  for (const name of ['LDAP', 'LDAPS', 'IMAP', 'IMAPS', 'SMTP', 'SMTPS', 'SMTP_INBOUND']) ports[`HEARTH_${name}_PORT`] = String(await freePort());
  s = await backupStack({
    ...ports,
    HEARTH_SMTP_RELAY: `smtp://127.0.0.1:${relay.port}`,
    HEARTH_SMTP_TRUSTED_NETWORKS: '127.0.0.1/32',
    HEARTH_SMTP_RETRY_DELAYS: '3600',
    HEARTH_LOG_LEVEL: 'info',
  });
});

after(async () => {
  await stopDaemons();
  await relay?.close();
  await s?.cleanup();
});

it('backs up users, mail, the queue and an app with MySQL (views, triggers, routines, events), PostgreSQL, Redis and data; restores all of it onto a wiped machine', { timeout: 600_000 }, async () => {
  // ---- populate ----
  await s.ok(['user', 'add', ALICE.username, '--email', ALICE.email, '--password-stdin'], `${ALICE.password}\n`);
  await s.ok(['mailbox', 'add', ALICE.email, '--owner', ALICE.username]);
  app = await s.install('drill', { localstorage: {}, mysql: {}, postgresql: {}, redis: {} });
  const dataDir = path.join(s.t.dataDir, 'apps', 'drill', 'data');
  fs.mkdirSync(path.join(dataDir, 'uploads'), { recursive: true });
  fs.writeFileSync(path.join(dataDir, 'uploads', 'report.txt'), 'quarterly numbers\n');
  await appSql('mysql', app, "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT); INSERT INTO notes VALUES (1, 'from mysql'), (2, 'ünïcödé')");
  // The objects RENAME TABLE cannot carry, made by the app itself: a view on a view, a trigger, routines, an event.
  await appSql('mysql', app, [
    'CREATE TABLE audit (note_id INT)',
    'CREATE TRIGGER notes_audit AFTER INSERT ON notes FOR EACH ROW INSERT INTO audit VALUES (NEW.id)',
    'CREATE VIEW note_lengths AS SELECT id, CHAR_LENGTH(body) AS len FROM notes',
    'CREATE VIEW long_notes AS SELECT id FROM note_lengths WHERE len > 7',
    'CREATE FUNCTION shout(s TEXT) RETURNS TEXT DETERMINISTIC RETURN UPPER(s)',
    'CREATE PROCEDURE add_note(IN i INT, IN b TEXT) INSERT INTO notes VALUES (i, b)',
    'CREATE EVENT tidy ON SCHEDULE EVERY 1 DAY DO DELETE FROM audit WHERE note_id < 0',
  ].join('; '));
  await appSql('psql', app, "CREATE TABLE notes (id int primary key, body text); INSERT INTO notes VALUES (1, 'from postgres')");
  assert.equal(await appSql('redis', app, 'SET drill:key from-redis'), 'OK');
  await appSql('redis', app, 'RPUSH drill:list a b c');
  await startDaemons();
  await imap(IMAP_POPULATE);
  // One message to a local mailbox (delivered now) and a remote one (the relay defers it: it waits in the queue).
  const sent = await swaks(['--port', s.env.HEARTH_SMTP_INBOUND_PORT!, '--from', 'carol@remote.test', '--to', `${ALICE.email},far@remote.test`, '--h-Subject', 'queued-drill']);
  assert.equal(sent.code, 0, sent.out);
  await waitFor(async () => (await queue()).some((e) => e.recipients.every((r) => r.status === 'done' || (r.attempts ?? 0) >= 1)), 20_000);
  const imapBefore = await imap(IMAP_SNAPSHOT);
  assert.match(imapBefore, /queued-drill/);
  assert.match(imapBefore, /\$Label1/);
  const queueBefore = await queue();
  assert.equal(queueBefore.length, 1);
  assert.equal((await ldapBind(ALICE.password)).code, 0);

  // ---- back up while the daemons run ----
  const created = await s.ok(['backup', 'create']);
  assert.match(created, /created a new backup repository/);
  assert.match(created, /snapshot [0-9a-f]{8} of the platform \(1 app\(s\)\)/);
  const list = JSON.parse(await s.ok(['backup', 'list', '--json'])) as { scope: string; hearthVersion: string }[];
  assert.equal(list.length, 1);
  assert.equal(list[0]!.scope, 'platform');
  const check = await s.restic(['check']);
  assert.equal(check.code, 0, check.out);
  assert.match(check.out, /no errors were found/);
  // The repository password never appears on a command line or in what the CLI printed.
  assert.doesNotMatch(created, /correct horse/);

  // ---- lose everything ----
  await stopDaemons();
  await stopRedisInstance(s.t.dataDir, 'drill');
  await runCommand('mysql', ['-h', '127.0.0.1', '-u', new URL(MYSQL_ADMIN_URL).username, '-e', `DROP DATABASE \`${app.CLOUDRON_MYSQL_DATABASE}\`; DROP USER '${app.CLOUDRON_MYSQL_USERNAME}'@'%'`]);
  const dropPg = await runCommand('psql', ['-X', '-q', '-c', `DROP DATABASE "${app.CLOUDRON_POSTGRESQL_DATABASE}" WITH (FORCE)`, '-c', `DROP ROLE "${app.CLOUDRON_POSTGRESQL_USERNAME}"`, PG_ADMIN_URL]);
  assert.equal(dropPg.code, 0, dropPg.out);
  for (const f of fs.readdirSync(s.t.dataDir)) fs.rmSync(path.join(s.t.dataDir, f), { recursive: true, force: true });

  // ---- restore ----
  const restored = await s.ok(['backup', 'restore', 'latest']);
  assert.match(restored, /the directory store \(SQLite\)/);
  assert.match(restored, /MySQL database/);
  assert.match(restored, /PostgreSQL database/);
  assert.match(restored, /redis data of app drill/);

  // ---- everything is back, seen by real clients ----
  assert.deepEqual(parseEnvLines(await s.ok(['app', 'env', 'drill'])), app, 'the app keeps its credentials');
  assert.equal(fs.readFileSync(path.join(dataDir, 'uploads', 'report.txt'), 'utf8'), 'quarterly numbers\n');
  assert.equal(await appSql('mysql', app, 'SELECT body FROM notes ORDER BY id'), 'from mysql\nünïcödé');
  assert.equal(await appSql('mysql', app, 'SELECT id, len FROM note_lengths ORDER BY id'), '1\t10\n2\t7');
  assert.equal(await appSql('mysql', app, 'SELECT id FROM long_notes'), '1');
  assert.equal(await appSql('mysql', app, 'SELECT shout(body) FROM notes WHERE id = 1'), 'FROM MYSQL');
  await appSql('mysql', app, "CALL add_note(3, 'via the procedure')");
  assert.equal(await appSql('mysql', app, 'SELECT note_id FROM audit'), '3', 'the trigger fires again');
  const definers = await appSql('mysql', app, 'SELECT DISTINCT definer FROM information_schema.views WHERE table_schema = DATABASE() UNION SELECT definer FROM information_schema.triggers WHERE trigger_schema = DATABASE() UNION SELECT definer FROM information_schema.routines WHERE routine_schema = DATABASE() UNION SELECT definer FROM information_schema.events WHERE event_schema = DATABASE()');
  assert.equal(definers, `${app.CLOUDRON_MYSQL_USERNAME}@%`, 'every object runs as the app');
  assert.equal(await appSql('mysql', app, 'SELECT event_name FROM information_schema.events WHERE event_schema = DATABASE()'), 'tidy');
  assert.equal(await appSql('psql', app, 'SELECT body FROM notes ORDER BY id'), 'from postgres');
  assert.equal(await appSql('psql', app, 'INSERT INTO notes VALUES (2, $$the app owns its tables$$) RETURNING id'), '2');
  assert.equal(await appSql('redis', app, 'GET drill:key'), 'from-redis');
  assert.equal(await appSql('redis', app, 'LRANGE drill:list 0 -1'), 'a\nb\nc');
  await startDaemons();
  const bind = await ldapBind(ALICE.password);
  assert.equal(bind.code, 0, bind.out);
  assert.match(bind.out, /mail: alice@example.test/);
  assert.notEqual((await ldapBind('wrong-password')).code, 0);
  assert.equal(await imap(IMAP_SNAPSHOT), imapBefore, 'same UIDVALIDITY, UIDs, flags and folders');
  // The queue resumes: the remote recipient goes out once, the local copy is not delivered again.
  assert.deepEqual(await queue(), queueBefore);
  relay.rcptReply = null;
  await s.ok(['mail', 'queue', 'retry']);
  await waitFor(async () => (await queue()).length === 0, 30_000);
  assert.equal(relay.messages.filter((m) => m.raw.includes('Subject: queued-drill')).length, 1);
  assert.equal((JSON.parse(await imap(IMAP_SNAPSHOT)) as { INBOX: { messages: unknown[][] } }).INBOX.messages.filter((m) => m[2] === 'Subject: queued-drill').length, 1);
  const verify = await s.ok(['backup', 'verify']);
  assert.match(verify, /no errors were found/);
});
