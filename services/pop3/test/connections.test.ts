import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { Directory } from '@hearth/directory';
import { createLogger } from '@hearth/log';
import { testEnv, type TestEnv } from '@hearth/testkit';
import { startPop3, type RunningPop3 } from '../src/server.ts';

let env: TestEnv;
let directory: Directory;
let pop: RunningPop3;
const open: net.Socket[] = [];
const user = { username: 'carol', email: 'carol@example.test', password: 'carol-password-1' };

before(async () => {
  env = await testEnv();
  const logger = createLogger('pop3-test', 'warn');
  directory = await Directory.open(env.config, { logger });
  await directory.addUser(user);
  await directory.addMailbox(user.email, user.username);
  pop = await startPop3({
    config: env.config,
    directory,
    logger,
    ports: { pop3: 0, pop3s: 0 },
    connections: { maxConnections: 10, maxPerAddress: 2, idleTimeoutMs: 1000, maxLifetimeMs: 0 },
  });
});
after(async () => {
  for (const s of open) s.destroy();
  await pop.close();
  await directory.close();
  await env.cleanup();
});

/** a raw POP3 connection from `from`; `read(re)` waits for the text and returns everything so far */
async function connect(from: string): Promise<{ sock: net.Socket; read(re: RegExp): Promise<string> }> {
  const sock = net.connect({ port: pop.ports.pop3, host: '127.0.0.1', localAddress: from });
  open.push(sock);
  sock.on('error', () => {});
  let got = '';
  sock.on('data', (d: Buffer) => (got += d.toString()));
  return {
    sock,
    async read(re) {
      while (!re.test(got)) {
        if (sock.destroyed) throw new Error(`closed; got ${got}`);
        await Promise.race([once(sock, 'data'), once(sock, 'close')]);
      }
      return got;
    },
  };
}

test('one address holding its share of POP3 connections is refused more; another address still logs in', { timeout: 30_000 }, async () => {
  for (let i = 0; i < 2; i++) await (await connect('127.0.0.1')).read(/^\+OK /);
  const greedy = await connect('127.0.0.1');
  assert.equal(await greedy.read(/\r\n/), '-ERR [SYS/TEMP] Too many connections from your address\r\n');
  await once(greedy.sock, 'close');

  const other = await connect('127.0.0.23');
  await other.read(/^\+OK /);
  other.sock.write(`USER ${user.username}\r\nPASS ${user.password}\r\nSTAT\r\n`);
  assert.match(await other.read(/\+OK 0 0\r\n/), /\+OK 0 0\r\n$/);
});

test('a POP3 session idle past HEARTH_POP3_IDLE_TIMEOUT is told so and closed', { timeout: 30_000 }, async () => {
  const c = await connect('127.0.0.23');
  await c.read(/^\+OK /);
  const start = Date.now();
  await once(c.sock, 'close');
  assert.match(await c.read(/Autologout/), /-ERR Autologout\r\n$/);
  assert.ok(Date.now() - start >= 900, 'not before the timeout');
});
