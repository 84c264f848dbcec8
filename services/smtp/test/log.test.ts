import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Directory } from '@hearth/directory';
import { freePort, startDaemon, testEnv, waitFor, type Daemon, type TestEnv } from '@hearth/testkit';
import { BOB, seed, startSink, swaks, USER, type Sink } from './helpers.ts';

/**
 * Issue 12: an operator reading the daemon's JSON log at info level sees every accepted message,
 * every delivery outcome, every refused login and every refused mail, with no secrets in it.
 */

let env: TestEnv;
let daemon: Daemon;
let sink: Sink;
let port: string;
const WRONG_PASSWORD = 'wrong-password-Zq81';

type Line = Record<string, unknown>;
const lines = (): Line[] =>
  daemon
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line);
const find = (msg: string, match: Line): Line | undefined => lines().find((l) => l.msg === msg && Object.entries(match).every(([k, v]) => l[k] === v));

before(async () => {
  sink = await startSink();
  // the smarthost refuses one recipient for good and another for now
  sink.rcptReply = (a) => (a === 'gone@remote.test' ? { code: 550, message: '5.1.1 no such user' } : a === 'busy@remote.test' ? { code: 451, message: '4.2.1 try later' } : null);
  port = String(await freePort());
  env = await testEnv({
    env: {
      HEARTH_SMTP_PORT: port,
      HEARTH_SMTPS_PORT: String(await freePort()),
      HEARTH_SMTP_INBOUND_PORT: String(await freePort()),
      HEARTH_SMTP_RELAY: `smtp://127.0.0.1:${sink.port}`,
      HEARTH_LOG_LEVEL: 'info',
    },
  });
  const directory = await Directory.open(env.config);
  await seed(directory);
  await directory.close();
  daemon = await startDaemon('services/smtp/src/main.ts', env.env, (o) => o.includes('"msg":"ready"'));
});
after(async () => {
  await daemon?.stop();
  await sink?.close();
  await env?.cleanup();
});

const send = (to: string[], subject: string) =>
  swaks(['--port', port, '--auth', 'PLAIN', '--auth-user', USER.username, '--auth-password', USER.password, '--from', USER.email, '--to', to.join(','), '--h-Subject', subject]);

describe('the SMTP daemon log at info level', () => {
  it('a refused login: protocol, login, address and reason, never the password', async () => {
    const r = await swaks(['--port', port, '--auth', 'PLAIN', '--auth-user', USER.username, '--auth-password', WRONG_PASSWORD, '--from', USER.email, '--to', 'x@remote.test']);
    assert.match(r.out, /535 5\.7\.8/);
    const line = await waitFor(() => find('login refused', { protocol: 'smtp', login: USER.username }), 10000);
    assert.equal(line!.remote, '127.0.0.1');
    assert.equal(line!.reason, 'invalid_credentials');
    assert.equal(line!.level, 30);
  });

  it('an accepted message: queue id, sender, recipient count, size; then one line per delivered recipient', async () => {
    const r = await send(['reader@remote.test', BOB.email], 'log-accepted');
    assert.equal(r.code, 0, r.out);
    const id = /queued as (\S+)/.exec(r.out)![1]!;
    const accepted = find('message accepted', { id });
    assert.ok(accepted, daemon.output());
    assert.equal(accepted.from, USER.email);
    assert.equal(accepted.rcpts, 2);
    assert.ok(typeof accepted.size === 'number' && accepted.size > 100, String(accepted.size));
    assert.equal(accepted.login, USER.username);
    await waitFor(() => find('delivered', { id, rcpt: BOB.email, outcome: 'delivered', via: 'mailbox' }), 10000);
    await waitFor(() => find('delivered', { id, rcpt: 'reader@remote.test', outcome: 'delivered', via: '127.0.0.1' }), 10000);
  });

  it('a permanent failure is logged as bounced, a temporary one as deferred, each with its reason', async () => {
    const r = await send(['gone@remote.test', 'busy@remote.test'], 'log-failures');
    assert.equal(r.code, 0, r.out);
    const id = /queued as (\S+)/.exec(r.out)![1]!;
    const bounced = await waitFor(() => find('delivery failed', { id, rcpt: 'gone@remote.test', outcome: 'bounced' }), 15000);
    assert.match(String(bounced!.reason), /550.*no such user/);
    const deferred = await waitFor(() => find('delivery deferred', { id, rcpt: 'busy@remote.test', outcome: 'deferred' }), 15000);
    assert.match(String(deferred!.reason), /451.*try later/);
  });

  it('refused mail: who and the reply', async () => {
    const r = await swaks(['--port', port, '--from', 'someone@remote.test', '--to', 'x@remote.test']);
    assert.match(r.out, /530 5\.7\.0/);
    const line = await waitFor(() => find('mail refused', { from: 'someone@remote.test', remote: '127.0.0.1', reply: '530 5.7.0 authentication required' }), 10000);
    assert.equal(line!.login, null);
    const relay = await swaks(['--port', String(env.config.ports.smtpInbound), '--from', 'a@remote.test', '--to', 'b@elsewhere.test']);
    assert.match(relay.out, /550 5\.7\.1 relaying denied/);
    await waitFor(() => find('mail refused', { from: 'a@remote.test', rcpt: 'b@elsewhere.test', reply: '550 5.7.1 relaying denied' }), 10000);
  });

  it('mail refused by sender authentication: the reply, why, and what SPF/DKIM/DMARC said', async () => {
    env.dns.txt.set('_dmarc.strict.test', ['v=DMARC1; p=reject']);
    const r = await swaks(['--port', String(env.config.ports.smtpInbound), '--from', 'ceo@strict.test', '--to', USER.email, '--h-From', '<ceo@strict.test>', '--h-Subject', 'spoofed']);
    assert.match(r.out, /550 5\.7\.1 message rejected by the DMARC policy of strict\.test/);
    const line = await waitFor(() => find('mail refused', { from: 'ceo@strict.test', why: 'DMARC fail, p=reject (strict.test)' }), 10000);
    assert.deepEqual(line!.auth, { spf: 'none (strict.test)', dkim: ['none'], dmarc: 'fail p=reject (strict.test)', arc: 'none', fromDomains: ['strict.test'] });
  });

  it('no secret appears anywhere in the log', () => {
    const out = daemon.output();
    for (const secret of [WRONG_PASSWORD, USER.password, Buffer.from(`\0${USER.username}\0${USER.password}`).toString('base64')]) assert.ok(!out.includes(secret), secret);
  });
});
