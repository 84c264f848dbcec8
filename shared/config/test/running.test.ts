import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { runningProcesses } from '../src/index.ts';

it('lists the live Hearth processes of a data dir and forgets the pid files of dead ones', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-running-'));
  try {
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    const dead = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    await new Promise((r) => dead.once('exit', r));
    fs.mkdirSync(path.join(dir, 'run'));
    fs.writeFileSync(path.join(dir, 'run', `ldap.${live.pid}.pid`), `${live.pid}\n`);
    fs.writeFileSync(path.join(dir, 'run', `imap.${dead.pid}.pid`), `${dead.pid}\n`);
    try {
      assert.deepEqual(runningProcesses(dir), [{ name: 'ldap', pid: live.pid }]);
      assert.deepEqual(fs.readdirSync(path.join(dir, 'run')), [`ldap.${live.pid}.pid`]);
    } finally {
      live.kill();
    }
    assert.deepEqual(runningProcesses(path.join(dir, 'nowhere')), []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
