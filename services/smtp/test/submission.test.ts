import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { runCommand, tempDir, waitFor } from '@hearth/testkit';
import { dkimDnsRecord } from '../src/dkim.ts';
import { headerValues } from '@hearth/message';
import { BOB, CHAT, maildirMessages, startSink, startStack, swaks, USER, WIKI, type Sink, type Stack } from './helpers.ts';

let stack: Stack;
let sink: Sink;

before(async () => {
  sink = await startSink();
  stack = await startStack({ HEARTH_SMTP_RELAY: `smtp://relayuser:relaypass@127.0.0.1:${sink.port}` });
});
after(async () => {
  await stack.close();
  await sink.close();
});

const port = (): string => String(stack.smtp.ports.smtp);

/** The sink's copy of the message whose Subject is `subject`. */
async function relayed(subject: string): Promise<Sink['messages'][number]> {
  return (await waitFor(() => sink.messages.find((m) => m.raw.includes(`Subject: ${subject}`)), 10000))!;
}

describe('submission on 2525 (apps and users)', () => {
  it('offers AUTH PLAIN LOGIN and no STARTTLS', async () => {
    const r = await swaks(['--port', port(), '--quit-after', 'EHLO']);
    assert.match(r.out, /250-AUTH PLAIN LOGIN|250 AUTH PLAIN LOGIN/);
    assert.doesNotMatch(r.out, /STARTTLS/);
    const tls = await swaks(['--port', port(), '--tls', '--quit-after', 'EHLO']);
    assert.notEqual(tls.code, 0);
  });

  it('an app sends with AUTH PLAIN as its own address; relayed to the smarthost, DKIM-signed, Message-ID and Date added', async () => {
    const r = await swaks(['--port', port(), '--auth', 'PLAIN', '--auth-user', WIKI.username, '--auth-password', WIKI.password, '--from', WIKI.from, '--to', 'someone@remote.test', '--h-From', `"Wiki Bot" <${WIKI.from}>`, '--h-Subject', 'plain-1', '--add-header', 'X-Test: 1', '--body', 'hello from wiki']);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /250 2\.0\.0 Ok: queued as/);
    const m = await relayed('plain-1');
    assert.equal(m.from, WIKI.from);
    assert.deepEqual(m.to, ['someone@remote.test']);
    const raw = Buffer.from(m.raw, 'latin1');
    assert.equal(headerValues(raw, 'message-id').length, 1);
    assert.equal(headerValues(raw, 'date').length, 1);
    assert.match(headerValues(raw, 'received')[0]!, /by 127\.0\.0\.1 \(Hearth\) with ESMTPA id /);
    const sig = headerValues(raw, 'dkim-signature')[0];
    assert.ok(sig, 'DKIM-Signature present');
    assert.match(sig, /d=example\.test/);
    assert.match(sig, /s=hearth/);
    verifyDkim(raw, dkimDnsRecord(stack.env.config, 'example.test').value);
  });

  it('a user\'s message as relayed verifies with python3-dkim against the TXT record Hearth publishes; one flipped body byte fails', async () => {
    const body = 'Independent check.\n\nTrailing   spaces   and tabs\t\t\nend';
    const r = await swaks(['--port', port(), '--auth', 'LOGIN', '--auth-user', USER.username, '--auth-password', USER.password, '--from', USER.email, '--to', 'someone@remote.test', '--h-Subject', 'dkimpy-1', '--body', body]);
    assert.equal(r.code, 0, r.out);
    const raw = Buffer.from((await relayed('dkimpy-1')).raw, 'latin1');
    const record = dkimDnsRecord(stack.env.config, 'example.test');
    const file = join(tempDir('hearth-dkimpy-'), 'relayed.eml');
    writeFileSync(file, raw);
    // Debian's dkimpy, not our own code, is the judge; its DNS is the record `hearth mail dkim` publishes.
    const script = `
import sys, dkim
record = ${JSON.stringify(record.value)}.encode()
def dnsfunc(name, timeout=5):
    return record if name == ${JSON.stringify(`${record.name}.`)}.encode() else None
msg = open(sys.argv[1], 'rb').read()
print('intact', dkim.verify(msg, dnsfunc=dnsfunc))
cut = msg.index(b'\\r\\n\\r\\n') + 4
flipped = msg[:cut] + msg[cut:].replace(b'Independent', b'independent', 1)
assert flipped != msg
print('flipped', dkim.verify(flipped, dnsfunc=dnsfunc))
`;
    const v = await runCommand('/usr/bin/python3', ['-c', script, file], { timeoutMs: 20_000 });
    assert.equal(v.code, 0, v.out);
    assert.match(v.stdout, /^intact True$/m, v.out);
    assert.match(v.stdout, /^flipped False$/m, v.out);
  });

  it('swaks sends without Message-ID when asked; the server still adds one', async () => {
    const r = await swaks(['--port', port(), '--auth', 'LOGIN', '--auth-user', WIKI.username, '--auth-password', WIKI.password, '--from', WIKI.from, '--to', 'x@remote.test', '--data', `From: <${WIKI.from}>\r\nTo: x@remote.test\r\nSubject: login-1\r\n\r\nno id\r\n`]);
    assert.equal(r.code, 0, r.out);
    const m = await relayed('login-1');
    const raw = Buffer.from(m.raw, 'latin1');
    assert.match(headerValues(raw, 'message-id')[0]!, /^<[^@]+@example\.test>$/);
    assert.equal(headerValues(raw, 'date').length, 1);
  });

  it('wrong password: 535, and the failure is audited', async () => {
    const r = await swaks(['--port', port(), '--auth', 'PLAIN', '--auth-user', WIKI.username, '--auth-password', 'wrong', '--from', WIKI.from, '--to', 'x@remote.test']);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /535 5\.7\.8/);
    const u = await swaks(['--port', port(), '--auth', 'LOGIN', '--auth-user', USER.username, '--auth-password', 'nope', '--from', USER.email, '--to', 'x@remote.test']);
    assert.match(u.out, /535 5\.7\.8/);
    const audit = await stack.directory.store.listAudit({ protocol: 'smtp', limit: 200 });
    assert.ok(audit.some((e) => e.username === WIKI.username && !e.ok), 'failed app AUTH audited');
    assert.ok(audit.some((e) => e.username === USER.username && !e.ok), 'failed user AUTH audited');
    assert.ok(audit.some((e) => e.username === WIKI.username && e.ok), 'successful app AUTH audited');
  });

  it('failed logins are throttled across attempts (shared directory throttle): 454 even with the right password', async () => {
    const script = `
import smtplib
for i in range(12):
    s = smtplib.SMTP('127.0.0.1', ${port()}, timeout=10)
    try:
        s.login('${BOB.username}', 'wrong-%d' % i); print('OK')
    except smtplib.SMTPAuthenticationError as e:
        print('ERR', e.smtp_code)
    except smtplib.SMTPResponseException as e:
        print('ERR', e.smtp_code)
    s.close()
s = smtplib.SMTP('127.0.0.1', ${port()}, timeout=10)
try:
    s.login('${BOB.username}', '${BOB.password}'); print('RIGHT OK')
except smtplib.SMTPResponseException as e:
    print('RIGHT ERR', e.smtp_code)
`;
    const r = await runCommand('python3', ['-c', script], { input: '', timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^ERR 535$/m);
    assert.match(r.out, /^ERR 454$/m);
    assert.match(r.out, /^RIGHT ERR 454$/m);
  });

  it('an app may not use another envelope sender', async () => {
    const r = await swaks(['--port', port(), '--auth', 'PLAIN', '--auth-user', WIKI.username, '--auth-password', WIKI.password, '--from', USER.email, '--to', 'x@remote.test']);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /553 5\.7\.1 sender <alice@example\.test> not owned by app wiki/);
  });

  it('an app may not forge the header From', async () => {
    const r = await swaks(['--port', port(), '--auth', 'PLAIN', '--auth-user', WIKI.username, '--auth-password', WIKI.password, '--from', WIKI.from, '--to', 'x@remote.test', '--h-From', `<${USER.email}>`, '--h-Subject', 'forged']);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /550 5\.7\.1 From <alice@example\.test> not allowed for app wiki/);
  });

  it('display name: free with supportsDisplayName, refused without it', async () => {
    const bad = await swaks(['--port', port(), '--auth', 'PLAIN', '--auth-user', CHAT.username, '--auth-password', CHAT.password, '--from', CHAT.from, '--to', 'x@remote.test', '--h-From', `"Someone Else" <${CHAT.from}>`]);
    assert.match(bad.out, /550 5\.7\.1 app chat may not set a From display name/);
    const ok = await swaks(['--port', port(), '--auth', 'PLAIN', '--auth-user', CHAT.username, '--auth-password', CHAT.password, '--from', CHAT.from, '--to', 'x@remote.test', '--h-From', `<${CHAT.from}>`, '--h-Subject', 'chat-plain']);
    assert.equal(ok.code, 0, ok.out);
  });

  it('a user sends as their own addresses (python smtplib, AUTH LOGIN), not as others', async () => {
    const script = `
import smtplib, sys
from email.message import EmailMessage
def send(frm, subject):
    m = EmailMessage(); m['From'] = frm; m['To'] = 'friend@remote.test'; m['Subject'] = subject; m.set_content('hi')
    s = smtplib.SMTP('127.0.0.1', ${port()}, timeout=10)
    s.login('${USER.username}', '${USER.password}')
    try:
        s.send_message(m); print('OK', subject)
    except smtplib.SMTPException as e:
        print('ERR', subject, e)
    s.quit()
send('${USER.email}', 'py-own')
send('alice.alias@example.test', 'py-alias')
send('${BOB.email}', 'py-bob')
`;
    const r = await runCommand('python3', ['-c', script], { input: '', timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /OK py-own/);
    assert.match(r.out, /OK py-alias/);
    assert.match(r.out, /ERR py-bob .*553/);
    await relayed('py-own');
    await relayed('py-alias');
  });

  it('local delivery: a user sends to a local mailbox, the file lands in the Maildir', async () => {
    const r = await swaks(['--port', port(), '--auth', 'PLAIN', '--auth-user', USER.username, '--auth-password', USER.password, '--from', USER.email, '--to', BOB.email, '--h-Subject', 'to-bob']);
    assert.equal(r.code, 0, r.out);
    const msgs = (await waitFor(() => {
      const m = maildirMessages(stack.env.dataDir, BOB.email).filter((x) => x.includes('Subject: to-bob'));
      return m.length ? m : null;
    }, 10000))!;
    assert.equal(msgs.length, 1);
    assert.match(msgs[0]!, /^Return-Path: <alice@example\.test>\r\nDelivered-To: bob@example\.test\r\nReceived: /);
  });

  it('no relay without AUTH on 2525', async () => {
    const r = await swaks(['--port', port(), '--from', 'x@remote.test', '--to', 'y@remote.test']);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /530 5\.7\.0 authentication required/);
  });
});

