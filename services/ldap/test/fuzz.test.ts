import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BerReader, BerWriter } from '../src/ber.ts';
import { OP, RESULT } from '../src/protocol.ts';
import { LDAP_CONNECTION_DEFAULTS, startLdap, type LdapServer } from '../src/server.ts';
import type { ConnectionLimits } from '@hearth/lineserver';
import { createLogger } from '@hearth/log';
import { prng, waitFor } from '@hearth/testkit';
import { parseLdif, run, startFixture, type Fixture } from './fixture.ts';
import { bindRequest, searchRequest, seedFilter, whoamiRequest, WireClient, type Reply } from './wire-client.ts';

/**
 * Hostile input: random bytes, mutated valid PDUs, absurd filters and lengths, and a
 * flood of connections. Each may cost its own connection, never the server: afterwards
 * a normal search must still work, and nothing the server sent may be malformed.
 */

let f: Fixture;
before(async () => {
  // Mutated binds are failed logins; keep the throttle from locking the test's own binds out.
  f = await startFixture({ throttle: { perUser: 1e9, perAddress: 1e9, windowSeconds: 60 } });
});
after(async () => {
  await f?.close();
});

async function normalSearchWorks(): Promise<void> {
  const r = await run('ldapsearch', ['-x', '-LLL', '-H', f.url, '-D', f.appDn, '-w', f.appPassword, '-b', 'ou=users,dc=cloudron', '(&(objectclass=user)(|(username=alice)(mail=alice)))', 'username']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual([...parseLdif(r.stdout).keys()], [`cn=${f.users.alice.id},ou=users,dc=cloudron`]);
}

/** Sends bytes on a fresh connection (bound as the app first when asked), then a WhoAmI probe; collects replies until the server closes or the budget ends. */
async function throwAt(payload: Buffer, bound: boolean): Promise<{ replies: Reply[]; garbage: number }> {
  const c = await WireClient.connect(f.server.port);
  if (bound) c.send(bindRequest(1, f.appDn, f.appPassword));
  c.send(payload);
  c.send(whoamiRequest(999));
  c.socket.end();
  const replies: Reply[] = [];
  const deadline = setTimeout(() => c.destroy(), 3000);
  for (;;) {
    const r = await c.next();
    if (!r) break;
    replies.push(r);
  }
  clearTimeout(deadline);
  return { replies, garbage: c.garbage };
}

function encodeNots(depth: number): Buffer {
  const w = new BerWriter(depth * 8);
  for (let i = 0; i < depth; i++) w.startSequence(0xa2);
  w.writeString('cn', 0x87);
  for (let i = 0; i < depth; i++) w.endSequence();
  return w.toBuffer();
}

describe('bad input', () => {
  it('closes with a notice of disconnection on an oversized or absurd length', { timeout: 120_000 }, async () => {
    for (const header of ['30847fffffff', '3083100001', '3080', '3085ffffffffff']) {
      const c = await WireClient.connect(f.server.port);
      c.send(Buffer.from(header + '020101', 'hex'));
      const notice = await c.next();
      assert.ok(notice, header);
      assert.equal(notice.id, 0);
      assert.equal(notice.tag, OP.extendedResponse);
      assert.equal(notice.code, RESULT.protocolError);
      assert.ok(await c.waitClosed(3000), `closed after ${header}`);
    }
    await normalSearchWorks();
  });

  it('answers absurdly deep and wide filters with protocolError and keeps the connection', { timeout: 120_000 }, async () => {
    const c = await WireClient.connect(f.server.port);
    c.send(bindRequest(1, f.appDn, f.appPassword));
    assert.equal((await c.next())?.code, 0);
    c.send(searchRequest(2, 'dc=cloudron', 2, encodeNots(20000)));
    const deep = await c.untilDone();
    assert.deepEqual(deep?.map((r) => [r.id, r.tag, r.code]), [[2, OP.searchResultDone, RESULT.protocolError]]);
    const wide = new BerWriter().startSequence(0xa1);
    for (let i = 0; i < 5000; i++) wide.startSequence(0xa3).writeString('cn').writeString(`x${i}`).endSequence();
    c.send(searchRequest(3, 'dc=cloudron', 2, wide.endSequence().toBuffer()));
    assert.equal((await c.untilDone())?.[0]?.code, RESULT.protocolError);
    c.send(searchRequest(4, 'ou=users,dc=cloudron', 2, seedFilter('carol'), ['mail']));
    const ok = await c.untilDone();
    assert.equal(ok?.length, 2, 'one entry and the done message');
    assert.equal(ok?.[1]?.code, 0);
    c.destroy();
  });

  it('survives random bytes and mutated PDUs', { timeout: 120_000 }, async () => {
    const seed = Number(process.env.LDAP_FUZZ_SEED ?? 20261126);
    const rand = prng(seed);
    const int = (n: number): number => Math.floor(rand() * n);
    const paged = new BerWriter().startSequence(0xa0).startSequence().writeString('1.2.840.113556.1.4.319').writeBool(true);
    paged.writeOctets(new BerWriter().startSequence().writeInt(1).writeOctets(Buffer.alloc(0)).endSequence().toBuffer()).endSequence().endSequence();
    const corpus = [
      bindRequest(5, f.appDn, f.appPassword),
      bindRequest(5, 'cn=alice,ou=users,dc=cloudron', 'correct horse battery'),
      searchRequest(6, 'ou=users,dc=cloudron', 2, seedFilter('alice'), ['*', '+', 'memberof']),
      searchRequest(7, 'dc=cloudron', 2, Buffer.from('8702636e', 'hex'), [], paged.toBuffer()),
      searchRequest(8, 'ou=groups,dc=cloudron', 1, Buffer.from('a40f04026e6d3009800161810162820163', 'hex'), ['1.1']),
      Buffer.from('3029020109' + '6e24' + '0414' + Buffer.from('cn=x,ou=users,dc=cl').toString('hex') + '300c04046d61696c040461406221', 'hex'),
      new BerWriter().startSequence().writeInt(10).startSequence(OP.extendedRequest).writeString('1.3.6.1.4.1.4203.1.11.1', 0x80).writeOctets(new BerWriter().startSequence().writeString('old', 0x81).writeString('newpassword', 0x82).endSequence().toBuffer(), 0x81).endSequence().endSequence().toBuffer(),
      whoamiRequest(11),
      Buffer.from('3006020112500105', 'hex'),
      Buffer.from('300802010d4a03636e3d', 'hex'),
    ];
    const mutate = (pdu: Buffer): Buffer => {
      let b = Buffer.from(pdu);
      for (let n = 1 + int(4); n > 0; n--) {
        const at = int(b.length);
        switch (int(6)) {
          case 0:
            b[at] = b[at]! ^ (1 << int(8));
            break;
          case 1:
            b[at] = int(256);
            break;
          case 2:
            b = b.subarray(0, at);
            break;
          case 3:
            b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + int(8) }, () => int(256))), b.subarray(at)]);
            break;
          case 4:
            b = Buffer.concat([b, b.subarray(int(b.length))]);
            break;
          case 5:
            b[at] = [0x80, 0x81, 0x84, 0xff, 0x00, 0x7f][int(6)]!;
            break;
        }
        if (b.length === 0) b = Buffer.from([0x30]);
      }
      return b;
    };
    const cases: { payload: Buffer; bound: boolean }[] = [];
    for (let i = 0; i < 300; i++) {
      const len = 1 + int(200);
      const bytes = Buffer.from(Array.from({ length: len }, () => int(256)));
      if (i % 2 === 0) bytes[0] = 0x30;
      cases.push({ payload: bytes, bound: i % 3 === 0 });
    }
    for (let i = 0; i < 1200; i++) cases.push({ payload: mutate(corpus[int(corpus.length)]!), bound: i % 2 === 0 });

    let garbage = 0;
    let answered = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < cases.length) {
        const c = cases[next++]!;
        const out = await throwAt(c.payload, c.bound);
        garbage += out.garbage;
        if (out.replies.some((r) => r.id === 999)) answered++;
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    console.log(`# ${cases.length} cases, ${answered} connections still answered the probe afterwards`);
    assert.equal(garbage, 0, `the server sent malformed BER (seed ${seed})`);
    assert.ok(answered > 0, 'some connections survived their bad PDU and answered the probe');
    await normalSearchWorks();
  });

  it('answers unknown extended operations and critical controls, and keeps the connection', { timeout: 120_000 }, async () => {
    const c = await WireClient.connect(f.server.port);
    c.send(new BerWriter().startSequence().writeInt(1).startSequence(OP.extendedRequest).writeString('1.2.3.4.5', 0x80).endSequence().endSequence().toBuffer());
    assert.deepEqual(await c.next().then((r) => [r?.id, r?.tag, r?.code]), [1, OP.extendedResponse, RESULT.protocolError]);
    const control = new BerWriter().startSequence(0xa0).startSequence().writeString('1.2.3.4.6').writeBool(true).endSequence().endSequence().toBuffer();
    c.send(searchRequest(2, '', 0, Buffer.from('870b6f626a656374436c617373', 'hex'), [], control));
    assert.deepEqual(await c.next().then((r) => [r?.id, r?.tag, r?.code]), [2, OP.searchResultDone, RESULT.unavailableCriticalExtension]);
    c.send(whoamiRequest(3));
    assert.equal((await c.next())?.code, 0);
    c.destroy();
  });

  it('drops paged-search cookies when the connection binds again', { timeout: 120_000 }, async () => {
    const pagedControl = (cookie: Buffer): Buffer =>
      new BerWriter()
        .startSequence(0xa0)
        .startSequence()
        .writeString('1.2.840.113556.1.4.319')
        .writeOctets(new BerWriter().startSequence().writeInt(1).writeOctets(cookie).endSequence().toBuffer())
        .endSequence()
        .endSequence()
        .toBuffer();
    const cookieOf = (done: Reply): Buffer => {
      const msg = new BerReader(done.pdu).enter();
      msg.readInt();
      msg.skip();
      const control = msg.enter(0xa0).enter();
      assert.equal(control.readString(), '1.2.840.113556.1.4.319');
      const value = new BerReader(control.readOctets()).enter();
      value.readInt();
      return value.readOctets();
    };
    const everyone = Buffer.from('870b6f626a656374636c617373', 'hex');
    const c = await WireClient.connect(f.server.port);
    c.send(bindRequest(1, f.appDn, f.appPassword));
    assert.equal((await c.next())?.code, 0);
    c.send(searchRequest(2, 'ou=users,dc=cloudron', 1, everyone, ['1.1'], pagedControl(Buffer.alloc(0))));
    const first = await c.untilDone();
    assert.equal(first?.length, 2);
    const cookie = cookieOf(first![1]!);
    assert.ok(cookie.length > 0);
    c.send(bindRequest(3, 'cn=alice,ou=users,dc=cloudron', 'correct horse battery'));
    assert.equal((await c.next())?.code, 0);
    c.send(searchRequest(4, 'ou=users,dc=cloudron', 1, everyone, ['1.1'], pagedControl(cookie)));
    const after = await c.untilDone();
    assert.deepEqual(after?.map((r) => [r.tag, r.code]), [[OP.searchResultDone, RESULT.unwillingToPerform]], 'the app’s result set is gone');
    c.destroy();
  });

  /** a second server over the fixture's directory with other connection limits */
  const serverWith = (limits: Partial<ConnectionLimits>): Promise<LdapServer> =>
    startLdap({ directory: f.directory, logger: createLogger('ldap-test', 'warn'), host: '127.0.0.1', port: 0, connections: { ...LDAP_CONNECTION_DEFAULTS, ...limits } });

  it('caps connections per source address without disturbing the open ones or other addresses', { timeout: 120_000 }, async () => {
    const capped = await serverWith({ maxPerAddress: 5 });
    try {
      const open = await Promise.all(Array.from({ length: 5 }, () => WireClient.connect(capped.port)));
      const extra = await WireClient.connect(capped.port);
      const notice = await extra.next();
      assert.equal(notice?.code, RESULT.busy, 'the sixth connection is told why (notice of disconnection) ...');
      assert.ok(await extra.waitClosed(3000), '... and closed');
      // another client address still gets a session
      const other = await WireClient.connect(capped.port, '127.0.0.1', '127.0.0.23');
      other.send(bindRequest(1, 'cn=alice,ou=users,dc=cloudron', 'correct horse battery'));
      assert.equal((await other.next())?.code, 0);
      other.destroy();
      open[0]!.send(whoamiRequest(1));
      assert.equal((await open[0]!.next())?.code, 0);
      for (const c of open) c.destroy();
      // Slots free up once the server has seen the closes; a refused attempt is simply closed.
      await waitFor(async () => {
        const again = await WireClient.connect(capped.port);
        again.send(whoamiRequest(2));
        const reply = await again.next();
        again.destroy();
        return reply?.code === 0;
      }, 5000);
    } finally {
      await capped.close();
    }
  });

  it('closes a connection idle past HEARTH_LDAP_IDLE_TIMEOUT, not one that keeps asking', { timeout: 60_000 }, async () => {
    const quick = await serverWith({ idleTimeoutMs: 600 });
    try {
      const silent = await WireClient.connect(quick.port);
      const busy = await WireClient.connect(quick.port);
      for (let i = 1; i <= 8; i++) {
        busy.send(whoamiRequest(i));
        assert.equal((await busy.next())?.code, 0);
        await new Promise((r) => setTimeout(r, 150));
      }
      assert.ok(await silent.waitClosed(3000), 'the silent connection was closed');
      busy.send(whoamiRequest(99));
      assert.equal((await busy.next())?.code, 0, 'the busy one (1.2 s old, never silent for long) is still served');
      busy.destroy();
    } finally {
      await quick.close();
    }
  });

  it('keeps serving through a flood of idle connections', { timeout: 120_000 }, async () => {
    const idle = await Promise.all(Array.from({ length: 300 }, () => WireClient.connect(f.server.port)));
    try {
      await normalSearchWorks();
    } finally {
      for (const c of idle) c.destroy();
    }
  });
});
