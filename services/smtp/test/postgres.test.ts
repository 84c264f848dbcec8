import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '@hearth/testkit';
import { BOB, maildirMessages, startSink, startStack, swaks, USER, WIKI, type Sink, type Stack } from './helpers.ts';

let stack: Stack;
let sink: Sink;

before(async () => {
  sink = await startSink();
  stack = await startStack({ HEARTH_SMTP_RELAY: `smtp://127.0.0.1:${sink.port}` }, {}, 'postgres');
});
after(async () => {
  await stack.close();
  await sink.close();
});

describe('with the directory in PostgreSQL', () => {
  it('app AUTH and relay, user AUTH and local delivery, 535 and the audit trail', async () => {
    const port = String(stack.smtp.ports.smtp);
    const app = await swaks(['--port', port, '--auth', 'PLAIN', '--auth-user', WIKI.username, '--auth-password', WIKI.password, '--from', WIKI.from, '--to', 'pg@remote.test', '--h-Subject', 'pg-relay']);
    assert.equal(app.code, 0, app.out);
    const user = await swaks(['--port', port, '--auth', 'LOGIN', '--auth-user', USER.email, '--auth-password', USER.password, '--from', USER.email, '--to', BOB.email, '--h-Subject', 'pg-local']);
    assert.equal(user.code, 0, user.out);
    const bad = await swaks(['--port', port, '--auth', 'PLAIN', '--auth-user', USER.username, '--auth-password', 'wrong', '--from', USER.email, '--to', BOB.email]);
    assert.match(bad.out, /535 5\.7\.8/);
    await waitFor(() => sink.messages.some((m) => m.raw.includes('Subject: pg-relay')), 10000);
    await waitFor(() => maildirMessages(stack.env.dataDir, BOB.email).some((m) => m.includes('Subject: pg-local')), 10000);
    const audit = await stack.directory.store.listAudit({ protocol: 'smtp', limit: 50 });
    assert.ok(audit.some((e) => e.username === WIKI.username && e.ok));
    assert.ok(audit.some((e) => e.username === USER.username && e.ok));
    assert.ok(audit.some((e) => e.username === USER.username && !e.ok));
  });
});
