import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import { Readable } from 'node:stream';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sealMessage } from 'mailauth';
import DKIM from 'nodemailer/lib/dkim/index.js';
import { tempDir, waitFor, type CommandResult } from '@hearth/testkit';
import { headerValues } from '@hearth/message';
import { BOB, maildirMessages, startStack, swaks, USER, type Stack } from './helpers.ts';

/**
 * Inbound sender authentication on the MX port: swaks sends from chosen loopback addresses,
 * the daemon asks a DNS server on loopback (the test's records), and what arrives (or the SMTP
 * reply) is checked against RFC 7208/6376/7489/8617 outcomes.
 */

const AUTHSERV = 'mx.example.test';
let stack: Stack;
const files = tempDir('hearth-inbound-');

function rsaKey(): { privateKey: string; dns: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'der' } });
  return { privateKey, dns: `v=DKIM1; k=rsa; p=${publicKey.toString('base64')}` };
}
const origin = rsaKey();
/** a key for Debian's python3-dkim to sign with (PKCS#1 PEM, which dkimpy reads) */
const strictKey = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'der' } });
const strictDns = `v=DKIM1; k=rsa; p=${strictKey.publicKey.toString('base64')}`;
const list = rsaKey();
const rogueList = rsaKey();

before(async () => {
  stack = await startStack({ HEARTH_SMTP_AUTHSERV_ID: AUTHSERV, HEARTH_SMTP_ARC_TRUSTED_SEALERS: 'lists.trusted.test' });
  const records: Record<string, string> = {
    'spf-pass.test': 'v=spf1 ip4:127.0.0.41 -all',
    'spf-fail.test': 'v=spf1 ip4:127.0.0.41 -all',
    'spf-soft.test': 'v=spf1 ip4:127.0.0.41 ~all',
    'origin.test': 'v=spf1 ip4:127.0.0.41 -all',
    '_dmarc.origin.test': 'v=DMARC1; p=reject',
    'sel._domainkey.origin.test': origin.dns,
    'reject.test': 'v=spf1 ip4:127.0.0.41 -all',
    '_dmarc.reject.test': 'v=DMARC1; p=reject',
    'quarantine.test': 'v=spf1 ip4:127.0.0.41 -all',
    '_dmarc.quarantine.test': 'v=DMARC1; p=quarantine',
    'lists.trusted.test': 'v=spf1 ip4:127.0.0.45 -all',
    'arc._domainkey.lists.trusted.test': list.dns,
    'lists.rogue.test': 'v=spf1 ip4:127.0.0.46 -all',
    'arc._domainkey.lists.rogue.test': rogueList.dns,
    'flaky.test': 'v=spf1 ip4:127.0.0.41 -all',
    // RFC 7489 3.1: adkim=s / aspf=s want the very From domain; relaxed ones the same organizational domain
    'strict.test': 'v=spf1 ip4:127.0.0.41 -all',
    'mail.strict.test': 'v=spf1 ip4:127.0.0.41 -all',
    '_dmarc.strict.test': 'v=DMARC1; p=reject; adkim=s; aspf=s',
    'sel._domainkey.strict.test': strictDns,
    'relaxed.test': 'v=spf1 ip4:127.0.0.41 -all',
    'mail.relaxed.test': 'v=spf1 ip4:127.0.0.41 -all',
    '_dmarc.relaxed.test': 'v=DMARC1; p=reject',
    'sel._domainkey.relaxed.test': strictDns,
    // RFC 7208 4.6.4: eleven DNS-querying terms are one too many
    'loop.test': `v=spf1 ${Array.from({ length: 11 }, (_, i) => `include:n${i}.loop.test`).join(' ')} -all`,
    ...Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`n${i}.loop.test`, 'v=spf1 ip4:192.0.2.1 -all'])),
  };
  for (const [name, value] of Object.entries(records)) stack.env.dns.txt.set(name, [value]);
  stack.env.dns.fail.add('_dmarc.flaky.test');
});
after(async () => {
  await stack?.close();
  fs.rmSync(files, { recursive: true, force: true });
});

/** swaks from a chosen loopback source address; `data` (CRLF lines) goes over the wire as written. */
async function send(source: string, mailFrom: string, data: string, to = USER.email): Promise<CommandResult> {
  const file = path.join(files, `${Math.random().toString(36).slice(2)}.eml`);
  fs.writeFileSync(file, data);
  return swaks(['--port', String(stack.smtp.ports.smtpInbound), '--local-interface', source, '--ehlo', 'client.test', '--from', mailFrom, '--to', to, '--data', `@${file}`]);
}

