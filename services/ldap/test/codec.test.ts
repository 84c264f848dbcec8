import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BerError, BerReader, BerWriter, MAX_PDU_BYTES, pduLength } from '../src/ber.ts';
import { normalizeDn, parseDn } from '../src/dn.ts';
import { decodeFilter, FilterError, matches, MAX_FILTER_DEPTH, normalizeAttr, type Filter, type Matchable } from '../src/filter.ts';
import { decodeMessage, decodePagedControl, decodePasswordModify, encodeEntry, encodeResult, OP, OperationError } from '../src/protocol.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('BER writer', () => {
  it('encodes integers in the fewest two’s-complement bytes', () => {
    const cases: [number, string][] = [
      [0, '020100'],
      [127, '02017f'],
      [128, '02020080'],
      [256, '02020100'],
      [-1, '0201ff'],
      [-128, '020180'],
      [-129, '0202ff7f'],
      [2147483647, '02047fffffff'],
    ];
    for (const [v, want] of cases) assert.equal(new BerWriter(4).writeInt(v).toBuffer().toString('hex'), want, String(v));
  });

  it('uses short and long definite lengths and shifts sequence contents', () => {
    assert.equal(new BerWriter().startSequence().writeString('ab').endSequence().toBuffer().toString('hex'), '300404026162');
    const long = new BerWriter(8).startSequence().writeOctets(Buffer.alloc(198)).endSequence().toBuffer();
    assert.equal(long.subarray(0, 5).toString('hex'), '3081c90481');
    const huge = new BerWriter(8).startSequence().writeRaw(Buffer.alloc(70000)).endSequence().toBuffer();
    assert.equal(huge.subarray(0, 5).toString('hex'), '3083011170');
    assert.equal(huge.length, 70005);
  });

  it('round-trips through the reader', () => {
    const buf = new BerWriter().startSequence().writeInt(-300).writeBool(true).writeString('héllo').writeEnum(3).writeOctets(Buffer.alloc(0), 0x05).endSequence().toBuffer();
    const r = new BerReader(buf).enter();
    assert.equal(r.readInt(), -300);
    assert.equal(r.readBool(), true);
    assert.equal(r.readString(), 'héllo');
    assert.equal(r.readEnum(), 3);
    r.skip();
    assert.ok(r.done);
  });
});

describe('BER reader is strict', () => {
  it('rejects indefinite lengths, long length fields, overruns and multi-byte tags', () => {
    assert.throws(() => new BerReader(hex('3080 0000')).enter(), BerError);
    assert.throws(() => new BerReader(hex('3085 0000000001 00')).enter(), BerError);
    assert.throws(() => new BerReader(hex('3005 0201')).enter(), BerError);
    assert.throws(() => new BerReader(hex('1f01 00')).enterAny(), BerError);
    assert.throws(() => new BerReader(hex('0205 0102030405')).readInt(), BerError);
    assert.throws(() => new BerReader(hex('0200')).readInt(), BerError);
    assert.throws(() => new BerReader(hex('010200ff')).readBool(), BerError);
    assert.throws(() => new BerReader(hex('0401')).readOctets(), BerError);
  });

  it('frames PDUs: 0 while incomplete, the size when whole, an error past the cap', () => {
    assert.equal(pduLength(hex('30')), 0);
    assert.equal(pduLength(hex('3003 0201')), 0);
    assert.equal(pduLength(hex('3003 020101 ff')), 5);
    assert.equal(pduLength(hex('3082')), 0);
    assert.equal(pduLength(hex('3082 0001 00')), 5);
    assert.throws(() => pduLength(hex('3084 7fffffff')), /exceeds/);
    assert.throws(() => pduLength(hex('3083 100001'), MAX_PDU_BYTES), /exceeds/);
    assert.throws(() => pduLength(hex('3080')), /indefinite/);
  });
});

function filterOf(der: string): Filter {
  return decodeFilter(new BerReader(hex(der)));
}

/** A filter, encoded the way clients do. */
function encodeFilter(w: BerWriter, f: Filter): BerWriter {
  switch (f.type) {
    case 'and':
    case 'or':
      w.startSequence(f.type === 'and' ? 0xa0 : 0xa1);
      for (const c of f.filters) encodeFilter(w, c);
      return w.endSequence();
    case 'not':
      return encodeFilter(w.startSequence(0xa2), f.filter).endSequence();
    case 'present':
      return w.writeString(f.attr, 0x87);
    case 'eq':
    case 'ge':
    case 'le':
    case 'approx':
      return w.startSequence({ eq: 0xa3, ge: 0xa5, le: 0xa6, approx: 0xa8 }[f.type]).writeString(f.attr).writeString(f.value).endSequence();
    case 'substr':
      w.startSequence(0xa4).writeString(f.attr).startSequence();
      if (f.initial !== null) w.writeString(f.initial, 0x80);
      for (const a of f.any) w.writeString(a, 0x81);
      if (f.final !== null) w.writeString(f.final, 0x82);
      return w.endSequence().endSequence();
    case 'ext':
      w.startSequence(0xa9);
      if (f.attr) w.writeString(f.attr, 0x82);
      return w.writeString(f.value, 0x83).endSequence();
  }
}

