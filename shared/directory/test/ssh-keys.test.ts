import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Directory, DirectoryError } from '@hearth/directory';
import { runCommand, testEnv, type TestEnv } from '@hearth/testkit';

/** SSH public keys for SFTP (a table of their own since schema version 6), on both backends; fingerprints as ssh-keygen prints them. */
for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`ssh keys on ${backend}`, () => {
    let t: TestEnv;
    let d: Directory;
    let line: string;
    let fingerprint: string;
    before(async () => {
      t = await testEnv({ backend });
      d = await Directory.open(t.config);
      await d.addUser({ username: 'kim', email: 'kim@example.test', password: 'kim-password-1' });
      const key = path.join(t.dataDir, 'id_ecdsa');
      assert.equal((await runCommand('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', '', '-C', 'kim@laptop', '-f', key])).code, 0);
      line = fs.readFileSync(`${key}.pub`, 'utf8');
      fingerprint = (await runCommand('ssh-keygen', ['-l', '-f', `${key}.pub`])).stdout.split(' ')[1]!;
    });
    after(async () => {
      await d.close();
      await t.cleanup();
    });

    it('adds, lists and deletes a key; refuses duplicates and malformed lines; keys go with their user', async () => {
      const k = await d.addSshKey('kim', line);
      assert.equal(k.fingerprint, fingerprint);
      assert.equal(k.algorithm, 'ecdsa-sha2-nistp256');
      assert.equal(k.comment, 'kim@laptop');
      assert.deepEqual((await d.sshKeys('kim@example.test')).map((x) => x.id), [k.id]);
      await assert.rejects(d.addSshKey('kim', line), (e: Error) => e instanceof DirectoryError && /already has the key/.test(e.message));
      for (const bad of ['', 'ssh-dss AAAAB3NzaC1kc3M= x', 'ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ== x', 'ssh-ed25519 !!!']) {
        await assert.rejects(d.addSshKey('kim', bad), DirectoryError, bad);
      }
      await d.deleteSshKey('kim', fingerprint);
      assert.deepEqual(await d.sshKeys('kim'), []);
      await assert.rejects(d.deleteSshKey('kim', fingerprint), /has no key/);
      const again = await d.addSshKey('kim', line);
      const id = (await d.store.listSshKeys(again.userId))[0]!.userId;
      await d.deleteUser('kim');
      assert.deepEqual(await d.store.listSshKeys(id), []);
    });
  });
}