describe('SMTPS on 2465', () => {
  it('implicit TLS, AUTH, relay', async () => {
    const r = await swaks(['--port', String(stack.smtp.ports.smtps), '--tlsc', '--auth', 'PLAIN', '--auth-user', WIKI.username, '--auth-password', WIKI.password, '--from', WIKI.from, '--to', 'tls@remote.test', '--h-Subject', 'smtps-1']);
    assert.equal(r.code, 0, r.out);
    const m = await relayed('smtps-1');
    assert.match(headerValues(Buffer.from(m.raw, 'latin1'), 'received')[0]!, /with ESMTPSA id/);
  });

  it('no relay without AUTH on 2465', async () => {
    const r = await swaks(['--port', String(stack.smtp.ports.smtps), '--tlsc', '--from', 'x@remote.test', '--to', 'y@remote.test']);
    assert.match(r.out, /530 5\.7\.0/);
  });
});

describe('inbound MX on 2025', () => {
  const mx = (): string => String(stack.smtp.ports.smtpInbound);

  it('accepts mail for a local mailbox and an app recvmail address', async () => {
    const r = await swaks(['--port', mx(), '--from', 'stranger@remote.test', '--to', USER.email, '--h-Subject', 'inbound-1']);
    assert.equal(r.code, 0, r.out);
    const a = await swaks(['--port', mx(), '--from', '', '--to', 'chat.app@example.test', '--h-Subject', 'inbound-app']);
    assert.equal(a.code, 0, a.out);
    await waitFor(() => maildirMessages(stack.env.dataDir, USER.email).some((m) => m.includes('Subject: inbound-1')), 10000);
    await waitFor(() => maildirMessages(stack.env.dataDir, 'chat.app@example.test').some((m) => m.includes('Subject: inbound-app')), 10000);
  });

  it('offers STARTTLS to other MTAs', async () => {
    const r = await swaks(['--port', mx(), '--tls', '--from', 'tls@remote.test', '--to', USER.email, '--h-Subject', 'inbound-starttls']);
    assert.equal(r.code, 0, r.out);
    await waitFor(() => maildirMessages(stack.env.dataDir, USER.email).some((m) => m.includes('Subject: inbound-starttls') && / with ESMTPS id /.test(m)), 10000);
  });

  it('refuses unknown local users and relaying with 550 at RCPT, and offers no AUTH', async () => {
    const unknown = await swaks(['--port', mx(), '--from', 'x@remote.test', '--to', 'nobody@example.test']);
    assert.match(unknown.out, /RCPT TO:<nobody@example\.test>\s*\n<\*\* +550 5\.1\.1/);
    const relay = await swaks(['--port', mx(), '--from', 'x@remote.test', '--to', 'y@elsewhere.test']);
    assert.match(relay.out, /<\*\* +550 5\.7\.1 relaying denied/);
    const auth = await swaks(['--port', mx(), '--auth', 'PLAIN', '--auth-user', WIKI.username, '--auth-password', WIKI.password, '--from', WIKI.from, '--to', 'y@elsewhere.test']);
    assert.notEqual(auth.code, 0);
    assert.equal(sink.messages.filter((m) => m.to.includes('y@elsewhere.test')).length, 0);
  });
});

