import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { loadConfig } from '@hearth/config';
import { Directory } from '@hearth/directory';
import { createBackup, parseBackupSettings } from '../src/index.ts';
import { backupStack, type BackupStack } from './helpers.ts';

/**
 * MongoDB databases are not backed up (no mongodump from Debian; README): a backup of an app with
 * the mongodb addon says so on its output, in its log and in the snapshot's manifest, and still
 * takes everything else.
 */

let s: BackupStack;
before(async () => {
  s = await backupStack();
  await s.install('notes', { localstorage: {} });
  // No MongoDB server can be installed here to provision one: the record is given the credentials the addon would have stored.
  const d = await Directory.open(loadConfig({ ...process.env, ...s.env }));
  try {
    const app = d.app('notes')!;
    await d.putApp({ ...app, manifest: { ...app.manifest, addons: { ...app.manifest.addons, mongodb: {} } }, credentials: { ...app.credentials, mongodb: { database: 'notes_db', username: 'notes_user', password: 'x', hosts: '127.0.0.1:27017' } } }, []);
  } finally {
    await d.close();
  }
  fs.writeFileSync(path.join(s.t.dataDir, 'apps', 'notes', 'data', 'kept.txt'), 'still backed up\n');
});
after(() => s?.cleanup());

it("a backup of an app with a MongoDB database names what it left out, and keeps the app's other data", async () => {
  for (const args of [['backup', 'create'], ['backup', 'create', '--app', 'notes']]) {
    const r = await s.cli(args, { HEARTH_LOG_LEVEL: 'info' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^not included: app notes: its MongoDB database notes_db \(Hearth cannot dump MongoDB: back it up with mongodump yourself\)$/m);
  }
  const dir = path.join(s.t.dataDir, '..', 'extracted');
  await s.ok(['backup', 'restore', 'latest', '--app', 'notes', '--to', dir]);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'hearth', 'manifest.json'), 'utf8')) as { skipped: string[] };
  assert.deepEqual(manifest.skipped, ['app notes: its MongoDB database notes_db (Hearth cannot dump MongoDB: back it up with mongodump yourself)']);
  assert.equal(fs.readFileSync(path.join(dir, 'apps', 'notes', 'data', 'kept.txt'), 'utf8'), 'still backed up\n');
  fs.rmSync(dir, { recursive: true, force: true });
});

it('the scheduled backup (npm start) logs a warning naming the left-out database', async () => {
  const env = { ...process.env, ...s.env };
  const warnings: [object, string][] = [];
  const r = await createBackup({ config: loadConfig(env), settings: parseBackupSettings(env), logger: { info() {}, warn: (obj, msg) => void warnings.push([obj, msg]) } });
  assert.deepEqual(r.manifest.skipped, ['app notes: its MongoDB database notes_db (Hearth cannot dump MongoDB: back it up with mongodump yourself)']);
  assert.deepEqual(warnings, [[{ part: r.manifest.skipped[0] }, 'left out of the backup']]);
});
