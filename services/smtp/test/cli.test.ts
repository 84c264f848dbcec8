import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { freePort, hearth, MANIFESTS, parseEnvLines, startDaemon, testEnv, waitFor, type Daemon, type TestEnv } from '@hearth/testkit';
import { maildirMessages, startSink, swaks, type Sink } from './helpers.ts';

let env: TestEnv;
let daemon: Daemon;
let sink: Sink;
let wiki: Record<string, string>;
let helpdesk: Record<string, string>;

async function cli(args: string[], input?: string): Promise<string> {
  const r = await hearth(args, { env: env.env, input });
  assert.equal(r.code, 0, `hearth ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  sink = await startSink();
  env = await testEnv({
    env: {
      HEARTH_SMTP_PORT: String(await freePort()),
      HEARTH_SMTPS_PORT: String(await freePort()),
      HEARTH_SMTP_INBOUND_PORT: String(await freePort()),
      HEARTH_SMTP_RELAY: `smtp://127.0.0.1:${sink.port}`,
      HEARTH_LOG_LEVEL: 'info',
    },
  });
  await cli(['app', 'install', path.join(MANIFESTS, 'wiki.json'), '--id', 'wiki', '--domain', 'wiki.example.test']);
  await cli(['app', 'install', path.join(MANIFESTS, 'helpdesk.json'), '--id', 'helpdesk', '--domain', 'helpdesk.example.test']);
  await cli(['user', 'add', 'carol', '--email', 'carol@example.test', '--password-stdin'], 'carol-password-1\n');
  await cli(['mailbox', 'add', 'carol@example.test', '--owner', 'carol']);
  wiki = parseEnvLines(await cli(['app', 'env', 'wiki']));
  helpdesk = parseEnvLines(await cli(['app', 'env', 'helpdesk']));
  daemon = await startDaemon('services/smtp/src/main.ts', env.env, (o) => o.includes('"msg":"ready"'));
});
after(async () => {
  await daemon?.stop();
  await sink.close();
  await env.cleanup();
});

describe('as provisioned by the hearth CLI', () => {
  it('an app sends with exactly what `hearth app env` gives it', async () => {
    assert.equal(wiki.CLOUDRON_MAIL_SMTP_PORT, env.env.HEARTH_SMTP_PORT);
    const r = await swaks([
      '--port', wiki.CLOUDRON_MAIL_SMTP_PORT!,
      '--auth', 'PLAIN', '--auth-user', wiki.CLOUDRON_MAIL_SMTP_USERNAME!, '--auth-password', wiki.CLOUDRON_MAIL_SMTP_PASSWORD!,
      '--from', wiki.CLOUDRON_MAIL_FROM!, '--to', 'reader@remote.test',
      '--h-From', `"${wiki.CLOUDRON_MAIL_FROM_DISPLAY_NAME} Notifications" <${wiki.CLOUDRON_MAIL_FROM}>`, '--h-Subject', 'cli-wiki',
    ]);
    assert.equal(r.code, 0, r.out);
    await waitFor(() => sink.messages.some((m) => m.raw.includes('Subject: cli-wiki') && /DKIM-Signature: .*d=example\.test/s.test(m.raw)), 10000);
    const tls = await swaks(['--port', wiki.CLOUDRON_MAIL_SMTPS_PORT!, '--tlsc', '--auth', 'LOGIN', '--auth-user', wiki.CLOUDRON_MAIL_SMTP_USERNAME!, '--auth-password', wiki.CLOUDRON_MAIL_SMTP_PASSWORD!, '--from', wiki.CLOUDRON_MAIL_FROM!, '--to', 'reader@remote.test']);
    assert.equal(tls.code, 0, tls.out);
  });

  it("an app's sendmail password does not let it send as another app", async () => {
    const r = await swaks(['--port', wiki.CLOUDRON_MAIL_SMTP_PORT!, '--auth', 'PLAIN', '--auth-user', wiki.CLOUDRON_MAIL_SMTP_USERNAME!, '--auth-password', wiki.CLOUDRON_MAIL_SMTP_PASSWORD!, '--from', helpdesk.CLOUDRON_MAIL_FROM!, '--to', 'reader@remote.test']);
    assert.match(r.out, /553 5\.7\.1/);
    const wrong = await swaks(['--port', wiki.CLOUDRON_MAIL_SMTP_PORT!, '--auth', 'PLAIN', '--auth-user', helpdesk.CLOUDRON_MAIL_SMTP_USERNAME!, '--auth-password', wiki.CLOUDRON_MAIL_SMTP_PASSWORD!, '--from', helpdesk.CLOUDRON_MAIL_FROM!, '--to', 'reader@remote.test']);
    assert.match(wrong.out, /535 5\.7\.8/);
  });

  it("inbound mail reaches the app's recvmail address (CLOUDRON_MAIL_TO) and a user's mailbox", async () => {
    const to = helpdesk.CLOUDRON_MAIL_TO!;
    assert.ok(to);
    const r = await swaks(['--port', env.env.HEARTH_SMTP_INBOUND_PORT!, '--from', 'customer@remote.test', '--to', to, '--h-Subject', 'cli-ticket']);
    assert.equal(r.code, 0, r.out);
    const u = await swaks(['--port', env.env.HEARTH_SMTP_INBOUND_PORT!, '--from', 'friend@remote.test', '--to', 'carol@example.test', '--h-Subject', 'cli-carol']);
    assert.equal(u.code, 0, u.out);
    await waitFor(() => maildirMessages(env.dataDir, to).some((m) => m.includes('Subject: cli-ticket')), 10000);
    await waitFor(() => maildirMessages(env.dataDir, 'carol@example.test').some((m) => m.includes('Subject: cli-carol')), 10000);
  });

  it('`hearth mail queue` and `hearth mail dkim` read what the daemon wrote', async () => {
    const q = JSON.parse(await cli(['mail', 'queue', '--json'])) as unknown[];
    assert.ok(Array.isArray(q));
    const dkim = await cli(['mail', 'dkim', 'example.test']);
    assert.match(dkim, /^hearth\._domainkey\.example\.test\. IN TXT "v=DKIM1; k=rsa; p=/);
    const signed = sink.messages.find((m) => m.raw.includes('Subject: cli-wiki'))!;
    assert.match(signed.raw, /s=hearth/);
  });
});
