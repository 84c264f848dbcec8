import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { testEnv, type TestEnv } from '@hearth/testkit';
import { loadTls, type TlsMaterial } from '@hearth/tls';
import { ConfigError } from '@hearth/config';
import { createLogger } from '@hearth/log';
import { addressKey, CommandQueue, loadConnectionLimits, serveLines, TlsUpgradableTransport, type ConnectionLimits, type LineSession, type SessionIO } from '../src/index.ts';

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
  let transport: TlsUpgradableTransport | undefined;
  const { client, server } = await socketPair((s) => {
    const tr = new TlsUpgradableTransport(
      s,
      { implicitTls: false, secureContext },
      {
        onData(data) {
          queue.enqueue(data.toString().split('\r\n').filter(Boolean));
        },
        setIdleTimeout() {},
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
  assert.deepEqual(dropped, ['SNEAKY']);
  assert.deepEqual(seen, ['STARTTLS secure=false', 'HELLO secure=true']);

  transport.close();
  await once(secured, 'close');
});

/** A toy line protocol: "ECHO x" answers "x", "STARTTLS" upgrades, "WAIT" holds the queue until released. */
class EchoSession implements LineSession<string> {
  closed = false;
  static gate: Promise<void> = Promise.resolve();
  constructor(private readonly io: SessionIO) {}
  greeting(): Buffer {
    return Buffer.from(`HI secure=${this.io.secure}\r\n`);
  }
  async handle(line: string): Promise<void> {
    if (line === 'STARTTLS') {
      await this.io.write(Buffer.from('GO\r\n'));
      return this.io.startTls();
    }
    if (line === 'WAIT') return EchoSession.gate;
    await this.io.write(Buffer.from(`${line} secure=${this.io.secure}\r\n`));
  }
  async idle(): Promise<void> {
    this.closed = true;
    await this.io.write(Buffer.from('BYE idle\r\n'));
  }
  async shutdown(): Promise<void> {
    await this.io.write(Buffer.from('BYE shutdown\r\n'));
  }
}

const lineFramer = (): { push(d: Buffer): string[]; reset(): void } => {
  let buf = '';
  return {
    push(d) {
      buf += d.toString();
      const lines = buf.split('\r\n');
      buf = lines.pop()!;
      return lines;
    },
    reset() {
      buf = '';
    },
  };
};

async function echoServer(limits: Partial<ConnectionLimits>) {
  return serveLines<string, EchoSession>({
    host: '127.0.0.1',
    tls: material,
    listeners: [
      { scheme: 'echo', port: 0, implicitTls: false },
      { scheme: 'echos', port: 0, implicitTls: true },
    ],
    limits: { maxConnections: 10, maxPerAddress: 10, idleTimeoutMs: 60_000, maxLifetimeMs: 0, ...limits },
    logger: createLogger('lineserver-test', 'silent'),
    protocol: {
      name: 'ECHO',
      refusal: (reason) => `BUSY ${reason}\r\n`,
      framer: lineFramer,
      session: (io) => new EchoSession(io),
      maxQueued: 4,
    },
  });
}

/** connects from `from` (any 127.0.0.0/8 address is this host) and waits for the first line */
async function connectFrom(port: number, from = '127.0.0.1'): Promise<{ sock: net.Socket; first: string }> {
  const sock = net.connect({ port, host: '127.0.0.1', localAddress: from });
  sock.on('error', () => {});
  return { sock, first: await readUntil(sock, '\r\n') };
}

test('serveLines: plain, implicit TLS and STARTTLS listeners; shutdown says goodbye to every session', { timeout: 20_000 }, async () => {
  const server = await echoServer({});
  const [plainPort, securePort] = server.ports as [number, number];
  assert.deepEqual(server.endpoints, [`echo://127.0.0.1:${plainPort}`, `echos://127.0.0.1:${securePort}`]);

  const { sock: plain, first } = await connectFrom(plainPort);
  assert.equal(first, 'HI secure=false\r\n');
  plain.write('STARTTLS\r\nSNEAKY\r\n');
  await readUntil(plain, 'GO\r\n');
  const upgraded = tls.connect({ socket: plain, rejectUnauthorized: false });
  await once(upgraded, 'secureConnect');
  upgraded.write('ECHO\r\n');
  assert.equal(await readUntil(upgraded, '\r\n'), 'ECHO secure=true\r\n', 'the clear-text SNEAKY line was dropped, not answered');

  const secure = tls.connect({ port: securePort, host: '127.0.0.1', rejectUnauthorized: false });
  assert.equal(await readUntil(secure, '\r\n'), 'HI secure=true\r\n');
  assert.equal(server.sessions.size, 2);

  const byes = Promise.all([readUntil(upgraded, 'BYE shutdown'), readUntil(secure, 'BYE shutdown')]);
  await server.close();
  await byes;
  assert.equal(server.sessions.size, 0);
  await assert.rejects(
    new Promise((resolve, reject) => net.connect(plainPort, '127.0.0.1').on('connect', resolve).on('error', reject)),
    /ECONNREFUSED/,
  );
});

test('serveLines: one address gets only its share of the slots, another address still gets a session; the global cap holds', { timeout: 20_000 }, async (t) => {
  const server = await echoServer({ maxConnections: 3, maxPerAddress: 2 });
  t.after(() => server.close());
  const port = server.ports[0]!;
  const open: net.Socket[] = [];
  t.after(() => open.forEach((s) => s.destroy()));
  for (let i = 0; i < 2; i++) {
    const c = await connectFrom(port, '127.0.0.1');
    assert.equal(c.first, 'HI secure=false\r\n');
    open.push(c.sock);
  }
  const greedy = await connectFrom(port, '127.0.0.1');
  assert.equal(greedy.first, 'BUSY address\r\n');
  await once(greedy.sock, 'close');

  const other = await connectFrom(port, '127.0.0.23');
  assert.equal(other.first, 'HI secure=false\r\n', 'another address is still served');
  open.push(other.sock);
  const overflow = await connectFrom(port, '127.0.0.23');
  assert.equal(overflow.first, 'BUSY full\r\n', 'three open: the global cap refuses everyone');

  // A slot freed is a slot regained.
  open[0]!.destroy();
  await new Promise((r) => setTimeout(r, 100));
  const again = await connectFrom(port, '127.0.0.1');
  assert.equal(again.first, 'HI secure=false\r\n');
  open.push(again.sock);
});

test('serveLines: a silent connection is told goodbye and closed at the idle timeout; an active one is not', { timeout: 20_000 }, async (t) => {
  const server = await echoServer({ idleTimeoutMs: 400 });
  t.after(() => server.close());
  const silent = await connectFrom(server.ports[0]!);
  const chatty = await connectFrom(server.ports[0]!);
  const start = Date.now();
  const tick = setInterval(() => chatty.sock.write('ECHO\r\n'), 100);
  t.after(() => clearInterval(tick));
  let said = '';
  silent.sock.on('data', (d: Buffer) => (said += d.toString()));
  await once(silent.sock, 'close');
  const waited = Date.now() - start;
  assert.equal(said, 'BYE idle\r\n');
  assert.ok(waited >= 350, `closed after ${waited} ms, before the timeout`);
  await new Promise((r) => setTimeout(r, 600));
  assert.ok(!chatty.sock.destroyed && chatty.sock.readyState === 'open', 'the connection with traffic is still open');
  chatty.sock.destroy();
});

test('serveLines: a client that pipelines without end stops being read (backpressure)', { timeout: 20_000 }, async (t) => {
  const server = await echoServer({});
  t.after(() => server.close());
  let release = (): void => {};
  EchoSession.gate = new Promise((r) => (release = r));
  const { sock } = await connectFrom(server.ports[0]!);
  t.after(() => sock.destroy());
  sock.write('WAIT\r\n');
  // Far more than the socket buffers hold: without the pause the server would take it all in.
  const chunk = Buffer.from('ECHO\r\n'.repeat(100_000));
  let writable = true;
  for (let i = 0; i < 50 && writable; i++) writable = sock.write(chunk);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(writable, false, 'the server stopped reading, so our writes back up');
  release();
  EchoSession.gate = Promise.resolve();
});

test('addressKey: IPv4 as is (also v4-mapped), IPv6 by its /64', () => {
  assert.equal(addressKey('192.0.2.7'), '192.0.2.7');
  assert.equal(addressKey('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(addressKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:db8:1:2::9'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(addressKey('::1'), '0:0:0:0::/64');
});

test('loadConnectionLimits reads HEARTH_<SERVICE>_* with the service defaults and refuses nonsense', () => {
  const defaults = { maxConnections: 100, maxPerAddress: 10, idleTimeoutMs: 60_000, maxLifetimeMs: 0 };
  assert.deepEqual(loadConnectionLimits('X', defaults, {}), defaults);
  assert.deepEqual(
    loadConnectionLimits('X', defaults, { HEARTH_X_MAX_CONNECTIONS: '50', HEARTH_X_MAX_CONNECTIONS_PER_ADDRESS: '5', HEARTH_X_IDLE_TIMEOUT: '1.5', HEARTH_X_MAX_LIFETIME: '600' }),
    { maxConnections: 50, maxPerAddress: 5, idleTimeoutMs: 1500, maxLifetimeMs: 600_000 },
  );
  assert.throws(() => loadConnectionLimits('X', defaults, { HEARTH_X_MAX_CONNECTIONS_PER_ADDRESS: '0' }), ConfigError);
  assert.throws(() => loadConnectionLimits('X', defaults, { HEARTH_X_IDLE_TIMEOUT: 'soon' }), /HEARTH_X_IDLE_TIMEOUT/);
});