/**
 * origin.test's DKIM signature, made by nodemailer's signer (the one Hearth signs with). Not mailauth's
 * dkimSign: 4.13.3's signer makes a signature that does not verify about once in twenty keys.
 */
async function originSigned(plain: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of new DKIM({ domainName: 'origin.test', keySelector: 'sel', privateKey: origin.privateKey }).sign(Readable.from([Buffer.from(plain, 'latin1')]))) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('latin1');
}

/** A DKIM signature by Debian's python3-dkim (dkimpy), an independent signer, for d=`domain`, s=sel. */
function pythonSigned(plain: string, domain: string): string {
  const keyFile = path.join(files, 'strict-key.pem');
  fs.writeFileSync(keyFile, strictKey.privateKey);
  const code = 'import sys, dkim\nm = sys.stdin.buffer.read()\nsys.stdout.buffer.write(dkim.sign(m, b"sel", sys.argv[1].encode(), open(sys.argv[2], "rb").read(), include_headers=[b"from", b"to", b"subject", b"date", b"message-id"]) + m)';
  const r = spawnSync('/usr/bin/python3', ['-c', code, domain, keyFile], { input: Buffer.from(plain, 'latin1') });
  assert.equal(r.status, 0, r.stderr?.toString());
  return r.stdout.toString('latin1');
}

function message(from: string, subject: string, extra = ''): string {
  return `From: <${from}>\r\nTo: <${USER.email}>\r\nSubject: ${subject}\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@test>\r\n${extra}\r\nHello.\r\n`;
}

async function arrived(subject: string, address = USER.email): Promise<string> {
  return (await waitFor(() => maildirMessages(stack.env.dataDir, address).find((m) => m.includes(`Subject: ${subject}\r\n`)), 20_000))!;
}

/** Our Authentication-Results (the only one naming us), unfolded. */
function ourResults(raw: string): string {
  const mine = headerValues(Buffer.from(raw, 'latin1'), 'authentication-results').filter((v) => v.toLowerCase().startsWith(AUTHSERV));
  assert.equal(mine.length, 1, `one Authentication-Results of ours in:\n${raw}`);
  return mine[0]!.replace(/\s+/g, ' ');
}

const delivered = (subject: string): boolean => maildirMessages(stack.env.dataDir, USER.email).some((m) => m.includes(`Subject: ${subject}\r\n`));

describe('SPF (RFC 7208)', () => {
  it('pass: the client address is in the MAIL FROM domain\'s record', async () => {
    const r = await send('127.0.0.41', 'a@spf-pass.test', message('a@spf-pass.test', 'spf-pass'));
    assert.equal(r.code, 0, r.out);
    const raw = await arrived('spf-pass');
    assert.match(ourResults(raw), /spf=pass .*smtp\.mailfrom=(a@)?spf-pass\.test/);
    assert.match(headerValues(Buffer.from(raw, 'latin1'), 'received-spf')[0]!, /^pass/);
  });

  it('fail (-all) and softfail (~all) are recorded; without a DMARC policy the message is delivered', async () => {
    assert.equal((await send('127.0.0.42', 'a@spf-fail.test', message('a@spf-fail.test', 'spf-fail'))).code, 0);
    assert.match(ourResults(await arrived('spf-fail')), /spf=fail .*smtp\.mailfrom=(a@)?spf-fail\.test/);
    assert.equal((await send('127.0.0.42', 'a@spf-soft.test', message('a@spf-soft.test', 'spf-softfail'))).code, 0);
    assert.match(ourResults(await arrived('spf-softfail')), /spf=softfail /);
  });
});

