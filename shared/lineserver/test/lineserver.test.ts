import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { testEnv, type TestEnv } from '@hearth/testkit';
import { loadTls, type TlsMaterial } from '@hearth/tls';
import { CommandQueue, Connections, listenPair, TlsUpgradableTransport } from '../src/index.ts';

let env: TestEnv;
let material: TlsMaterial;

before(async () => {
  env = await testEnv();
  material = await loadTls(env.config);
});
after(() => env.cleanup());

/** reads from `sock` until `text` has arrived; returns everything read */
async function readUntil(sock: net.Socket, text: string): Promise<string> {
  let got = '';
  while (!got.includes(text)) {
    const [chunk] = (await once(sock, 'data')) as [Buffer];
    got += chunk.toString();
  }
  return got;
}

/** a loopback pair: the server end is handed to `onServer` */
async function socketPair(onServer: (s: net.Socket) => void): Promise<{ client: net.Socket; server: net.Server }> {
  const server = net.createServer(onServer);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await once(client, 'connect');
  return { client, server };
}

test('STARTTLS upgrades the transport in place and drops what was pipelined in clear text', { timeout: 20_000 }, async (t) => {
  const secureContext = tls.createSecureContext({ cert: material.cert, key: material.key });
  const seen: string[] = [];
  let dropped: string[] = [];
  let attached = 0;
  let transport: TlsUpgradableTransport | undefined;
  const { client, server } = await socketPair((s) => {
    const tr = new TlsUpgradableTransport(
      s,
      { implicitTls: false, secureContext },
      {
        onData(data) {
          queue.enqueue(data.toString().split('\r\n').filter(Boolean));
        },
        onAttach() {
          attached++;
        },
        beforeUpgrade() {
          dropped = queue.drop();
        },
      },
    );
    const queue = new CommandQueue<string>({
      maxQueued: 8,
      socket: () => tr.socket,
      closed: () => false,
      handle: async (line) => {
        seen.push(`${line} secure=${tr.secure}`);
        if (line === 'STARTTLS') {
          await tr.write(Buffer.from('OK begin TLS\r\n'));
          await tr.startTls();
        } else await tr.write(Buffer.from(`echo ${line}\r\n`));
      },
      onError: (err) => assert.fail(String(err)),
    });
    transport = tr;
    tr.start();
  });
  t.after(() => {
    client.destroy();
    server.close();
  });

  client.write('STARTTLS\r\nSNEAKY\r\n');
  await readUntil(client, 'OK begin TLS\r\n');
  const secured = tls.connect({ socket: client, rejectUnauthorized: false });
  await once(secured, 'secureConnect');
  secured.write('HELLO\r\n');
  assert.equal(await readUntil(secured, '\r\n'), 'echo HELLO\r\n');

  assert.ok(transport);
  assert.equal(transport.secure, true);
  assert.equal(transport.remote, '127.0.0.1');
  assert.ok(transport.socket instanceof tls.TLSSocket);
  assert.equal(attached, 2, 'hooks attach to the plain socket, then to the TLS one');
  assert.deepEqual(dropped, ['SNEAKY']);
  assert.deepEqual(seen, ['STARTTLS secure=false', 'HELLO secure=true']);

  transport.close();
  await once(secured, 'close');
});

test('listenPair serves plain and implicit TLS; Connections caps, rechecks and closes all', { timeout: 20_000 }, async () => {
  const rechecked: string[] = [];
  const connections = new Connections<{ name: string; recheck(): Promise<void> }>(2);
  const accepted: boolean[] = [];
  const listeners = await listenPair({
    host: '127.0.0.1',
    tls: material,
    schemes: ['line', 'lines'],
    ports: { plain: 0, secure: 0 },
    onConnection(socket, implicitTls) {
      if (!connections.admit(socket, 'BUSY\r\n')) return;
      accepted.push(implicitTls);
      const session = { name: implicitTls ? 'secure' : 'plain', recheck: async () => void rechecked.push(session.name) };
      connections.add(session);
      socket.on('close', () => connections.remove(socket, session));
      socket.write('HI\r\n');
    },
  });
  assert.ok(listeners.ports.plain > 0 && listeners.ports.secure > 0);
  assert.notEqual(listeners.ports.plain, listeners.ports.secure);
  assert.deepEqual(listeners.endpoints, [`line://127.0.0.1:${listeners.ports.plain}`, `lines://127.0.0.1:${listeners.ports.secure}`]);

  const plain = net.connect(listeners.ports.plain, '127.0.0.1');
  assert.equal(await readUntil(plain, '\r\n'), 'HI\r\n');
  const secure = tls.connect({ port: listeners.ports.secure, host: '127.0.0.1', rejectUnauthorized: false });
  assert.equal(await readUntil(secure, '\r\n'), 'HI\r\n');
  assert.deepEqual(accepted, [false, true]);

  // Over the cap: the protocol's refusal, then the server closes.
  const third = net.connect(listeners.ports.plain, '127.0.0.1');
  let refused = '';
  third.on('data', (d: Buffer) => (refused += d.toString()));
  await once(third, 'close');
  assert.equal(refused, 'BUSY\r\n');
  assert.equal(connections.sessions.size, 2);

  let notify = (): void => {};
  let unsubscribed = false;
  const unwatch = connections.recheckOn({
    onChange(listener) {
      notify = listener;
      return () => {
        unsubscribed = true;
      };
    },
  });
  notify();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(rechecked.sort(), ['plain', 'secure']);
  unwatch();
  assert.ok(unsubscribed);

  const closed = Promise.all([once(plain, 'close'), once(secure, 'close')]);
  connections.closeAll();
  await closed;
  await listeners.close();
  assert.equal(connections.sessions.size, 0);
  await assert.rejects(
    new Promise((resolve, reject) => net.connect(listeners.ports.plain, '127.0.0.1').on('connect', resolve).on('error', reject)),
    /ECONNREFUSED/,
  );
});
