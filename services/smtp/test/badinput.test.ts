import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { waitFor } from '@hearth/testkit';
import { CHAT, maildirMessages, startStack, swaks, USER, type Stack } from './helpers.ts';

let stack: Stack;

before(async () => {
  stack = await startStack({
    HEARTH_SMTP_IDLE_TIMEOUT: '1',
    HEARTH_SMTP_MAX_LIFETIME: '3',
    HEARTH_SMTP_MAX_MESSAGE_SIZE: '65536',
    HEARTH_SMTP_MAX_BUFFERED: '100000',
    HEARTH_SMTP_MAX_RECIPIENTS: '5',
    HEARTH_SMTP_RATE_PER_SENDER: '3',
  });
});
after(async () => {
  await stack.close();
});

/** A raw SMTP conversation: send bytes, read whole replies (multi-line aware). */
class Raw {
  private buf = '';
  private waiters: (() => void)[] = [];
  closed = false;
  readonly socket: net.Socket;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.setEncoding('latin1');
    this.socket.on('data', (d: string) => {
      this.buf += d;
      for (const w of this.waiters.splice(0)) w();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** The next complete reply ("250-a\r\n250 b\r\n"); '' when the server closed. */
  async reply(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\n/.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m[0].length);
        return m[0];
      }
      if (this.closed) return '';
      if (Date.now() > deadline) throw new Error(`no reply; have ${JSON.stringify(this.buf)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  async cmd(line: string): Promise<string> {
    this.send(`${line}\r\n`);
    return this.reply();
  }

  end(): void {
    this.socket.destroy();
  }
}

async function open(port: number): Promise<Raw> {
  const c = new Raw(port);
  assert.match(await c.reply(), /^220 /);
  return c;
}

/** An MX session up to DATA's 354 for alice. */
async function mxData(): Promise<Raw> {
  const c = await open(stack.smtp.ports.smtpInbound);
  assert.match(await c.cmd('EHLO fuzz.test'), /^250/);
  assert.match(await c.cmd('MAIL FROM:<x@remote.test>'), /^250/);
  assert.match(await c.cmd(`RCPT TO:<${USER.email}>`), /^250/);
  assert.match(await c.cmd('DATA'), /^354/);
  return c;
}

/** The service still works end to end. */
async function stillServes(subject: string): Promise<void> {
  const r = await swaks(['--port', String(stack.smtp.ports.smtpInbound), '--from', 'ok@remote.test', '--to', USER.email, '--h-Subject', subject]);
  assert.equal(r.code, 0, r.out);
  await waitFor(() => maildirMessages(stack.env.dataDir, USER.email).some((m) => m.includes(`Subject: ${subject}`)), 10000);
}

describe('bad input gets the right error for that session only', () => {
  it('malformed and out-of-order commands', async () => {
    const c = await open(stack.smtp.ports.smtpInbound);
    assert.match(await c.cmd('FOO bar'), /^5\d\d /);
    assert.match(await c.cmd('EHLO'), /^501 /);
    assert.match(await c.cmd('EHLO fuzz.test'), /^250/);
    assert.match(await c.cmd('RCPT TO:<alice@example.test>'), /^503 /);
    assert.match(await c.cmd('DATA'), /^503 /);
    assert.match(await c.cmd('MAIL FROM:not-an-address'), /^501 /);
    assert.match(await c.cmd('MAIL FROM:<x@remote.test> BODY=BINARYMIME'), /^5\d\d /);
    assert.match(await c.cmd('MAIL FROM:<x@remote.test>'), /^250/);
    assert.match(await c.cmd('RCPT TO:<@@@>'), /^5\d\d /);
    assert.match(await c.cmd('RCPT TO:<no-domain>'), /^5\d\d /);
    assert.match(await c.cmd('AUTH PLAIN AGFsaWNlAHg='), /^5\d\d /);
    assert.match(await c.cmd('QUIT'), /^221 /);
    c.end();
  });

  it('bare LF, bare CR, NUL and over-long lines in DATA are refused; the session goes on', async () => {
    const cases: [string, Buffer, RegExp][] = [
      ['bare LF', Buffer.from('Subject: lf\nbody\r\n.\r\n'), /^550 5\.6\.0 bare LF/],
      ['bare CR', Buffer.from('Subject: cr\rbody\r\n.\r\n'), /^550 5\.6\.0 bare CR/],
      ['NUL', Buffer.from('Subject: nul\r\nbo\0dy\r\n.\r\n'), /^550 5\.6\.0 message contains NUL/],
      ['long line', Buffer.from(`Subject: long\r\n\r\n${'x'.repeat(2000)}\r\n.\r\n`), /^550 5\.6\.0 message line too long/],
    ];
    for (const [name, data, expected] of cases) {
      const c = await mxData();
      c.send(data);
      assert.match(await c.reply(), expected, name);
      assert.match(await c.cmd('RSET'), /^250/, name);
      assert.match(await c.cmd('NOOP'), /^250/, name);
      c.end();
    }
    assert.equal(maildirMessages(stack.env.dataDir, USER.email).filter((m) => /Subject: (lf|cr|nul|long)\b/.test(m)).length, 0);
  });

  it('8-bit bodies pass through intact', async () => {
    const c = await open(stack.smtp.ports.smtpInbound);
    await c.cmd('EHLO fuzz.test');
    assert.match(await c.cmd('MAIL FROM:<x@remote.test> BODY=8BITMIME'), /^250/);
    assert.match(await c.cmd(`RCPT TO:<${USER.email}>`), /^250/);
    assert.match(await c.cmd('DATA'), /^354/);
    c.send(Buffer.concat([Buffer.from('Subject: eightbit\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'), Buffer.from('Grüße, 日本\r\n.\r\n', 'utf8')]));
    assert.match(await c.reply(), /^250 /);
    c.end();
    const m = (await waitFor(() => maildirMessages(stack.env.dataDir, USER.email).find((x) => x.includes('Subject: eightbit')), 10000))!;
    assert.ok(Buffer.from(m, 'latin1').includes(Buffer.from('Grüße, 日本', 'utf8')));
  });

  it('oversized messages: 552 on a declared SIZE and on the actual data', async () => {
    const c = await open(stack.smtp.ports.smtpInbound);
    assert.match(await c.cmd('EHLO fuzz.test'), /250[- ]SIZE 65536/);
    assert.match(await c.cmd('MAIL FROM:<x@remote.test> SIZE=1000000'), /^552 /);
    assert.match(await c.cmd('MAIL FROM:<x@remote.test>'), /^250/);
    assert.match(await c.cmd(`RCPT TO:<${USER.email}>`), /^250/);
    assert.match(await c.cmd('DATA'), /^354/);
    const line = `${'y'.repeat(900)}\r\n`;
    c.send(`Subject: big\r\n\r\n${line.repeat(100)}.\r\n`);
    assert.match(await c.reply(), /^552 5\.3\.4/);
    assert.match(await c.cmd('NOOP'), /^250/);
    c.end();
  });

  it('memory cap across sessions: a message that does not fit gets 452, the others go through', async () => {
    const body = `${'z'.repeat(900)}\r\n`.repeat(60); // ~54 KB each: one fits the 100 KB cap, two do not
    const first = await mxData();
    first.send(`Subject: held-1\r\n\r\n${body}`);
    await new Promise((r) => setTimeout(r, 200));
    const second = await mxData();
    second.send(`Subject: held-2\r\n\r\n${body}.\r\n`);
    const secondReply = await second.reply();
    first.send('.\r\n');
    const firstReply = await first.reply();
    // whichever session's bytes the server held first completes; the other gets a temporary error
    assert.deepEqual([firstReply.slice(0, 9), secondReply.slice(0, 9)].sort(), ['250 2.0.0', '452 4.3.1']);
    first.end();
    second.end();
  });

  it('too many recipients: 452 after the limit', async () => {
    const c = await open(stack.smtp.ports.smtpInbound);
    await c.cmd('EHLO fuzz.test');
    await c.cmd('MAIL FROM:<x@remote.test>');
    const rcpts = [USER.email, 'bob@example.test', 'alice.alias@example.test', 'chat.app@example.test'];
    for (const r of rcpts) assert.match(await c.cmd(`RCPT TO:<${r}>`), /^250/);
    // duplicates do not count; the limit is 5 distinct
    assert.match(await c.cmd(`RCPT TO:<${USER.email}>`), /^250/);
    c.end();
    const d = await open(stack.smtp.ports.smtp);
    await d.cmd('EHLO fuzz.test');
    assert.match(await d.cmd(`AUTH PLAIN ${Buffer.from(`\0${CHAT.username}\0${CHAT.password}`).toString('base64')}`), /^235/);
    assert.match(await d.cmd(`MAIL FROM:<${CHAT.from}>`), /^250/);
    for (let i = 0; i < 5; i++) assert.match(await d.cmd(`RCPT TO:<r${i}@remote.test>`), /^250/);
    assert.match(await d.cmd('RCPT TO:<r5@remote.test>'), /^452 /);
    d.end();
  });

  it('bad base64 and unknown mechanisms in AUTH', async () => {
    const c = await open(stack.smtp.ports.smtp);
    await c.cmd('EHLO fuzz.test');
    assert.match(await c.cmd('AUTH PLAIN !!!not-base64***'), /^5\d\d /);
    assert.match(await c.cmd('AUTH CRAM-MD5'), /^5\d\d /);
    assert.match(await c.cmd('AUTH LOGIN'), /^334 /);
    assert.match(await c.cmd('%%%%'), /^(334|5\d\d) /);
    c.end();
    const d = await open(stack.smtp.ports.smtp);
    await d.cmd('EHLO fuzz.test');
    assert.match(await d.cmd(`AUTH PLAIN ${Buffer.from('garbage-without-nuls').toString('base64')}`), /^5\d\d /);
    assert.match(await d.cmd('NOOP'), /^250/);
    d.end();
  });

  it('an over-long command line is refused', async () => {
    const c = await open(stack.smtp.ports.smtpInbound);
    c.send(`EHLO ${'a'.repeat(40000)}\r\n`);
    const r = await c.reply();
    assert.match(r, /^(5\d\d|421) /);
    c.end();
  });

  it('per-sender rate limit: 451 once an app goes over it', async () => {
    const c = await open(stack.smtp.ports.smtp);
    await c.cmd('EHLO fuzz.test');
    await c.cmd(`AUTH PLAIN ${Buffer.from(`\0${CHAT.username}\0${CHAT.password}`).toString('base64')}`);
    const replies: string[] = [];
    for (let i = 0; i < 5; i++) {
      replies.push(await c.cmd(`MAIL FROM:<${CHAT.from}>`));
      await c.cmd('RSET');
    }
    // the recipients test above used one MAIL already
    assert.ok(replies.some((r) => /^451 4\.7\.1/.test(r)), replies.join(''));
    c.end();
  });

  it('pipelining abuse: thousands of commands in one write', async () => {
    const c = await open(stack.smtp.ports.smtpInbound);
    c.send('EHLO fuzz.test\r\n' + 'NOOP\r\n'.repeat(5000) + 'QUIT\r\n');
    await waitFor(() => c.closed, 10000);
    c.end();
  });

  it('idle and slow-loris clients are cut off by themselves', async () => {
    const idle = await open(stack.smtp.ports.smtpInbound);
    await waitFor(() => idle.closed, 10000);
    const slow = await open(stack.smtp.ports.smtpInbound);
    const drip = setInterval(() => slow.send('N'), 300);
    try {
      await waitFor(() => slow.closed, 15000);
    } finally {
      clearInterval(drip);
    }
  });

  it('fuzz: random bytes on every port, then the service still serves', async () => {
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const words = ['EHLO', 'HELO', 'MAIL FROM:', 'RCPT TO:', 'DATA', 'RSET', 'AUTH PLAIN', 'AUTH LOGIN', 'STARTTLS', 'BDAT', 'VRFY', 'NOOP', '.', '<', '>', '@', '\r\n', '\n', '\0'];
    const ports = [stack.smtp.ports.smtp, stack.smtp.ports.smtpInbound, stack.smtp.ports.smtps];
    for (let round = 0; round < 30; round++) {
      const c = new Raw(ports[round % ports.length]!);
      for (let i = 0; i < 40; i++) {
        const parts: Buffer[] = [];
        for (let j = 0; j < 1 + rnd(6); j++) {
          if (rnd(3) === 0) parts.push(Buffer.from(Array.from({ length: rnd(64) }, () => rnd(256))));
          else parts.push(Buffer.from(words[rnd(words.length)]!, 'latin1'));
        }
        parts.push(Buffer.from('\r\n'));
        c.send(Buffer.concat(parts));
      }
      await new Promise((r) => setTimeout(r, 30));
      c.end();
    }
    await stillServes('after-fuzz');
  });
});
