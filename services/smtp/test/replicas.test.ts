import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { SMTPServer } from 'smtp-server';
import { Directory } from '@hearth/directory';
import { freePort, startDaemon, testEnv, waitFor, type Daemon, type TestEnv } from '@hearth/testkit';
import { listQueue } from '../src/queue-admin.ts';
import { BOB, maildirMessages, seed, sendBurst, swaks, USER } from './helpers.ts';

/**
 * Two SMTP daemons, two processes, one PostgreSQL queue and one data folder: both deliver
 * from the same queue. The sink holds the end of DATA of every message replica A relays, so
 * A is killed with attempts in flight; B takes A's entries over when their leases run out.
 */

const N = 30;
const ADDRESS = '127.0.0.26';
const ready = (out: string): boolean => out.includes('"msg":"ready"');
const entry = 'services/smtp/src/main.ts';

interface HeldSink {
  port: number;
  /** messages acknowledged with 250, per Subject */
  accepted: Map<string, number>;
  /** DSNs acknowledged (null sender), per Subject of the bounced message */
  dsns: Map<string, number>;
  /** end of DATA reached from replica A, never answered */
  heldFromA: number;
  close(): Promise<void>;
}

async function startHeldSink(): Promise<HeldSink> {
  const sink: HeldSink = { port: 0, accepted: new Map(), dsns: new Map(), heldFromA: 0, close: async () => {} };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    disableReverseLookup: true,
    closeTimeout: 200,
    onRcptTo(address, _s, cb) {
      if (address.address === 'nosuch@remote.test') return cb(Object.assign(new Error('5.1.1 <nosuch@remote.test>: user unknown'), { responseCode: 550 }));
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('latin1');
        // a message whose 250 never came is not delivered (RFC 5321 §4.1.1.4): A dies waiting
        if (session.hostNameAppearsAs === 'replica-a.test') {
          sink.heldFromA++;
          return;
        }
        const subject = /^Subject: (burst-\d+)\r$/m.exec(raw)?.[1] ?? '?';
        const tally = session.envelope.mailFrom && session.envelope.mailFrom.address !== '' ? sink.accepted : sink.dsns;
        tally.set(subject, (tally.get(subject) ?? 0) + 1);
        cb();
      });
    },
  });
  server.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, ADDRESS, () => resolve());
  });
  sink.port = (server.server.address() as net.AddressInfo).port;
  sink.close = () => new Promise<void>((r) => server.close(() => r()));
  return sink;
}

let env: TestEnv;
let sink: HeldSink;
const daemons: Daemon[] = [];

async function replicaEnv(name: string, extra: Record<string, string> = {}): Promise<Record<string, string>> {
  return {
    ...env.env,
    ...extra,
    HEARTH_HOSTNAME: `${name}.test`,
    HEARTH_SMTP_PORT: String(await freePort()),
    HEARTH_SMTPS_PORT: String(await freePort()),
    HEARTH_SMTP_INBOUND_PORT: String(await freePort()),
  };
}

before(async () => {
  sink = await startHeldSink();
  env = await testEnv({
    backend: 'postgres',
    env: {
      HEARTH_LISTEN: ADDRESS,
      HEARTH_SMTP_TRUSTED_NETWORKS: `${ADDRESS}/32`,
      HEARTH_SMTP_RELAY: `smtp://${ADDRESS}:${sink.port}`,
      HEARTH_SMTP_RETRY_DELAYS: '0.3',
      HEARTH_SMTP_QUEUE_LEASE: '2',
      HEARTH_SMTP_DELIVERY_CONCURRENCY: '4',
      HEARTH_LOG_LEVEL: 'info',
    },
  });
  const directory = await Directory.open(env.config);
  await seed(directory);
  await directory.close();
});
after(async () => {
  for (const d of daemons) await d.stop('SIGKILL');
  await sink?.close();
  await env?.cleanup();
});

describe('two SMTP replicas: one PostgreSQL queue, one Redis', () => {
  it('a replica killed mid-delivery: every recipient gets each message once, every DSN goes once', async (t) => {
    const aEnv = await replicaEnv('replica-a');
    const a = await startDaemon(entry, aEnv, ready);
    daemons.push(a);
    const b = await startDaemon(entry, await replicaEnv('replica-b'), ready);
    daemons.push(b);
    const out = await sendBurst({ port: Number(aEnv.HEARTH_SMTP_INBOUND_PORT), count: N, rcpts: [BOB.email, 'far@remote.test', 'nosuch@remote.test'], host: ADDRESS });
    assert.match(out, /LAST250/, out);
    // A has attempts in flight (held at the sink) while B delivers its share
    await waitFor(() => sink.heldFromA >= 2, 30_000);
    await a.stop('SIGKILL');
    t.diagnostic(`at the kill: ${sink.heldFromA} relays held from A, ${sink.accepted.size} accepted from B`);
    assert.ok(sink.accepted.size < N, 'B had not delivered everything before the kill');
    await waitFor(async () => (await listQueue(env.config)).length === 0, 90_000);
    assert.match(b.output(), /queue entry taken over/);
    const bob = maildirMessages(env.dataDir, BOB.email);
    for (let i = 0; i < N; i++) {
      const subject = `burst-${i}`;
      assert.equal(sink.accepted.get(subject), 1, `${subject} relayed ${sink.accepted.get(subject) ?? 0} times`);
      assert.equal(sink.dsns.get(subject), 1, `${subject}: ${sink.dsns.get(subject) ?? 0} DSNs for nosuch@`);
      assert.equal(bob.filter((m) => m.includes(`Subject: ${subject}\r\n`)).length, 1, `bob ${subject}`);
    }
  });

  it('with Redis, the per-sender limit holds across replicas: the N+1th message is refused whichever replica takes it', async () => {
    const limits = { HEARTH_REDIS_URL: 'redis://127.0.0.1:6379', HEARTH_SMTP_RATE_PER_SENDER: '3' };
    const cEnv = await replicaEnv('replica-c', limits);
    const dEnv = await replicaEnv('replica-d', limits);
    daemons.push(await startDaemon(entry, cEnv, ready), await startDaemon(entry, dEnv, ready));
    const send = (e: Record<string, string>, i: number) =>
      swaks(['--port', e.HEARTH_SMTP_PORT!, '--auth', 'PLAIN', '--auth-user', USER.username, '--auth-password', USER.password, '--from', USER.email, '--to', BOB.email, '--h-Subject', `limited-${i}`], ADDRESS);
    const replies: string[] = [];
    for (const [i, e] of [cEnv, dEnv, cEnv, dEnv, cEnv].entries()) {
      const r = await send(e, i);
      // swaks: "<-  " before a reply it expected, "<** " before a refusal
      replies.push(/^<(?:-|\*\*) +(\d{3}.*)$/m.exec(r.out.split(/^ -> MAIL FROM.*$/m)[1] ?? '')?.[1] ?? r.out);
    }
    assert.deepEqual(replies, ['250 Accepted', '250 Accepted', '250 Accepted', '451 4.7.1 sending rate limit reached; try again later', '451 4.7.1 sending rate limit reached; try again later']);
  });
});
