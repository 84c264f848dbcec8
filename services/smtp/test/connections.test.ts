import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { BOB, startStack, swaks, USER, type Stack } from './helpers.ts';

let stack: Stack;
const open: net.Socket[] = [];

before(async () => {
  stack = await startStack({ HEARTH_SMTP_MAX_CONNECTIONS_PER_ADDRESS: '3', HEARTH_SMTP_IDLE_TIMEOUT: '1' });
});
after(async () => {
  for (const s of open) s.destroy();
  await stack.close();
});

/** a raw connection from `from`; `read(re)` waits until what arrived matches and returns all of it */
async function connect(port: number, from: string): Promise<{ sock: net.Socket; read(re: RegExp): Promise<string> }> {
  const sock = net.connect({ port, host: '127.0.0.1', localAddress: from });
  open.push(sock);
  sock.on('error', () => {});
  let got = '';
  sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
  return {
    sock,
    async read(re) {
      while (!re.test(got)) {
        if (sock.destroyed) throw new Error(`closed; got ${JSON.stringify(got)}`);
        await Promise.race([once(sock, 'data'), once(sock, 'close')]);
      }
      return got;
    },
  };
}

test('one address holding its share of SMTP sessions (over all listeners) is refused more; another address still sends', { timeout: 60_000 }, async (t) => {
  const { smtp, smtpInbound } = stack.smtp.ports;
  const held = [await connect(smtp, '127.0.0.1'), await connect(smtp, '127.0.0.1'), await connect(smtpInbound, '127.0.0.1')];
  for (const c of held) await c.read(/^220 /);
  // they keep talking, so the 1 s idle timeout leaves them be
  const keepAlive = setInterval(() => held.forEach((c) => c.sock.write('NOOP\r\n')), 300);
  t.after(() => clearInterval(keepAlive));

  const greedy = await connect(smtp, '127.0.0.1');
  assert.match(await greedy.read(/\r\n/), /^421 4\.7\.0 \S+ too many connections from your address, try again later\r\n$/);
  await once(greedy.sock, 'close');

  const sent = await swaks(['--port', String(smtp), '--local-interface', '127.0.0.23', '--from', USER.email, '--to', BOB.email, '--auth', 'PLAIN', '--auth-user', USER.username, '--auth-password', USER.password]);
  assert.equal(sent.code, 0, sent.stdout + sent.stderr);
  assert.match(sent.stdout + sent.stderr, /250 2\.0\.0 Ok: queued as/, sent.stdout + sent.stderr);
  for (const c of held) assert.equal(c.sock.destroyed, false, 'the held sessions are untouched');
});

test('an SMTP session silent past HEARTH_SMTP_IDLE_TIMEOUT gets 421 4.4.2 and is closed', { timeout: 30_000 }, async () => {
  const c = await connect(stack.smtp.ports.smtpInbound, '127.0.0.23');
  await c.read(/^220 /);
  c.sock.write('EHLO idle.test\r\n');
  await c.read(/^250 /m);
  const start = Date.now();
  await once(c.sock, 'close');
  assert.match(await c.read(/421/), /^421 4\.4\.2 \S+ idle timeout, closing connection\r\n$/m);
  assert.ok(Date.now() - start >= 900, 'not before the timeout');
});
