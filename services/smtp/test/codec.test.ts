import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig } from '@hearth/config';
import { tempDir } from '@hearth/testkit';
import { dkimDnsRecord, ensureDkimKey } from '../src/dkim.ts';
import { buildDsn } from '../src/dsn.ts';
import { headerValues } from '@hearth/message';
import { appendHeaders, authorFields, ensureIdentity, fromDomain, inspectBody, receivedHeader, splitAddress } from '../src/message.ts';
import { parseNetworks } from '../src/networks.ts';
import { RateLimiter } from '../src/ratelimit.ts';
import { replayState } from '../src/spool-queue.ts';
import { loadSmtpSettings } from '../src/settings.ts';
import type { QueueEnvelope, StateRecord } from '../src/spool.ts';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('message codec', () => {
  it('inspectBody finds NUL, bare LF/CR and long lines', () => {
    assert.equal(inspectBody(b('a: b\r\n\r\nok\r\n'), 998), null);
    assert.equal(inspectBody(b('a\0b\r\n'), 998), 'nul');
    assert.equal(inspectBody(b('a\nb\r\n'), 998), 'bare-lf');
    assert.equal(inspectBody(b('a\rb\r\n'), 998), 'bare-cr');
    assert.equal(inspectBody(b(`${'x'.repeat(998)}\r\n`), 998), null);
    assert.equal(inspectBody(b(`${'x'.repeat(999)}\r\n`), 998), 'long-line');
    assert.equal(inspectBody(b(`ok\r\n${'x'.repeat(999)}`), 998), 'long-line');
  });

  it('headerValues unfolds and matches case-insensitively, body excluded', () => {
    const raw = b('Subject: one\r\n two\r\nX-A: 1\r\nsubject: three\r\n\r\nSubject: body\r\n');
    assert.deepEqual(headerValues(raw, 'SUBJECT'), ['one two', 'three']);
    assert.deepEqual(headerValues(raw, 'x-b'), []);
  });

  it('appendHeaders inserts at the end of the header section', () => {
    assert.equal(appendHeaders(b('A: 1\r\n\r\nbody'), ['B: 2']).toString(), 'A: 1\r\nB: 2\r\n\r\nbody');
    assert.equal(appendHeaders(b('A: 1'), ['B: 2']).toString(), 'A: 1\r\nB: 2\r\n');
  });

  it('ensureIdentity adds Message-ID and Date only when missing', () => {
    const added = ensureIdentity(b('From: a@b.c\r\n\r\nx'), 'example.test', new Date('2026-01-02T03:04:05Z')).toString();
    assert.match(added, /^From: a@b\.c\r\nMessage-ID: <[^>]+@example\.test>\r\nDate: Fri, 02 Jan 2026 03:04:05 \+0000\r\n\r\nx$/);
    const kept = b('Message-ID: <x@y>\r\nDate: whatever\r\n\r\nx');
    assert.equal(ensureIdentity(kept, 'example.test').toString(), kept.toString());
  });

  it('Received header is one folded field and cannot be broken by client strings', () => {
    const h = receivedHeader({ heloName: 'evil\r\nBcc: x', remoteAddress: '127.0.0.1', byHost: 'mx.example.test', protocol: 'ESMTPA', queueId: 'ABC123DEF', recipient: 'a@b.c', date: new Date(0) });
    assert.equal(h.split('\r\n').filter((l) => !/^\t/.test(l)).length, 1);
    assert.match(h, /^Received: from evil\?\?Bcc:\?x \(\[127\.0\.0\.1\]\)\r\n\tby mx\.example\.test \(Hearth\) with ESMTPA id ABC123DEF\r\n\tfor <a@b\.c>;\r\n\tThu, 01 Jan 1970 00:00:00 \+0000$/);
  });

  it('authorFields decodes display names, one entry per field, body excluded', () => {
    assert.deepEqual(authorFields(b('From: =?utf-8?q?J=C3=BCrgen?= <Juergen@Example.TEST>\r\n\r\nx')).from, [[{ address: 'juergen@example.test', name: 'Jürgen' }]]);
    assert.deepEqual(authorFields(b('To: a@b.c\r\n\r\nFrom: x@y.z')).from, []);
  });

  it('authorFields sees what readers and DKIM see: "From :" (obs-optional), every From, Sender and Resent-*', () => {
    const f = authorFields(b('Received: from x\r\nFrom : Alice <alice@example.test>\r\nfrom: Mallory <mallory@example.test>\r\nSender: s@example.test\r\nResent-From: r@example.test\r\nResent-Sender: t@example.test\r\nConstructor: x\r\n\r\nbody'));
    assert.deepEqual(
      f.from.map((l) => l.map((m) => m.address)),
      [['alice@example.test'], ['mallory@example.test']],
    );
    assert.deepEqual(f.sender, [[{ address: 's@example.test', name: '' }]]);
    assert.deepEqual(f.resentFrom, [[{ address: 'r@example.test', name: '' }]]);
    assert.deepEqual(f.resentSender, [[{ address: 't@example.test', name: '' }]]);
    assert.equal(fromDomain(b('Received: x\r\nFrom : Alice <alice@Example.TEST>\r\n\r\n')), 'example.test');
    assert.equal(fromDomain(b('From: a@one.test\r\nFrom: b@two.test\r\n\r\n')), null);
  });

  it('authorFields and fromDomain never throw on arbitrary header bytes (fuzz)', () => {
    const parts = ['From', 'from :', 'Sender:', 'Resent-From:', '\r\n', ' ', '\t', '<', '>', '"', '@', ',', ';', ':', '=?utf-8?q?', '=?x?b?', '?=', '(', ')', '\\', 'é', '\r\n\r\n'];
    for (let i = 0; i < 5000; i++) {
      let text = '';
      for (let j = Math.floor(Math.random() * 30); j > 0; j--) text += Math.random() < 0.8 ? parts[Math.floor(Math.random() * parts.length)] : String.fromCharCode(Math.floor(Math.random() * 256));
      const raw = Buffer.from(text, 'latin1');
      const f = authorFields(raw);
      assert.ok(Array.isArray(f.from) && Array.isArray(f.sender), text);
      fromDomain(raw);
    }
  });

  it('splitAddress', () => {
    assert.deepEqual(splitAddress('a.b@Example.Test'), { local: 'a.b', domain: 'example.test' });
    assert.equal(splitAddress('nodomain'), null);
    assert.equal(splitAddress('@x.y'), null);
    assert.equal(splitAddress('a@x/y'), null);
  });

  it('DSN is a multipart/report with per-recipient delivery-status fields', () => {
    const dsn = buildDsn({ reportingMta: 'mx.example.test', postmaster: 'MAILER-DAEMON@example.test', to: 'a@example.test', queueId: 'Q1', arrivalDate: new Date(0), failed: [{ address: 'x@remote.test', status: '5.1.1', diagnostic: '550 5.1.1 unknown\r\nuser', remoteMta: 'mx.remote.test' }], original: b('Subject: hi\r\nFrom: a@example.test\r\n\r\nsecret body') }).toString();
    const boundary = /boundary="([^"]+)"/.exec(dsn)![1]!;
    const parts = dsn.split(`--${boundary}`);
    assert.equal(parts.length, 5);
    assert.match(parts[2]!, /Content-Type: message\/delivery-status\r\n/);
    assert.match(parts[2]!, /Reporting-MTA: dns; mx\.example\.test\r\n/);
    assert.match(parts[2]!, /Final-Recipient: rfc822; x@remote\.test\r\nAction: failed\r\nStatus: 5\.1\.1\r\nRemote-MTA: dns; mx\.remote\.test\r\nDiagnostic-Code: smtp; 550 5\.1\.1 unknown user\r\n/);
    assert.match(parts[3]!, /Content-Type: text\/rfc822-headers\r\nContent-Description: Undelivered Message Headers\r\n\r\nSubject: hi\r\nFrom: a@example\.test\r\n/);
    assert.doesNotMatch(dsn, /secret body/);
    assert.equal(inspectBody(b(dsn), 998), null);
  });
});

