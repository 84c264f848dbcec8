import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { freePort, hearth, MANIFESTS, parseEnvLines, REPO_ROOT, runCommand, startDaemon, testEnv, waitFor, type CommandResult, type Daemon, type TestEnv } from '@hearth/testkit';
import path from 'node:path';
import { restPassword } from '../src/auth.ts';
import { Attr, Class, Method, requestedTransportValue, uint32Value } from '../src/stun-codec.ts';
import { errorOf, login, restCredentials, signed, TestClient } from './client.ts';

/** The daemon as apps and browsers meet it: coturn's own client tools against a running instance. */

/** Sent and received message totals and the loss line of a turnutils_uclient run. */
function uclientTotals(out: string): { sent: number; received: number; lost: number } | null {
  const totals = /tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$/m.exec(out.replace(/\r/g, ''));
  const lost = /Total lost packets (\d+)/.exec(out);
  if (!totals || !lost) return null;
  return { sent: Number(totals[1]), received: Number(totals[2]), lost: Number(lost[1]) };
}

interface Stack {
  env: TestEnv;
  daemon: Daemon;
  port: number;
  tlsPort: number;
}

/** The daemon as deployed on two cores: a primary and two relay processes (src/cluster.ts). */
const WORKERS = 2;

async function startStack(allowLoopback: boolean): Promise<Stack & { secret: string }> {
  const port = await freePort();
  const tlsPort = await freePort();
  const env = await testEnv({
    env: { HEARTH_LOG_LEVEL: 'info', HEARTH_TURN_PORT: String(port), HEARTH_TURN_TLS_PORT: String(tlsPort), HEARTH_TURN_ALLOW_LOOPBACK_PEERS: allowLoopback ? '1' : '', HEARTH_TURN_WORKERS: String(WORKERS) },
  });
  const install = await hearth(['app', 'install', path.join(MANIFESTS, 'meet.json'), '--id', 'meet', '--domain', 'meet.example.test'], { env: env.env });
  assert.equal(install.code, 0, install.stderr);
  const vars = await hearth(['app', 'env', 'meet'], { env: env.env });
  const secret = parseEnvLines(vars.stdout).CLOUDRON_TURN_SECRET;
  assert.ok(secret, vars.stdout + vars.stderr);
  // ready once the primary is, after every worker ("ready" from each)
  const daemon = await startDaemon('services/turn/src/main.ts', env.env, (o) => o.split('"msg":"ready"').length - 1 >= WORKERS + 1);
  return { env, daemon, port, tlsPort, secret };
}

let stack: Stack & { secret: string };
let peer: ChildProcess;
let peerPort: number;

before(async () => {
  stack = await startStack(true);
  peerPort = await freePort();
  peer = spawn('turnutils_peer', ['-L', '127.0.0.1', '-p', String(peerPort)], { stdio: 'ignore' });
  await new Promise<void>((resolve, reject) => {
    peer.once('spawn', () => resolve());
    peer.once('error', reject);
  });
});

after(async () => {
  peer?.kill();
  await stack?.daemon.stop();
  await stack?.env.cleanup();
});

function uclient(extra: string[], port = stack.port, length = 180): Promise<CommandResult> {
  return runCommand('turnutils_uclient', [...extra, '-p', String(port), '-e', '127.0.0.1', '-r', String(peerPort), '-n', '20', '-m', '2', '-l', String(length), '127.0.0.1']);
}