/** Checks the body hash and the RSA signature of a relaxed/relaxed DKIM-Signature (RFC 6376). */
function verifyDkim(raw: Buffer, dnsValue: string): void {
  const text = raw.toString('latin1');
  const split = text.indexOf('\r\n\r\n');
  const head = text.slice(0, split + 2);
  let body = text.slice(split + 4);
  const tags = new Map<string, string>();
  const sigHeader = headerValues(raw, 'dkim-signature')[0]!;
  for (const part of sigHeader.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) tags.set(part.slice(0, i).trim(), part.slice(i + 1).replace(/\s+/g, ''));
  }
  assert.equal(tags.get('c'), 'relaxed/relaxed');
  body = body.replace(/[ \t]+\r\n/g, '\r\n').replace(/[ \t]+/g, ' ').replace(/(\r\n)*$/, '\r\n');
  assert.equal(createHash('sha256').update(body, 'latin1').digest('base64'), tags.get('bh'), 'body hash');
  const fields: { name: string; value: string }[] = [];
  for (const line of head.split(/\r\n(?![ \t])/)) {
    const c = line.indexOf(':');
    if (c > 0) fields.push({ name: line.slice(0, c).trim().toLowerCase(), value: line.slice(c + 1) });
  }
  const canon = (f: { name: string; value: string }): string => `${f.name}:${f.value.replace(/\r\n/g, '').replace(/[ \t]+/g, ' ').trim()}`;
  const used = new Map<string, number>();
  const lines: string[] = [];
  for (const h of tags.get('h')!.toLowerCase().split(':')) {
    const all = fields.filter((f) => f.name === h);
    const n = (used.get(h) ?? 0) + 1;
    used.set(h, n);
    const f = all[all.length - n];
    if (f) lines.push(canon(f));
  }
  const sigField = fields.find((f) => f.name === 'dkim-signature')!;
  // the signature header itself, with its b= value emptied, ends the signed data
  lines.push(canon({ name: 'dkim-signature', value: sigField.value.replace(/(^|;)(\s*b=)[^;]*/, '$1$2') }));
  const p = /p=([A-Za-z0-9+/=]+)/.exec(dnsValue)![1]!;
  const key = createPublicKey({ key: Buffer.from(p, 'base64'), format: 'der', type: 'spki' });
  const ok = verify('sha256', Buffer.from(lines.join('\r\n'), 'latin1'), key, Buffer.from(tags.get('b')!, 'base64'));
  assert.ok(ok, 'DKIM signature verifies against the published key');
}
