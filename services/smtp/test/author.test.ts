import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runCommand, waitFor, type CommandResult } from '@hearth/testkit';
import { headerValues } from '@hearth/message';
import { BOB, startSink, startStack, swaks, USER, WIKI, type Sink, type Stack } from './helpers.ts';

/**
 * Issue 12: the author check must read the message as it is stored, relayed and DKIM-signed.
 * Every message here is raw DATA, as an attacker would send it: swaks, or Python's smtplib where
 * swaks itself would drop a first line starting "From ".
 */

let stack: Stack;
let sink: Sink;

before(async () => {
  sink = await startSink();
  // 127.0.0.1 is a trusted network here only for the last test; submission with AUTH is what the rest use.
  stack = await startStack({ HEARTH_SMTP_RELAY: `smtp://relayuser:relaypass@127.0.0.1:${sink.port}`, HEARTH_SMTP_TRUSTED_NETWORKS: '127.0.0.1' });
});
after(async () => {
  await stack?.close();
  await sink?.close();
});

async function submit(data: string, auth: { username: string; password: string; from: string } = { ...USER, from: USER.email }): Promise<CommandResult> {
  return swaks(['--port', String(stack.smtp.ports.smtp), '--auth', 'PLAIN', '--auth-user', auth.username, '--auth-password', auth.password, '--from', auth.from, '--to', 'someone@remote.test', '--data', data]);
}

/** DATA byte for byte (smtplib only dot-stuffs), after AUTH as alice. */
async function submitRaw(data: string): Promise<CommandResult> {
  const script = `
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', ${stack.smtp.ports.smtp}, timeout=10)
s.login('${USER.username}', '${USER.password}')
try:
    s.sendmail('${USER.email}', ['someone@remote.test'], sys.stdin.buffer.read()); print('OK')
except smtplib.SMTPException as e:
    print('ERR', e)
s.quit()
`;
  return runCommand('python3', ['-c', script], { input: data, timeoutMs: 20_000 });
}

async function relayed(subject: string): Promise<Buffer> {
  const m = await waitFor(() => sink.messages.find((x) => x.raw.includes(`Subject: ${subject}`)), 10000);
  return Buffer.from(m!.raw, 'latin1');
}

describe('the From check reads the message as stored and signed', () => {
  it('"From : <someone else>" as the first line is a From header, not an mbox separator', async () => {
    const r = await submitRaw(`From : Bob <${BOB.email}>\r\nFrom: Alice <${USER.email}>\r\nTo: someone@remote.test\r\nSubject: mbox-trick\r\n\r\nhi\r\n`);
    assert.match(r.out, /ERR .*550.*message has more than one From header/);
    const alone = await submitRaw(`From : Bob <${BOB.email}>\r\nTo: someone@remote.test\r\nSubject: mbox-alone\r\n\r\nhi\r\n`);
    assert.match(alone.out, /ERR .*550.*From <bob@example\.test> not owned by user alice/);
    // the check can fail: the same path accepts an honest message
    assert.match((await submitRaw(`From: Alice <${USER.email}>\r\nSubject: mbox-honest\r\n\r\nhi\r\n`)).out, /^OK/m);
  });

  it('refuses two From headers even when both are the sender\'s own', async () => {
    const r = await submit(`From: <${USER.email}>\r\nFrom: <alice.alias@example.test>\r\nSubject: two-from\r\n\r\nhi\r\n`);
    assert.match(r.out, /550 5\.7\.1 message has more than one From header/);
  });

  it('refuses a Sender, Resent-From or Resent-Sender the user does not own; accepts their own', async () => {
    for (const field of ['Sender', 'Resent-From', 'Resent-Sender']) {
      const r = await submit(`From: <${USER.email}>\r\n${field}: Bob <${BOB.email}>\r\nSubject: spoof-${field}\r\n\r\nhi\r\n`);
      assert.match(r.out, new RegExp(`550 5\\.7\\.1 ${field} <bob@example\\.test> not owned by user alice`), field);
    }
    const two = await submit(`From: <${USER.email}>\r\nSender: <${USER.email}>\r\nSender: <alice.alias@example.test>\r\nSubject: two-sender\r\n\r\nhi\r\n`);
    assert.match(two.out, /550 5\.7\.1 Sender must be one header with one address/);
    const ok = await submit(`From: <${USER.email}>\r\nSender: <alice.alias@example.test>\r\nResent-From: <${USER.email}>\r\nSubject: own-sender\r\n\r\nhi\r\n`);
    assert.equal(ok.code, 0, ok.out);
    const raw = await relayed('own-sender');
    assert.match(headerValues(raw, 'dkim-signature')[0]!, /d=example\.test/);
  });

  it('an app may not add a Sender other than its own address', async () => {
    const r = await submit(`From: <${WIKI.from}>\r\nSender: <${USER.email}>\r\nSubject: app-sender\r\n\r\nhi\r\n`, WIKI);
    assert.match(r.out, /550 5\.7\.1 Sender <alice@example\.test> not allowed for app wiki/);
  });

  it('DKIM signs for the one From\'s domain only, never the envelope sender\'s (trusted-network relays are not checked)', async () => {
    const relay = (subject: string, head: string) =>
      swaks(['--port', String(stack.smtp.ports.smtp), '--from', USER.email, '--to', 'someone@remote.test', '--data', `${head}Subject: ${subject}\r\n\r\nhi\r\n`]);
    for (const [subject, head] of [
      ['no-from', ''],
      ['foreign-from', 'From: <ceo@bank.test>\r\n'],
      ['two-from', `From: <${USER.email}>\r\nFrom: <ceo@bank.test>\r\n`],
    ] as const) {
      const r = await relay(subject, head);
      assert.equal(r.code, 0, r.out);
      assert.deepEqual(headerValues(await relayed(subject), 'dkim-signature'), [], subject);
    }
    assert.equal((await relay('own-from', `From: <${USER.email}>\r\n`)).code, 0);
    assert.match(headerValues(await relayed('own-from'), 'dkim-signature')[0]!, /d=example\.test/);
  });
});
