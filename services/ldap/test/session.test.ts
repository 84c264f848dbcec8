import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MemoryIO } from '@hearth/lineserver';
import { createLogger } from '@hearth/log';
import { BerWriter, pduLength } from '../src/ber.ts';
import { OID, OP, RESULT } from '../src/protocol.ts';
import { LdapService, LdapSession, PduFramer } from '../src/server.ts';
import { startFixture, type Fixture } from './fixture.ts';
import { bindRequest, parseReply, searchRequest, seedFilter, whoamiRequest, type Reply } from './wire-client.ts';

let f: Fixture;
before(async () => {
  f = await startFixture();
});
after(() => f.close());

/** the replies in what the session wrote */
function replies(io: MemoryIO): Reply[] {
  let bytes = Buffer.concat(io.written);
  io.written.length = 0;
  const out: Reply[] = [];
  for (let len = pduLength(bytes); len > 0; len = pduLength(bytes)) {
    out.push(parseReply(bytes.subarray(0, len)));
    bytes = bytes.subarray(len);
  }
  return out;
}

test('an LDAP session runs without a network: PDUs in, responses out through its SessionIO', { timeout: 30_000 }, async () => {
  const logger = createLogger('ldap-test', 'warn');
  const svc = new LdapService({ directory: f.directory, logger, host: '127.0.0.1', port: 0 }, f.directory, logger);
  const io = new MemoryIO(false, '192.0.2.9');
  const session = new LdapSession(svc, io, true);
  const framer = new PduFramer();
  const send = async (...pdus: Buffer[]): Promise<Reply[]> => {
    // split at odd places, as TCP may
    const all = Buffer.concat(pdus);
    for (const part of [all.subarray(0, 3), all.subarray(3)]) for (const frame of framer.push(part)) await session.handle(frame);
    await session.flush();
    return replies(io);
  };

  assert.deepEqual((await send(bindRequest(1, f.appDn, f.appPassword))).map((r) => [r.id, r.tag, r.code]), [[1, OP.bindResponse, RESULT.success]]);
  // pipelined: both answered, in order, in one batch
  const found = await send(searchRequest(2, 'ou=users,dc=cloudron', 2, seedFilter('alice'), ['mail']), whoamiRequest(3));
  assert.deepEqual(
    found.map((r) => [r.id, r.tag, r.code]),
    [
      [2, OP.searchResultEntry, null],
      [2, OP.searchResultDone, RESULT.success],
      [3, OP.extendedResponse, RESULT.success],
    ],
  );
  assert.match(found[0]!.pdu.toString('latin1'), /alice@example\.test/);

  const startTls = new BerWriter().startSequence().writeInt(4).startSequence(OP.extendedRequest).writeString(OID.startTls, 0x80).endSequence().endSequence().toBuffer();
  assert.deepEqual((await send(startTls)).map((r) => r.code), [RESULT.success]);
  assert.equal(io.secure, true);
  assert.deepEqual((await send(startTls)).map((r) => r.code), [RESULT.operationsError], 'TLS is already active');

  // garbage: a Notice of Disconnection (id 0, protocolError), then the session hangs up
  const bye = await send(Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]));
  assert.deepEqual(bye.map((r) => [r.id, r.code]), [[0, RESULT.protocolError]]);
  assert.equal(io.closed, true);
  assert.equal(session.closed, true);
});