describe('coturn client tools', { timeout: 120_000 }, () => {
  it('turnutils_stunclient learns its reflexive address', async () => {
    const r = await runCommand('turnutils_stunclient', ['-p', String(stack.port), '127.0.0.1']);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /UDP reflexive addr: 127\.0\.0\.1:\d+/);
  });

  // TCP with 181-byte messages: ChannelData frames padded to 4 bytes on the stream.
  for (const [name, flags, tls, length] of [
    ['UDP', [], false, 180],
    ['TCP', ['-t'], false, 181],
    ['TLS', ['-t', '-S'], true, 180],
  ] as const) {
    it(`turnutils_uclient -W relays ${length}-byte messages through us to turnutils_peer over ${name} with no loss`, async (t) => {
      // Our server never drops on these paths (stream writes drop only past a 1 MB backlog), but
      // the hop to turnutils_peer is UDP and uclient counts a message lost when its echo is late by
      // its own fixed clock; on a loaded machine either can miss one message. So a run with loss is
      // rerun as a whole, at most 3 times, and the run that counts must still lose nothing.
      let totals: ReturnType<typeof uclientTotals> = null;
      for (let attempt = 1; attempt <= 3; attempt++) {
        const r = await uclient(['-W', stack.secret, '-u', 'alice', ...flags], tls ? stack.tlsPort : stack.port, length);
        assert.equal(r.code, 0, r.out);
        totals = uclientTotals(r.out);
        assert.ok(totals, r.out);
        if (totals.lost === 0 && totals.received === totals.sent) break;
        t.diagnostic(`attempt ${attempt}: received ${totals.received}/${totals.sent}, lost ${totals.lost}`);
      }
      // -m 2 clients × -n 20 messages, each echoed back by the peer.
      assert.deepEqual(totals, { sent: 40, received: 40, lost: 0 });
    });
  }

  it('a wrong secret cannot allocate', async () => {
    const r = await uclient(['-W', 'not-the-secret', '-u', 'alice']);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /Cannot complete Allocation/);
    assert.equal(uclientTotals(r.out), null);
  });

  it('an expired REST API username cannot allocate', async () => {
    const username = `${Math.floor(Date.now() / 1000) - 10}:alice`;
    const r = await uclient(['-u', username, '-w', restPassword(stack.secret, username)]);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /Cannot complete Allocation/);
    // The same password scheme with a future expiry works, so it was the expiry that failed.
    const fresh = `${Math.floor(Date.now() / 1000) + 600}:alice`;
    const ok = await uclient(['-u', fresh, '-w', restPassword(stack.secret, fresh)]);
    assert.equal(ok.code, 0, ok.out);
  });
});

describe('credential changes from another process', { timeout: 60_000 }, () => {
  /** An allocation attempt with REST credentials made from `secret`: 0 on success, else the error code. */
  async function tryAllocate(secret: string): Promise<number | null> {
    const c = await TestClient.open('udp', stack.port);
    try {
      const { username, password } = restCredentials(secret, 'rotation');
      const s = await login(c, username, password);
      const r = await signed(c, s, Method.Allocate, [[Attr.RequestedTransport, requestedTransportValue(17)]]);
      if (r?.cls === Class.Success) await signed(c, s, Method.Refresh, [[Attr.Lifetime, uint32Value(0)]]);
      return r?.cls === Class.Success ? 0 : errorOf(r);
    } finally {
      c.close();
    }
  }

  it('follows `hearth app rotate`: the old secret stops working, the new one works, allocations are in `hearth audit`', async () => {
    assert.equal(await tryAllocate(stack.secret), 0);
    const rotated = await hearth(['app', 'rotate', 'meet'], { env: stack.env.env });
    assert.equal(rotated.code, 0, rotated.stderr);
    const secret = parseEnvLines((await hearth(['app', 'env', 'meet'], { env: stack.env.env })).stdout).CLOUDRON_TURN_SECRET!;
    assert.notEqual(secret, stack.secret);
    await waitFor(async () => (await tryAllocate(secret)) === 0, 10_000, 100);
    assert.equal(await tryAllocate(stack.secret), 401);
    const audit = await hearth(['audit', '--protocol', 'turn', '--limit', '100', '--json'], { env: stack.env.env });
    assert.equal(audit.code, 0, audit.stderr);
    const events = JSON.parse(audit.stdout) as { username: string; appId: string; detail: string | null }[];
    const mine = events.filter((e) => e.username === 'rotation' && e.appId === 'meet');
    assert.ok(mine.some((e) => /^allocate udp relay=127\.0\.0\.1:\d+/.test(e.detail ?? '')), audit.stdout);
    assert.ok(mine.some((e) => /^deallocate \(released\)/.test(e.detail ?? '')), audit.stdout);
    stack.secret = secret;
  });
});

describe('daemon settings', { timeout: 60_000 }, () => {
  it('a bad TURN setting is one line on stderr and exit 1', async () => {
    const r = await runCommand(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'services/turn/src/main.ts')], { env: { ...stack.env.env, HEARTH_TURN_ALLOWED_PEERS: 'not-a-cidr' } });
    assert.equal(r.code, 1);
    assert.equal(r.out.trim().split('\n').length, 1, r.out);
    assert.match(r.out, /HEARTH_TURN_ALLOWED_PEERS/);
  });
});

describe('without HEARTH_TURN_ALLOW_LOOPBACK_PEERS', { timeout: 120_000 }, () => {
  let strict: Stack & { secret: string };
  before(async () => {
    strict = await startStack(false);
  });
  after(async () => {
    await strict?.daemon.stop();
    await strict?.env.cleanup();
  });

  it('a loopback peer is refused with 403', async () => {
    const r = await uclient(['-W', strict.secret, '-u', 'alice'], strict.port);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /error 403 \(Forbidden\)/);
    assert.equal(uclientTotals(r.out), null);
  });
});