const entry = (attrs: Record<string, string[]>): Matchable => ({
  values: (a) => attrs[a]?.map((v) => v.toLowerCase()),
  allValues: () => Object.values(attrs).flat().map((v) => v.toLowerCase()),
});

describe('filters', () => {
  it('decodes the wire form of (cn=Bob) and normalizes names and values', () => {
    assert.deepEqual(filterOf('a309 0402 636e 0403 426f62'), { type: 'eq', attr: 'cn', value: 'bob' });
    assert.deepEqual(filterOf('8704 4d61696c'), { type: 'present', attr: 'mail' });
    assert.equal(normalizeAttr('displayName;lang-en'), 'displayname');
    assert.equal(normalizeAttr('2.5.4.3'), 'cn');
    assert.equal(normalizeAttr('commonName'), 'cn');
    assert.equal(normalizeAttr('RFC822Mailbox'), 'mail');
    const dnValued = new BerWriter().startSequence(0xa3).writeString('memberOf').writeString('CN=Staff, OU=Groups, DC=cloudron').endSequence().toBuffer();
    assert.deepEqual(decodeFilter(new BerReader(dnValued)), { type: 'eq', attr: 'memberof', value: 'cn=staff,ou=groups,dc=cloudron' });
  });

  it('decodes the seed filter and every choice', () => {
    const seed: Filter = {
      type: 'and',
      filters: [
        { type: 'eq', attr: 'objectclass', value: 'user' },
        { type: 'or', filters: [{ type: 'eq', attr: 'username', value: 'alice' }, { type: 'eq', attr: 'mail', value: 'alice' }] },
      ],
    };
    const all: Filter = {
      type: 'or',
      filters: [
        seed,
        { type: 'not', filter: { type: 'present', attr: 'mail' } },
        { type: 'substr', attr: 'cn', initial: 'a', any: ['b', 'c'], final: 'd' },
        { type: 'ge', attr: 'gidnumber', value: '5' },
        { type: 'le', attr: 'gidnumber', value: '9' },
        { type: 'approx', attr: 'sn', value: 'smith' },
        { type: 'ext', attr: 'cn', value: 'x', dnAttributes: false },
      ],
    };
    const buf = encodeFilter(new BerWriter(), all).toBuffer();
    assert.deepEqual(decodeFilter(new BerReader(buf)), all);
  });

  it('rejects malformed, too deep and unknown filters', () => {
    assert.throws(() => filterOf('aa00'), FilterError);
    assert.throws(() => filterOf('a403 0401 61'), BerError);
    assert.throws(() => filterOf('a40b 0401 61 3006 820178 800179'), FilterError); // initial after final
    let deep: Filter = { type: 'present', attr: 'cn' };
    for (let i = 0; i < MAX_FILTER_DEPTH + 2; i++) deep = { type: 'not', filter: deep };
    assert.throws(() => decodeFilter(new BerReader(encodeFilter(new BerWriter(), deep).toBuffer())), /deeper/);
    const wide: Filter = { type: 'and', filters: Array.from({ length: 2000 }, () => ({ type: 'present', attr: 'cn' }) as Filter) };
    assert.throws(() => decodeFilter(new BerReader(encodeFilter(new BerWriter(), wide).toBuffer())), /more than/);
  });

  it('evaluates every filter type case-insensitively', () => {
    const e = entry({ objectclass: ['top', 'User'], cn: ['Carol Ann'], mail: ['Carol@Example.test'], gidnumber: ['5001'] });
    const t = (f: Filter): boolean => matches(f, e);
    assert.ok(t({ type: 'eq', attr: 'mail', value: 'carol@example.test' }));
    assert.ok(!t({ type: 'eq', attr: 'mail', value: 'bob@example.test' }));
    assert.ok(t({ type: 'present', attr: 'cn' }));
    assert.ok(!t({ type: 'present', attr: 'sn' }));
    assert.ok(t({ type: 'not', filter: { type: 'present', attr: 'sn' } }));
    assert.ok(t({ type: 'substr', attr: 'cn', initial: 'car', any: ['ol'], final: 'ann' }));
    assert.ok(!t({ type: 'substr', attr: 'cn', initial: 'carol', any: [], final: 'l ann' }));
    assert.ok(t({ type: 'substr', attr: 'mail', initial: null, any: ['@exa'], final: null }));
    assert.ok(t({ type: 'ge', attr: 'gidnumber', value: '999' }), 'numeric order, not string order');
    assert.ok(!t({ type: 'le', attr: 'gidnumber', value: '999' }));
    assert.ok(t({ type: 'approx', attr: 'cn', value: 'carolann' }));
    assert.ok(t({ type: 'ext', attr: null, value: 'user', dnAttributes: false }));
    assert.ok(t({ type: 'and', filters: [{ type: 'eq', attr: 'objectclass', value: 'user' }, { type: 'or', filters: [{ type: 'eq', attr: 'username', value: 'x' }, { type: 'eq', attr: 'mail', value: 'carol@example.test' }] }] }));
    assert.ok(!t({ type: 'or', filters: [] }));
    assert.ok(t({ type: 'and', filters: [] }));
  });
});