describe('DKIM (RFC 6376) and DMARC (RFC 7489)', () => {
  it('a message signed with a key published in DNS passes DKIM, and DMARC through DKIM alignment from an address SPF does not allow', async () => {
    const plain = message('news@origin.test', 'dkim-signed');
    const r = await send('127.0.0.42', 'bounces@origin.test', await originSigned(plain));
    assert.equal(r.code, 0, r.out);
    const ar = ourResults(await arrived('dkim-signed'));
    assert.match(ar, /dkim=pass .*header\.[ds]=.*origin\.test/);
    assert.match(ar, /spf=fail/);
    assert.match(ar, /dmarc=pass /);
  });

  it('a signature that no longer matches the body fails DKIM; p=reject then refuses the message at DATA', async () => {
    const plain = message('news@origin.test', 'dkim-tampered');
    const r = await send('127.0.0.42', 'bounces@origin.test', (await originSigned(plain)).replace('Hello.', 'Send money.'));
    assert.match(r.out, /<\*\* 550 5\.7\.1 message rejected by the DMARC policy of origin\.test/);
    assert.equal(delivered('dkim-tampered'), false);
  });

  it('p=reject: an unauthenticated message is refused with 550 5.7.1 and never stored', async () => {
    const r = await send('127.0.0.42', 'a@reject.test', message('ceo@reject.test', 'dmarc-reject'));
    assert.match(r.out, /<\*\* 550 5\.7\.1 message rejected by the DMARC policy of reject\.test/);
    // the check can pass: the same mail from the address SPF allows is delivered
    assert.equal((await send('127.0.0.41', 'a@reject.test', message('ceo@reject.test', 'dmarc-reject-ok'))).code, 0);
    assert.match(ourResults(await arrived('dmarc-reject-ok')), /dmarc=pass /);
    assert.equal(delivered('dmarc-reject'), false);
  });

  it('p=quarantine: the message goes to the recipient\'s Junk folder, not INBOX', async () => {
    const r = await send('127.0.0.42', 'a@quarantine.test', message('ceo@quarantine.test', 'dmarc-quarantine'));
    assert.equal(r.code, 0, r.out);
    const junk = path.join(stack.env.dataDir, 'mail', 'example.test', 'alice', '.Junk', 'new');
    const file = await waitFor(() => (fs.existsSync(junk) ? fs.readdirSync(junk).find((f) => fs.readFileSync(path.join(junk, f), 'latin1').includes('Subject: dmarc-quarantine')) : undefined), 20_000);
    assert.ok(file);
    assert.match(ourResults(fs.readFileSync(path.join(junk, file), 'latin1')), /dmarc=fail .*p=QUARANTINE/i);
    assert.equal(delivered('dmarc-quarantine'), false);
  });

  it('a DNS failure while looking up the policy is a temporary 451, and the retry after it is delivered', async () => {
    const r = await send('127.0.0.42', 'a@flaky.test', message('a@flaky.test', 'dns-flaky'));
    assert.match(r.out, /<\*\* 451 4\.7\.0 temporary DNS failure/);
    stack.env.dns.fail.delete('_dmarc.flaky.test');
    assert.equal((await send('127.0.0.42', 'a@flaky.test', message('a@flaky.test', 'dns-flaky'))).code, 0);
    await arrived('dns-flaky');
  });
});

describe('bad input', () => {
  it('an SPF record needing more than 10 lookups is a permerror, a malformed DKIM-Signature fails to verify; both are delivered and recorded', async () => {
    assert.equal((await send('127.0.0.42', 'a@loop.test', message('a@loop.test', 'spf-too-many'))).code, 0);
    assert.match(ourResults(await arrived('spf-too-many')), /spf=permerror /);
    const broken = 'DKIM-Signature: v=1; a=rsa-sha256; d=origin.test; s=sel; h=From; bh=!!!; b=@@@\r\n';
    assert.equal((await send('127.0.0.41', 'a@spf-pass.test', message('a@spf-pass.test', 'dkim-malformed', broken))).code, 0);
    assert.match(ourResults(await arrived('dkim-malformed')), /dkim=(neutral|fail|permerror) /);
  });
});

describe('mail claiming a local sender', () => {
  it('From a local domain without aligned SPF or DKIM is refused; from the domain\'s own server it is delivered', async () => {
    const r = await send('127.0.0.43', USER.email, message(USER.email, 'local-spoof'), BOB.email);
    assert.match(r.out, /<\*\* 550 5\.7\.1 From <…@example\.test> is a local domain but the message is not authenticated/);
    // a foreign envelope sender does not make it pass either: alignment is with the From domain
    const r2 = await send('127.0.0.41', 'a@spf-pass.test', message(USER.email, 'local-spoof-2'), BOB.email);
    assert.match(r2.out, /<\*\* 550 5\.7\.1/);
    // 127.0.0.1 is in example.test's SPF record (testkit's DNS): aligned SPF pass
    assert.equal((await send('127.0.0.1', USER.email, message(USER.email, 'local-honest'), BOB.email)).code, 0);
    await arrived('local-honest', BOB.email);
    assert.equal(maildirMessages(stack.env.dataDir, BOB.email).some((m) => m.includes('local-spoof')), false);
  });
});

describe('Authentication-Results (RFC 8601)', () => {
  it('removes a forged copy that names us and keeps another server\'s', async () => {
    const forged = `Authentication-Results: ${AUTHSERV.toUpperCase()}; dkim=pass header.d=bank.test; dmarc=pass\r\nAuthentication-Results: (comment) ${AUTHSERV};\r\n spf=pass\r\nAuthentication-Results: other.test; spf=none\r\n`;
    assert.equal((await send('127.0.0.42', 'a@spf-soft.test', message('a@spf-soft.test', 'forged-ar', forged))).code, 0);
    const raw = await arrived('forged-ar');
    const all = headerValues(Buffer.from(raw, 'latin1'), 'authentication-results');
    assert.equal(all.length, 2, raw);
    assert.match(ourResults(raw), /spf=softfail/);
    assert.ok(all.some((v) => v.startsWith('other.test; spf=none')));
    assert.doesNotMatch(raw, /bank\.test/);
  });
});