describe('DKIM keys', () => {
  it('generated once per domain (0600), published as a TXT record in ≤255-character strings', () => {
    const dir = tempDir();
    try {
      const config = loadConfig({ HEARTH_DATA_DIR: dir });
      const r = dkimDnsRecord(config, 'Example.TEST');
      assert.equal(r.name, 'hearth._domainkey.example.test');
      assert.match(r.value, /^v=DKIM1; k=rsa; p=[A-Za-z0-9+/]+=*$/);
      assert.equal(r.strings.join(''), r.value);
      assert.ok(r.strings.every((x) => x.length <= 255));
      assert.equal(dkimDnsRecord(config, 'example.test').value, r.value, 'same key the second time');
      assert.equal(fs.statSync(path.join(dir, 'dkim', 'example.test.private.pem')).mode & 0o777, 0o600);
      assert.throws(() => ensureDkimKey(dir, '../etc'), /not a domain/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('settings and rules', () => {
  it('trusted networks match like mynetworks', () => {
    const n = parseNetworks('127.0.0.1/32, 10.0.0.0/8 ::1/128');
    assert.ok(n.has('127.0.0.1'));
    assert.ok(n.has('::ffff:10.1.2.3'));
    assert.ok(n.has('::1'));
    assert.ok(!n.has('127.0.0.2'));
    assert.ok(!parseNetworks('').has('127.0.0.1'));
    assert.throws(() => parseNetworks('10.0.0.0/33'));
    assert.throws(() => parseNetworks('nonsense'));
  });

  it('rate limiter: fixed one-minute windows per key; 0 is off', async () => {
    const r = new RateLimiter(2);
    assert.deepEqual([await r.take('ip', 0), await r.take('ip', 1), await r.take('ip', 2), await r.take('other', 2)], [true, true, false, true]);
    assert.equal(await r.take('ip', 60_000), true, 'a new window');
    const off = new RateLimiter(0);
    assert.ok((await Promise.all(Array.from({ length: 1000 }, () => off.take('x')))).every(Boolean));
  });

  it('relay URL, retry list and bad values', () => {
    const s = loadSmtpSettings({ HEARTH_SMTP_RELAY: 'smtps://u%40x:p%3Ass@relay.example:2465', HEARTH_SMTP_RETRY_DELAYS: '0.5, 60' });
    assert.deepEqual(s.relay, { host: 'relay.example', port: 2465, secure: true, user: 'u@x', pass: 'p:ss' });
    assert.deepEqual(s.retryDelaysMs, [500, 60000]);
    assert.equal(s.maxMessageSize, 25 * 1024 * 1024);
    assert.equal(s.maxQueueAgeMs, 4 * 24 * 3600 * 1000);
    assert.equal(loadSmtpSettings({}).relay, null);
    assert.equal(loadSmtpSettings({}).trustedNetworks.cidrs.length, 0);
    assert.throws(() => loadSmtpSettings({ HEARTH_SMTP_RELAY: 'http://x' }), ConfigError);
    assert.throws(() => loadSmtpSettings({ HEARTH_SMTP_RETRY_DELAYS: '1,-2' }), /HEARTH_SMTP_RETRY_DELAYS/);
    assert.throws(() => loadSmtpSettings({ HEARTH_SMTP_TRUSTED_NETWORKS: '1.2.3.4/99' }), /HEARTH_SMTP_TRUSTED_NETWORKS/);
  });

  it('connection limits: shared-layer names and defaults; the old names are refused, not ignored', () => {
    assert.deepEqual(loadSmtpSettings({}).connections, { maxConnections: 600, maxPerAddress: 50, idleTimeoutMs: 60_000, maxLifetimeMs: 600_000 });
    assert.equal(loadSmtpSettings({ HEARTH_SMTP_MAX_CONNECTIONS_PER_ADDRESS: '7' }).connections.maxPerAddress, 7);
    assert.throws(() => loadSmtpSettings({ HEARTH_SMTP_MAX_CLIENTS: '10' }), /HEARTH_SMTP_MAX_CLIENTS: renamed to HEARTH_SMTP_MAX_CONNECTIONS/);
    assert.throws(() => loadSmtpSettings({ HEARTH_SMTP_SOCKET_TIMEOUT: '10' }), /renamed to HEARTH_SMTP_IDLE_TIMEOUT/);
  });

  it('replayState: done/failed are final, deferrals count attempts, bounce batches are remembered', () => {
    const env: QueueEnvelope = { v: 1, id: 'Q', from: 'a@b.c', rcpts: [{ address: 'x@y.z', local: false }, { address: 'u@v.w', local: true }], arrivedAt: 0, size: 1 };
    const records: StateRecord[] = [
      { s: 'deferred', a: 'x@y.z', t: 1, n: 100, e: 'down' },
      { s: 'deferred', a: 'x@y.z', t: 2, n: 200, e: 'down' },
      { s: 'done', a: 'u@v.w', t: 3 },
      { s: 'failed', a: 'x@y.z', t: 4, st: '5.1.1', e: 'gone' },
    ];
    const before = replayState(env, records);
    assert.equal(before.bounces, 0);
    assert.deepEqual(
      before.rcpts.map((r) => [r.address, r.status, r.attempts, r.bounced]),
      [
        ['x@y.z', 'failed', 2, false],
        ['u@v.w', 'done', 0, false],
      ],
    );
    const after = replayState(env, [...records, { s: 'bounced', t: 5, a: ['x@y.z'] }]);
    assert.equal(after.bounces, 1);
    assert.deepEqual(
      after.rcpts.map((r) => r.bounced),
      [true, false],
    );
  });
});
