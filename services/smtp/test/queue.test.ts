import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '@hearth/config';
import { MailStore } from '@hearth/mailstore';
import { loadTls } from '@hearth/tls';
import { freePort, tempDir, waitFor } from '@hearth/testkit';
import { deleteQueued, listQueue, QueueAdminError, retryQueued } from '../src/queue-admin.ts';
import { prependHeaders, receivedHeader } from '../src/message.ts';
import { Spool } from '../src/spool.ts';
import { BOB, maildirMessages, startSink, startStack, swaks, USER } from './helpers.ts';

const FAST = { HEARTH_SMTP_RETRY_DELAYS: '0.2,0.4' };

function sendAsAlice(port: number, to: string[], subject: string): ReturnType<typeof swaks> {
  return swaks(['--port', String(port), '--auth', 'PLAIN', '--auth-user', USER.username, '--auth-password', USER.password, '--from', USER.email, '--to', to.join(','), '--h-Subject', subject]);
}

describe('queue', () => {
  it('onward host down: the message waits, is retried, and goes when the host comes back', async () => {
    const sinkPort = await freePort();
    const stack = await startStack({ ...FAST, HEARTH_SMTP_RELAY: `smtp://127.0.0.1:${sinkPort}` });
    try {
      const r = await sendAsAlice(stack.smtp.ports.smtp, ['far@remote.test'], 'host-down');
      assert.equal(r.code, 0, r.out);
      // deferred at least twice while nothing listens
      const entry = await waitFor(async () => (await listQueue(stack.env.config)).find((e) => e.recipients[0]!.attempts >= 2), 10000);
      assert.equal(entry!.recipients[0]!.status, 'pending');
      assert.match(entry!.recipients[0]!.lastError!, /ECONNECTION|ECONNREFUSED|connect/i);
      const sink = await startSink(sinkPort);
      
      try {
        await waitFor(() => sink.messages.some((m) => m.raw.includes('Subject: host-down')), 60000);
        await stack.smtp.queue.drained();
        assert.equal(sink.messages.filter((m) => m.raw.includes('Subject: host-down')).length, 1);
        assert.deepEqual(await listQueue(stack.env.config), []);
      } finally {
        await sink.close();
      }
    } finally {
      await stack.close();
    }
  });

  it('permanent failure: a DSN (RFC 3464) goes back to the sender; the other recipient is delivered', async () => {
    const sink = await startSink();
    sink.rcptReply = (a) => (a === 'nosuch@remote.test' ? { code: 550, message: '5.1.1 <nosuch@remote.test>: user unknown' } : null);
    const stack = await startStack({ ...FAST, HEARTH_SMTP_RELAY: `smtp://127.0.0.1:${sink.port}` });
    try {
      const r = await sendAsAlice(stack.smtp.ports.smtp, ['nosuch@remote.test', 'fine@remote.test'], 'will-bounce');
      assert.equal(r.code, 0, r.out);
      const dsn = (await waitFor(() => maildirMessages(stack.env.dataDir, USER.email).find((m) => m.includes('multipart/report')), 10000))!;
      assert.match(dsn, /^Return-Path: <>\r\n/);
      assert.match(dsn, /Content-Type: multipart\/report; report-type=delivery-status; boundary=/);
      assert.match(dsn, /Content-Type: message\/delivery-status/);
      assert.match(dsn, /Final-Recipient: rfc822; nosuch@remote\.test\r\nAction: failed\r\nStatus: 5\.1\.1/);
      assert.match(dsn, /Diagnostic-Code: smtp; 550 5\.1\.1/);
      assert.match(dsn, /Content-Type: text\/rfc822-headers[\s\S]*Subject: will-bounce/);
      assert.doesNotMatch(dsn, /Final-Recipient: rfc822; fine@remote\.test/);
      assert.equal(sink.messages.filter((m) => m.to.includes('fine@remote.test')).length, 1);
      await stack.smtp.queue.drained();
    } finally {
      await stack.close();
      await sink.close();
    }
  });

  it('expiry: a message that cannot go out within the queue lifetime bounces with 4.4.7', async () => {
    const dead = await freePort();
    const stack = await startStack({ ...FAST, HEARTH_SMTP_MAX_QUEUE_AGE: '1', HEARTH_SMTP_RELAY: `smtp://127.0.0.1:${dead}` });
    try {
      const r = await sendAsAlice(stack.smtp.ports.smtp, ['late@remote.test'], 'expires');
      assert.equal(r.code, 0, r.out);
      const dsn = (await waitFor(() => maildirMessages(stack.env.dataDir, USER.email).find((m) => m.includes('multipart/report')), 10000))!;
      assert.match(dsn, /Final-Recipient: rfc822; late@remote\.test\r\nAction: failed\r\nStatus: 4\.4\.7/);
      await stack.smtp.queue.drained();
    } finally {
      await stack.close();
    }
  });

  it('without a smarthost, mail goes to the recipient domain MX (resolver injected)', async () => {
    const sink = await startSink();
    const asked: string[] = [];
    const stack = await startStack(FAST, {
      mxPort: sink.port,
      resolveMx: async (d) => {
        asked.push(d);
        return [{ exchange: '127.0.0.1', priority: 10 }];
      },
    });
    try {
      const r = await sendAsAlice(stack.smtp.ports.smtp, ['a@one.test', 'b@two.test', BOB.email], 'via-mx');
      assert.equal(r.code, 0, r.out);
      await waitFor(() => sink.messages.filter((m) => m.raw.includes('Subject: via-mx')).length === 2, 10000);
      assert.deepEqual(asked.sort(), ['one.test', 'two.test']);
      await waitFor(() => maildirMessages(stack.env.dataDir, BOB.email).some((m) => m.includes('Subject: via-mx')), 10000);
    } finally {
      await stack.close();
      await sink.close();
    }
  });

  it('MX answers decide: no such domain and null MX bounce at once, a DNS failure waits', async () => {
    const stack = await startStack(FAST, {
      mxPort: 1,
      resolveMx: async (d) => {
        if (d === 'nxdomain.test') throw Object.assign(new Error('queryMx ENOTFOUND'), { code: 'ENOTFOUND' });
        if (d === 'servfail.test') throw Object.assign(new Error('queryMx ESERVFAIL'), { code: 'ESERVFAIL' });
        return [{ exchange: '', priority: 0 }];
      },
    });
    try {
      const r = await sendAsAlice(stack.smtp.ports.smtp, ['a@nxdomain.test', 'b@nullmx.test', 'c@servfail.test'], 'dns-outcomes');
      assert.equal(r.code, 0, r.out);
      const entry = await waitFor(async () => (await listQueue(stack.env.config)).find((e) => e.recipients.find((x) => x.address === 'c@servfail.test')!.attempts >= 1), 10000);
      assert.equal(entry!.recipients.find((x) => x.address === 'a@nxdomain.test')!.status, 'failed');
      assert.equal(entry!.recipients.find((x) => x.address === 'b@nullmx.test')!.status, 'failed');
      assert.match(entry!.recipients.find((x) => x.address === 'c@servfail.test')!.lastError!, /ESERVFAIL/);
      // the sender hears about the two failures now, not when the third gives up days later
      const dsn = (await waitFor(() => maildirMessages(stack.env.dataDir, USER.email).find((m) => m.includes('multipart/report')), 10000))!;
      assert.match(dsn, /Final-Recipient: rfc822; a@nxdomain\.test\r\nAction: failed\r\nStatus: 5\.1\.2/);
      assert.match(dsn, /Final-Recipient: rfc822; b@nullmx\.test\r\nAction: failed\r\nStatus: 5\.1\.10/);
      assert.doesNotMatch(dsn, /Final-Recipient: rfc822; c@servfail/);
      assert.equal((await listQueue(stack.env.config)).find((e) => e.id === entry!.id)!.recipients.find((x) => x.address === 'c@servfail.test')!.status, 'pending');
    } finally {
      await stack.close();
    }
  });

  it('HEARTH_SMTP_TRUSTED_NETWORKS lets listed clients relay without AUTH (like mynetworks)', async () => {
    const sink = await startSink();
    const stack = await startStack({ HEARTH_SMTP_TRUSTED_NETWORKS: '127.0.0.1/32', HEARTH_SMTP_RELAY: `smtp://127.0.0.1:${sink.port}` });
    try {
      const a = await swaks(['--port', String(stack.smtp.ports.smtp), '--from', 'app@anywhere.test', '--to', 'r1@remote.test', '--h-Subject', 'trusted-2525']);
      assert.equal(a.code, 0, a.out);
      const b = await swaks(['--port', String(stack.smtp.ports.smtpInbound), '--from', 'app@anywhere.test', '--to', 'r2@remote.test', '--h-Subject', 'trusted-mx']);
      assert.equal(b.code, 0, b.out);
      await waitFor(() => sink.messages.filter((m) => /Subject: trusted-(2525|mx)/.test(m.raw)).length === 2, 10000);
    } finally {
      await stack.close();
      await sink.close();
    }
  });

  it('smarthost over implicit TLS and over STARTTLS, with AUTH from the relay URL', async () => {
    const tlsDir = tempDir();
    try {
      const { key, cert } = await loadTls(loadConfig({ HEARTH_DATA_DIR: tlsDir }));
      for (const mode of ['smtps', 'starttls'] as const) {
        const sink = await startSink(0, mode === 'smtps' ? { secure: true, key, cert } : { starttls: true, key, cert });
        const scheme = mode === 'smtps' ? 'smtps' : 'smtp';
        const stack = await startStack({ ...FAST, HEARTH_SMTP_RELAY: `${scheme}://relay%40user:p%40ss@127.0.0.1:${sink.port}`, HEARTH_SMTP_RELAY_INSECURE_TLS: '1' });
        try {
          const r = await sendAsAlice(stack.smtp.ports.smtp, ['tls@remote.test'], `relay-${mode}`);
          assert.equal(r.code, 0, r.out);
          const m = (await waitFor(() => sink.messages.find((x) => x.raw.includes(`Subject: relay-${mode}`)), 10000))!;
          assert.equal(m.secure, true, `${mode}: encrypted`);
          assert.equal(m.user, 'relay@user', `${mode}: authenticated with the URL's user`);
        } finally {
          await stack.close();
          await sink.close();
        }
      }
    } finally {
      fs.rmSync(tlsDir, { recursive: true, force: true });
    }
  });

  it('admin: list, retry and delete entries (what `hearth mail queue` calls)', async () => {
    const dead = await freePort();
    const stack = await startStack({ HEARTH_SMTP_RETRY_DELAYS: '3600', HEARTH_SMTP_RELAY: `smtp://127.0.0.1:${dead}` });
    try {
      await sendAsAlice(stack.smtp.ports.smtp, ['one@remote.test'], 'admin-1');
      await sendAsAlice(stack.smtp.ports.smtp, ['two@remote.test'], 'admin-2');
      const list = (await waitFor(async () => {
        const l = await listQueue(stack.env.config);
        return l.length === 2 && l.every((e) => e.recipients[0]!.attempts === 1) ? l : null;
      }, 10000))!;
      assert.equal(list[0]!.from, USER.email);
      assert.ok(Date.parse(list[0]!.recipients[0]!.nextAttempt!) > Date.now() + 3000_000, 'next attempt an hour away');
      await assert.rejects(() => retryQueued(stack.env.config, 'NOSUCHID123'), QueueAdminError);
      await retryQueued(stack.env.config, list[0]!.id);
      await waitFor(async () => (await listQueue(stack.env.config)).find((e) => e.id === list[0]!.id)?.recipients[0]!.attempts === 2, 10000);
      assert.equal((await listQueue(stack.env.config)).find((e) => e.id === list[1]!.id)!.recipients[0]!.attempts, 1);
      await deleteQueued(stack.env.config, list[1]!.id);
      assert.deepEqual(
        (await listQueue(stack.env.config)).map((e) => e.id),
        [list[0]!.id],
      );
      await waitFor(() => stack.smtp.queue.size === 1, 5000);
    } finally {
      await stack.close();
    }
  });

  it('crash between Maildir rename and the queue record: delivered exactly once after restart', async () => {
    // the on-disk state a kill -9 at that moment leaves: the spooled message, and its copy already in one Maildir
    const dataDir = tempDir();
    const spool = new Spool(path.join(dataDir, 'queue'));
    spool.init();
    const id = 'CRASHTEST0001';
    const raw = prependHeaders(Buffer.from('From: <x@remote.test>\r\nSubject: crash-window\r\n\r\nbody\r\n'), [
      receivedHeader({ heloName: 'h', remoteAddress: '127.0.0.1', byHost: '127.0.0.1', protocol: 'ESMTP', queueId: id, recipient: null }),
    ]);
    await spool.write({ v: 1, id, from: 'x@remote.test', rcpts: [{ address: BOB.email, local: true }, { address: USER.email, local: true }], arrivedAt: Date.now(), size: raw.length }, raw);
    await new MailStore(dataDir).deliver(BOB.email, prependHeaders(raw, ['Return-Path: <x@remote.test>', `Delivered-To: ${BOB.email}`]));
    const stack = await startStack({ ...FAST, HEARTH_DATA_DIR: dataDir });
    try {
      await stack.smtp.queue.drained();
      assert.equal(maildirMessages(dataDir, BOB.email).filter((m) => m.includes('crash-window')).length, 1, 'bob: not delivered twice');
      assert.equal(maildirMessages(dataDir, USER.email).filter((m) => m.includes('crash-window')).length, 1, 'alice: delivered once');
    } finally {
      await stack.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
});
});
