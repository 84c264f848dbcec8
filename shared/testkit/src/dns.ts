import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';

/**
 * A small authoritative DNS server on loopback UDP for tests that need DNS answers (SPF, DKIM,
 * DMARC, MX): the daemon's real resolver asks it over the wire, so nothing reaches the internet.
 * Names it does not know get NXDOMAIN; a name listed in `fail` gets SERVFAIL (a temporary error).
 */
export interface TestDns {
  /** "127.0.0.1:port", the form HEARTH_SMTP_DNS_SERVERS takes */
  server: string;
  port: number;
  /** TXT records by name; a long value is sent as 255-byte strings of one record */
  txt: Map<string, string[]>;
  a: Map<string, string[]>;
  mx: Map<string, { exchange: string; priority: number }[]>;
  /** names answered with SERVFAIL */
  fail: Set<string>;
  /** how many queries arrived (a test can check the daemon asked this server) */
  queries: number;
  /** lets the test process end while the server still listens */
  unref(): void;
  close(): Promise<void>;
}

export async function startTestDns(host = '127.0.0.1'): Promise<TestDns> {
  const socket = dgram.createSocket('udp4');
  const state: TestDns = { server: '', port: 0, txt: new Map(), a: new Map(), mx: new Map(), fail: new Set(), queries: 0, unref: () => socket.unref(), close: async () => {} };
  socket.on('message', (msg, rinfo) => {
    let query: dnsPacket.Packet;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return;
    }
    state.queries++;
    const q = query.questions?.[0];
    if (!q) return;
    const name = q.name.toLowerCase().replace(/\.$/, '');
    const answers: dnsPacket.Answer[] = [];
    if (q.type === 'TXT') for (const v of state.txt.get(name) ?? []) answers.push({ type: 'TXT', name: q.name, ttl: 60, data: chunks(v) });
    if (q.type === 'A') for (const v of state.a.get(name) ?? []) answers.push({ type: 'A', name: q.name, ttl: 60, data: v });
    if (q.type === 'MX') for (const v of state.mx.get(name) ?? []) answers.push({ type: 'MX', name: q.name, ttl: 60, data: { exchange: v.exchange, preference: v.priority } });
    const known = state.txt.has(name) || state.a.has(name) || state.mx.has(name);
    const rcode = state.fail.has(name) ? 'SERVFAIL' : known ? 'NOERROR' : 'NXDOMAIN';
    const reply = dnsPacket.encode({ type: 'response', id: query.id, flags: dnsPacket.AUTHORITATIVE_ANSWER | rcodeFlag(rcode), questions: query.questions, answers });
    socket.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, host, () => resolve());
  });
  state.port = socket.address().port;
  state.server = `${host}:${state.port}`;
  state.close = () => new Promise<void>((resolve) => socket.close(() => resolve()));
  return state;
}

/** A TXT record's character-strings hold at most 255 bytes each (RFC 1035 3.3.14). */
function chunks(value: string): Buffer[] {
  const b = Buffer.from(value, 'utf8');
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += 255) out.push(b.subarray(i, i + 255));
  return out.length ? out : [Buffer.alloc(0)];
}

function rcodeFlag(rcode: 'NOERROR' | 'NXDOMAIN' | 'SERVFAIL'): number {
  return { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3 }[rcode];
}
