import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { portEnvName, type PortName } from '@hearth/config';
import { Directory } from '@hearth/directory';
import { freePort, ReplicaStacks, runCommand, stackPorts, startBalancer, testEnv, waitFor, type Balancer, type TestEnv } from '@hearth/testkit';
import { portAccepts } from '../services/supervisor/src/services.ts';

/**
 * Two complete stacks (`npm start` with LDAP, SMTP, IMAP, POP3, OIDC) on 127.0.0.11 and 127.0.0.12 over one
 * PostgreSQL database, one Redis and one data folder, Debian's HAProxy on 127.0.0.10 in front.
 * swaks sends through the balancer while stack A is killed with SIGKILL and started again:
 * every message arrives once in bob's Maildir and at the relay sink, except that a relay the sink
 * had answered 250 in the instant the stack died goes again (as with Postfix: SMTP cannot do
 * better; at most one per delivery slot of the dead stack), and ldapsearch and imaplib keep working
 * through the balancer.
 */

const BALANCER = '127.0.0.10';
const STACKS = ['127.0.0.11', '127.0.0.12'] as const;
const SINK = '127.0.0.26';
const N = 100;
const KILL_AT = 30;
/** relays a stack attempts at once: at most this many can be in the instant between the sink's 250 and the queue's record */
const CONCURRENCY = 4;
const SERVICES = 'ldap,smtp,imap,pop3,oidc';
const PORTS: PortName[] = ['ldap', 'smtp', 'imap', 'pop3', 'oidc'];
const ALICE = { username: 'alice', email: 'alice@example.test', password: 'alice-password-1' };
const BOB = { username: 'bob', email: 'bob@example.test', password: 'bob-password-1' };

let t: TestEnv;
let env: Record<string, string>;
let stacks: ReplicaStacks;
let balancer: Balancer;
const relayed = new Map<string, number>();
let sinkServer: SMTPServer;

before(async () => {
  const sinkPort = await freePort();
  t = await testEnv({
    backend: 'postgres',
    env: {
      ...(await stackPorts()),
      HEARTH_REDIS_URL: 'redis://127.0.0.1:6379',
      HEARTH_SERVICES: SERVICES,
      HEARTH_SMTP_RELAY: `smtp://${SINK}:${sinkPort}`,
      HEARTH_SMTP_RETRY_DELAYS: '0.5',
      // long enough that a replica starved by this loaded machine still renews in time; a live replica's
      // lease running out lets another deliver beside it (the README's limits)
      HEARTH_SMTP_QUEUE_LEASE: '10',
      HEARTH_SMTP_DELIVERY_CONCURRENCY: String(CONCURRENCY),
      HEARTH_TRUSTED_PROXIES: `${BALANCER}/32`,
      HEARTH_LOG_LEVEL: 'warn',
    },
  });
  env = t.env;
  const directory = await Directory.open(t.config);
  for (const u of [ALICE, BOB]) {
    await directory.addUser(u);
    await directory.addMailbox(u.email, u.username);
  }
  await directory.close();
  sinkServer = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    disableReverseLookup: true,
    onData(stream, _session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const subject = /^Subject: (two-stacks-\d+)\r$/m.exec(Buffer.concat(chunks).toString('latin1'))?.[1] ?? '?';
        relayed.set(subject, (relayed.get(subject) ?? 0) + 1);
        cb();
      });
    },
  });
  // a stack killed mid-relay resets its connection to the sink
  sinkServer.on('error', () => {});
  await new Promise<void>((resolve) => sinkServer.listen(sinkPort, SINK, () => resolve()));
  stacks = new ReplicaStacks(env, PORTS, t.dataDir, portAccepts);
  for (const s of STACKS) stacks.start(s);
  await stacks.waitUp(STACKS);
  balancer = await startBalancer({ address: BALANCER, stacks: STACKS, env, ports: PORTS, http: ['oidc'], dir: t.dataDir, probe: portAccepts });
});

after(async () => {
  stacks?.killAll();
  balancer?.stop();
  await new Promise<void>((r) => (sinkServer ? sinkServer.close(() => r()) : r()));
  await t?.cleanup();
});

/** Sends message i through the balancer as a client would: again after a refusal or a broken connection. */
async function send(i: number): Promise<number> {
  for (let attempt = 1; attempt <= 20; attempt++) {
    const r = await runCommand('swaks', ['--server', BALANCER, '--port', env[portEnvName('smtp')]!, '--timeout', '15', '--auth', 'PLAIN', '--auth-user', ALICE.username, '--auth-password', ALICE.password, '--from', ALICE.email, '--to', `${BOB.email},far@remote.test`, '--h-Subject', `two-stacks-${i}`], { timeoutMs: 30_000 });
    if (r.code === 0) return attempt;
    await new Promise((res) => setTimeout(res, 500));
  }
  throw new Error(`message ${i} never accepted`);
}

function bobCopies(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const sub of ['new', 'cur']) {
    const dir = path.join(t.dataDir, 'mail', 'example.test', BOB.username, sub);
    for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      const subject = /^Subject: (two-stacks-\d+)\r$/m.exec(fs.readFileSync(path.join(dir, f), 'latin1'))?.[1];
      if (subject) counts.set(subject, (counts.get(subject) ?? 0) + 1);
    }
  }
  return counts;
}

describe('two stacks behind HAProxy', () => {
  it(`${N} messages through the balancer while one stack is killed with SIGKILL and restarted: each arrives once; LDAP and IMAP keep answering`, async (ctx) => {
    let retried = 0;
    const queue = Array.from({ length: N }, (_, i) => i);
    let killed = false;
    const worker = async () => {
      for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
        if (i >= KILL_AT && !killed) {
          killed = true;
          stacks.kill(STACKS[0]);
        }
        retried += (await send(i)) - 1;
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    ctx.diagnostic(`swaks retries after the kill: ${retried}`);
    // through the balancer while stack A is down: the other stack answers
    const ldap = await runCommand('ldapsearch', ['-x', '-H', `ldap://${BALANCER}:${env[portEnvName('ldap')]}`, '-D', `cn=${BOB.username},ou=users,dc=cloudron`, '-w', BOB.password, '-b', 'ou=users,dc=cloudron', `(username=${ALICE.username})`, 'mail']);
    assert.equal(ldap.code, 0, ldap.out);
    assert.match(ldap.out, /result: 0 Success/);
    const imap = await runCommand('python3', ['-c', `import imaplib; m = imaplib.IMAP4('${BALANCER}', ${env[portEnvName('imap')]}); m.login('${BOB.username}', '${BOB.password}'); print(m.select('INBOX')[0]); m.logout()`]);
    assert.match(imap.out, /OK/, imap.out);
    stacks.start(STACKS[0]);
    await stacks.waitUp([STACKS[0]]);
    await waitFor(() => relayed.size >= N && bobCopies().size >= N, 120_000, 500);
    const bob = bobCopies();
    for (let i = 0; i < N; i++) {
      assert.equal(bob.get(`two-stacks-${i}`), 1, `bob two-stacks-${i}`);
      assert.ok((relayed.get(`two-stacks-${i}`) ?? 0) >= 1, `relayed two-stacks-${i}`);
    }
    const twice = [...relayed].filter(([, n]) => n > 1);
    ctx.diagnostic(`relayed again after the kill: ${twice.map(([s, n]) => `${s} ×${n}`).join(', ') || 'none'}`);
    assert.ok(twice.length <= CONCURRENCY && twice.every(([, n]) => n === 2), `relayed more than once: ${JSON.stringify(twice)}`);
  });
});
