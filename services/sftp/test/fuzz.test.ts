import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, it } from 'node:test';
import ssh2 from 'ssh2';
import { PASSWORDS, sftpStack, type SftpStack } from './helpers.ts';

/** Bad input at every layer: the daemon answers or drops the connection, stays up, and nothing outside the data folder changes. */

let s: SftpStack;

before(async () => {
  s = await sftpStack();
  fs.writeFileSync(path.join(s.wikiData, 'keep.txt'), 'keep\n');
  fs.symlinkSync('/tmp', path.join(s.wikiData, 'out-link'));
});
after(() => s?.cleanup());

function connect(): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.on('ready', () => resolve(c)).on('error', reject).connect({ host: '127.0.0.1', port: s.port, username: 'alice@wiki.example.test', password: PASSWORDS.alice, readyTimeout: 20_000 });
  });
}

async function stillServes(): Promise<void> {
  const c = await connect();
  try {
    const names = await new Promise<string[]>((resolve, reject) =>
      c.sftp((err, sftp) => (err ? reject(err) : sftp.readdir('/', (e, list) => (e ? reject(e) : resolve(list.map((x) => x.filename)))))),
    );
    assert.ok(Array.isArray(names));
  } finally {
    c.end();
  }
}

/** Every path (with file sizes) in the data dir outside the app's data folder. */
function outsideState(): string {
  const seen: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (p === s.wikiData) continue;
      seen.push(e.isFile() ? `${p} ${fs.lstatSync(p).size}` : p);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(s.t.dataDir);
  // the store changes with every login (audit log)
  return seen.filter((p) => !/hearth\.db/.test(p)).sort().join('\n');
}

/** Names the fuzzer may write; out-link points at /tmp, so none may appear there. */
const NAMES = ['keep.txt', 'sub', 'victim', 'a'.repeat(300), '%2e%2e', 'x\ny'];

it('garbage before and during the SSH handshake is dropped', async () => {
  const payloads = [randomBytes(4096), Buffer.from('SSH-2.0-fuzz\r\n' + 'x'.repeat(70_000)), Buffer.concat([Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'), randomBytes(2048)]), Buffer.from('\r\n'.repeat(1000))];
  for (const p of payloads) {
    await new Promise<void>((resolve) => {
      const sock = net.connect(s.port, '127.0.0.1', () => sock.end(p));
      sock.on('data', () => {});
      sock.on('error', () => resolve());
      sock.on('close', () => resolve());
      sock.setTimeout(10_000, () => sock.destroy());
    });
  }
  await stillServes();
});

it('random SFTP packets from a logged-in client get errors, not a crash', async () => {
  const c = await connect();
  try {
    const stream = await new Promise<ssh2.ClientChannel>((resolve, reject) => c.subsys('sftp', (err, st) => (err ? reject(err) : resolve(st))));
    stream.on('data', () => {});
    // INIT, then framed packets of every type with random bodies, then unframed noise
    const init = Buffer.from([0, 0, 0, 5, 1, 0, 0, 0, 3]);
    stream.write(init);
    for (let i = 0; i < 400; i++) {
      const body = randomBytes(randomInt(0, 200));
      const packet = Buffer.alloc(5 + 4 + body.length);
      packet.writeUInt32BE(1 + 4 + body.length, 0);
      packet[4] = randomInt(1, 210);
      packet.writeUInt32BE(i, 5);
      body.copy(packet, 9);
      stream.write(packet);
    }
    stream.write(randomBytes(8192));
    await new Promise((r) => setTimeout(r, 1000));
    stream.end();
  } finally {
    c.end();
  }
  await stillServes();
});

it('hostile paths never reach outside the data folder', async () => {
  const before = outsideState();
  const inTmp = (): string[] => NAMES.filter((n) => fs.existsSync(path.join('/tmp', n)));
  const tmpBefore = inTmp();
  const segments = ['..', '.', '', 'out-link', 'keep.txt', 'nested', '../..', '\\..\\..', 'a'.repeat(300), '%2e%2e', 'x\ny', 'sub', '..\0etc'];
  const randomPath = (): string => Array.from({ length: randomInt(1, 7) }, () => segments[randomInt(segments.length)]).join('/') + (randomInt(4) ? '' : '/victim');
  const c = await connect();
  try {
    const sftp = await new Promise<ssh2.SFTPWrapper>((resolve, reject) => c.sftp((err, x) => (err ? reject(err) : resolve(x))));
    const settle = (fn: (cb: (err?: Error | null) => void) => void): Promise<void> => new Promise((resolve) => fn(() => resolve()));
    for (let i = 0; i < 150; i++) {
      const p = (randomInt(2) ? '/' : '') + randomPath();
      const q = randomPath();
      switch (i % 7) {
        case 0:
          await settle((cb) => sftp.stat(p, cb));
          break;
        case 1:
          await settle((cb) => sftp.writeFile(p, 'pwned', cb));
          break;
        case 2:
          await settle((cb) => sftp.mkdir(p, cb));
          break;
        case 3:
          await settle((cb) => sftp.rename(p, q, cb));
          break;
        case 4:
          await settle((cb) => sftp.unlink(p, cb));
          break;
        case 5:
          await settle((cb) => sftp.readdir(p, cb));
          break;
        default:
          await settle((cb) => sftp.setstat(p, { mode: 0o777, uid: 0, gid: 0 }, cb));
      }
    }
  } finally {
    c.end();
  }
  assert.equal(outsideState(), before, 'nothing outside the data folder changed');
  assert.deepEqual(inTmp(), tmpBefore, 'nothing written through the symlink to /tmp');
  await stillServes();
});
