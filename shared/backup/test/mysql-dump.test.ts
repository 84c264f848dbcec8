import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { runCommand } from '@hearth/testkit';
import { keptDumpsDir } from '../src/create.ts';
import { DumpConfiner } from '../src/databases/mysql.ts';
import { appSql, backupStack, MYSQL_ADMIN_URL, type BackupStack } from './helpers.ts';

/**
 * A MySQL dump is loaded into a temporary database, and nothing in it may act on another one.
 * mysqldump itself writes `ALTER DATABASE <the dumped database>` around a routine made under
 * another database collation; and the dump Hearth keeps of each app goes with the app.
 */

let s: BackupStack;
let app: Record<string, string>;
const admin = (sql: string) => runCommand('mysql', ['-h', '127.0.0.1', '-u', new URL(MYSQL_ADMIN_URL).username, '-N', '-B', '-e', sql], { timeoutMs: 30_000 });
const keptDump = (): string => path.join(keptDumpsDir(s.t.dataDir, 'legacy'), `${app.CLOUDRON_MYSQL_DATABASE}.sql`);

before(async () => {
  s = await backupStack();
  app = await s.install('legacy', { localstorage: {}, mysql: {} });
  // A procedure made while the database was latin1: mysqldump then switches the database's collation around it, by name.
  await appSql('mysql', app, "ALTER DATABASE CHARACTER SET latin1; CREATE PROCEDURE greet() SELECT 'hello'; ALTER DATABASE CHARACTER SET utf8mb4; CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('kept')");
  await s.ok(['backup', 'create', '--app', 'legacy']);
});
after(() => s?.cleanup());

it("mysqldump's own ALTER DATABASE acts on the temporary database: the app's database is restored where it was lost", async () => {
  const db = app.CLOUDRON_MYSQL_DATABASE!;
  assert.match(fs.readFileSync(keptDump(), 'utf8'), new RegExp(`^ALTER DATABASE \`${db}\` CHARACTER SET latin1`, 'm'), 'the real dump names the database');
  const drop = await admin(`DROP DATABASE \`${db}\``);
  assert.equal(drop.code, 0, drop.out);
  const out = await s.ok(['backup', 'restore', 'latest', '--app', 'legacy']);
  assert.match(out, /MySQL database/);
  assert.equal(await appSql('mysql', app, 'SELECT v FROM t'), 'kept');
  assert.equal(await appSql('mysql', app, 'CALL greet()'), 'hello');
  const left = await admin("SHOW DATABASES LIKE 'hearth\\_%'");
  assert.equal(left.stdout.trim(), '', 'no temporary database left');
});

it('a dump line that switches, makes, drops or alters another database is refused; the same words inside a routine body are not statements', () => {
  const db = app.CLOUDRON_MYSQL_DATABASE!;
  const lines = fs.readFileSync(keptDump(), 'latin1').split('\n');
  const load = (extra: string[]): string[] => {
    const c = new DumpConfiner(db, 'hearth_restore_test');
    return [...lines, ...extra].map((l) => c.line(l));
  };
  const loaded = load([]);
  assert.equal(loaded.filter((l) => l.includes(`ALTER DATABASE \`${db}\``)).length, 0);
  assert.equal(loaded.filter((l) => l.startsWith('ALTER DATABASE `hearth_restore_test` CHARACTER SET')).length, 2);
  for (const bad of ['USE `mysql`;', '/*!40000 USE mysql */;', 'CREATE DATABASE evil;', 'DROP SCHEMA IF EXISTS `other`;', 'ALTER DATABASE `other` CHARACTER SET latin1;', 'alter schema other collate latin1_bin;']) {
    assert.throws(() => load([bad]), /acts on another database/, bad);
  }
  assert.doesNotThrow(() => load(['ALTER DATABASE CHARACTER SET utf8mb4;', 'DELIMITER ;;', 'CREATE PROCEDURE p()', 'BEGIN', 'CREATE DATABASE made_by_the_app;', 'END ;;', 'DELIMITER ;']));
});

it('the kept dump goes with the app when it is uninstalled', async () => {
  assert.equal(fs.existsSync(keptDump()), true);
  await s.ok(['app', 'uninstall', 'legacy']);
  assert.equal(fs.existsSync(keptDumpsDir(s.t.dataDir, 'legacy')), false);
  const leftovers = fs.readdirSync(s.t.dataDir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.sql'));
  assert.deepEqual(leftovers, []);
});