describe('ARC (RFC 8617)', () => {
  /** origin.test's signed message as a mailing list forwards it: subject tagged and footer added (DKIM breaks), then sealed. */
  async function forwarded(sealer: string, key: string, subject: string): Promise<string> {
    const plain = message('news@origin.test', subject);
    const changed = (await originSigned(plain)).replace(`Subject: ${subject}`, `Subject: [list] ${subject}`).replace('Hello.\r\n', 'Hello.\r\n--\r\nlist footer\r\n');
    const seal = await sealMessage(changed, {
      signingDomain: sealer,
      selector: 'arc',
      privateKey: key,
      authResults: `${sealer}; dkim=pass header.d=origin.test header.s=sel; spf=pass smtp.mailfrom=origin.test; dmarc=pass header.from=origin.test`,
      cv: 'none',
    } as Parameters<typeof sealMessage>[1]);
    return seal.toString() + changed;
  }

  it('a passing chain sealed by a trusted list lifts the DMARC failure the forward caused', async () => {
    const r = await send('127.0.0.45', 'bounces@lists.trusted.test', await forwarded('lists.trusted.test', list.privateKey, 'arc-trusted'));
    assert.equal(r.code, 0, r.out);
    const ar = ourResults(await arrived('[list] arc-trusted'));
    assert.match(ar, /arc=pass /);
    assert.match(ar, /dkim=fail|dkim=neutral/);
    assert.match(ar, /dmarc=fail /);
  });

  it('the same forward sealed by a list we do not trust is refused by p=reject', async () => {
    const r = await send('127.0.0.46', 'bounces@lists.rogue.test', await forwarded('lists.rogue.test', rogueList.privateKey, 'arc-rogue'));
    assert.match(r.out, /<\*\* 550 5\.7\.1 message rejected by the DMARC policy of origin\.test/);
  });
});

describe('DMARC strict alignment (RFC 7489 3.1.1, 3.1.2) with python3-dkim signatures', () => {
  it('adkim=s: a d=strict.test signature aligns with From strict.test but not with mail.strict.test (p=reject refuses); relaxed, the subdomain aligns', async () => {
    const exact = await send('127.0.0.42', 'b@strict.test', pythonSigned(message('a@strict.test', 'strict-dkim-exact'), 'strict.test'));
    assert.equal(exact.code, 0, exact.out);
    assert.match(ourResults(await arrived('strict-dkim-exact')), /dkim=pass .*dmarc=pass |dmarc=pass .*dkim=pass /);
    const sub = await send('127.0.0.42', 'b@strict.test', pythonSigned(message('a@mail.strict.test', 'strict-dkim-sub'), 'strict.test'));
    assert.match(sub.out, /<\*\* 550 5\.7\.1 message rejected by the DMARC policy of strict\.test/);
    const relaxed = await send('127.0.0.42', 'b@relaxed.test', pythonSigned(message('a@mail.relaxed.test', 'relaxed-dkim-sub'), 'relaxed.test'));
    assert.equal(relaxed.code, 0, relaxed.out);
    assert.match(ourResults(await arrived('relaxed-dkim-sub')), /dmarc=pass /);
    assert.equal(delivered('strict-dkim-sub'), false);
  });

  it('aspf=s: an SPF pass for mail.strict.test does not align with From strict.test (refused); relaxed it does', async () => {
    const strict = await send('127.0.0.41', 'x@mail.strict.test', message('a@strict.test', 'strict-spf-sub'));
    assert.match(strict.out, /<\*\* 550 5\.7\.1 message rejected by the DMARC policy of strict\.test/);
    const exact = await send('127.0.0.41', 'x@strict.test', message('a@strict.test', 'strict-spf-exact'));
    assert.equal(exact.code, 0, exact.out);
    assert.match(ourResults(await arrived('strict-spf-exact')), /dmarc=pass /);
    const relaxed = await send('127.0.0.41', 'x@mail.relaxed.test', message('a@relaxed.test', 'relaxed-spf-sub'));
    assert.equal(relaxed.code, 0, relaxed.out);
    assert.match(ourResults(await arrived('relaxed-spf-sub')), /dmarc=pass /);
  });
});