describe('DNs', () => {
  it('parses escapes and normalizes case and spacing', () => {
    assert.deepEqual(parseDn('cn=a\\,b , OU=Users,dc=cloudron'), [
      { type: 'cn', value: 'a,b' },
      { type: 'ou', value: 'Users' },
      { type: 'dc', value: 'cloudron' },
    ]);
    assert.deepEqual(parseDn('cn=caf\\c3\\a9'), [{ type: 'cn', value: 'café' }]);
    assert.equal(normalizeDn('CN=Alice, ou=USERS,dc=Cloudron'), 'cn=alice,ou=users,dc=cloudron');
    assert.deepEqual(parseDn(''), []);
    for (const bad of ['cn', 'cn=a,', '=a', 'cn=a+sn=b', 'cn=a\\']) assert.equal(parseDn(bad), null, bad);
  });
});

describe('LDAP messages', () => {
  it('decodes an anonymous bind as ldapsearch sends it', () => {
    const m = decodeMessage(hex('300c 020101 6007 020103 0400 8000'));
    assert.equal(m.id, 1);
    assert.deepEqual(m.req, { op: 'bind', version: 3, name: '', password: Buffer.alloc(0), saslMechanism: null });
  });

  it('decodes a search with controls', () => {
    const w = new BerWriter().startSequence().writeInt(7).startSequence(OP.searchRequest);
    w.writeString('ou=users,dc=cloudron').writeEnum(2).writeEnum(0).writeInt(10).writeInt(0).writeBool(false);
    w.writeString('objectClass', 0x87).startSequence().writeString('cn').writeString('+').endSequence().endSequence();
    w.startSequence(0xa0).startSequence().writeString('1.2.840.113556.1.4.319').writeBool(true);
    w.writeOctets(new BerWriter().startSequence().writeInt(2).writeOctets(Buffer.alloc(0)).endSequence().toBuffer()).endSequence().endSequence();
    const m = decodeMessage(w.endSequence().toBuffer());
    assert.equal(m.req.op, 'search');
    if (m.req.op !== 'search') return;
    assert.equal(m.req.scope, 2);
    assert.equal(m.req.sizeLimit, 10);
    assert.deepEqual(m.req.attributes, ['cn', '+']);
    assert.deepEqual(m.req.filter, { type: 'present', attr: 'objectclass' });
    assert.equal(m.controls[0]!.critical, true);
    assert.deepEqual(decodePagedControl(m.controls[0]!.value), { size: 2, cookie: Buffer.alloc(0) });
  });

  it('decodes password modify, abandon and write requests', () => {
    const v = new BerWriter().startSequence().writeString('u:alice', 0x80).writeString('old', 0x81).writeString('new', 0x82).endSequence().toBuffer();
    assert.deepEqual(decodePasswordModify(v), { userIdentity: 'u:alice', oldPassword: 'old', newPassword: 'new' });
    assert.deepEqual(decodeMessage(hex('3006 020102 500105')).req, { op: 'abandon', id: 5 });
    assert.deepEqual(decodeMessage(hex('3008 020103 4a03 636e3d')).req, { op: 'write', responseTag: OP.delResponse });
  });

  it('answers a broken operation body, but rejects a broken envelope', () => {
    const badSearch = hex('3009 020109 6304 0400 0a01');
    assert.throws(
      () => decodeMessage(badSearch),
      (e: unknown) => e instanceof OperationError && e.id === 9 && e.responseTag === OP.searchResultDone,
    );
    assert.throws(() => decodeMessage(hex('3003 0201ff')), BerError);
    assert.throws(() => decodeMessage(hex('3005 020101 7f00')), BerError);
    assert.throws(() => decodeMessage(hex('3005 020101 4200 00')), BerError);
  });

  it('encodes results and entries byte for byte', () => {
    assert.equal(encodeResult(1, OP.bindResponse, 0).toString('hex'), '300c02010161070a010004000400');
    assert.equal(encodeResult(2, OP.bindResponse, 49, { message: 'x' }).toString('hex'), '300d02010261080a013104000401' + '78');
    const dn = new BerWriter().writeString('cn=a').toBuffer();
    const attr = new BerWriter().startSequence().writeString('cn').startSequence(0x31).writeString('a').endSequence().endSequence().toBuffer();
    assert.equal(encodeEntry(3, dn, [attr]).toString('hex'), '301802010364130404636e3d61300b30090402636e3103040161');
    // The same entry through the general writer, for large ids and long lengths.
    const big = new BerWriter().writeString('x'.repeat(300)).toBuffer();
    for (const id of [127, 128, 32767, 32768, 8388608, 2147483647]) {
      const w = new BerWriter().startSequence().writeInt(id).startSequence(OP.searchResultEntry).writeRaw(dn).startSequence().writeRaw(attr).writeRaw(big).endSequence().endSequence().endSequence();
      assert.equal(encodeEntry(id, dn, [attr, big]).toString('hex'), w.toBuffer().toString('hex'), String(id));
    }
  });
});
