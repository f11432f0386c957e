import { strict as assert } from 'node:assert';
import { createSocket } from 'node:dgram';
import { connect as netConnect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createPortico, type Portico } from '../../app/app.js';
import { query } from '../../dns/testing.js';

/**
 * Hostile DNS clients against a running dns listener, over UDP and TCP: compression loops, lying
 * lengths, truncated messages, slow and silent TCP clients, oversized TCP lengths, clients that
 * never read. Each case asserts the refusal (FORMERR or no answer, the connection closed) and
 * that the listener then answers a well-formed query over both transports. A dropped datagram
 * is shown by the next query's answer coming first, not by waiting; the TCP deadline
 * (tcp.idleTimeout, 500 ms here) ends the silent clients.
 */

const GUARD_MS = 15_000;

const HEADER = (id: number, flags: number, qd: number, an = 0, ns = 0, ar = 0): Buffer => {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(flags, 2);
  b.writeUInt16BE(qd, 4);
  b.writeUInt16BE(an, 6);
  b.writeUInt16BE(ns, 8);
  b.writeUInt16BE(ar, 10);
  return b;
};
/** `www.example.com` IN A. */
const QUESTION = Buffer.from([3, 0x77, 0x77, 0x77, 7, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 3, 0x63, 0x6f, 0x6d, 0, 0, 1, 0, 1]);
const TYPE_A_IN = Buffer.from([0, 1, 0, 1]);
const label = (n: number): Buffer => Buffer.concat([Buffer.from([n]), Buffer.alloc(n, 0x61)]);
const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];
const rcodeOf = (b: Buffer): string => RCODES[b.readUInt16BE(2) & 0xf] ?? 'OTHER';
const framed = (m: Buffer): Buffer => Buffer.concat([Buffer.from([m.length >> 8, m.length & 0xff]), m]);

/** The id of the well-formed query sent after each hostile one. */
const PROBE_ID = 0x7777;
const probe = (): Buffer => query('www.example.com', 'A', { id: PROBE_ID });

type Expect = 'drop' | 'FORMERR' | 'NOTIMP' | 'REFUSED';

/**
 * Send `msg` then the probe from one UDP socket: what the server answered to `msg` ('drop' when
 * the probe's answer came first; datagrams on loopback are handled in order).
 */
function udpThenProbe(port: number, msg: Buffer): Promise<{ first: string; probe: Buffer }> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    let first: string | undefined;
    const guard = setTimeout(() => {
      s.close();
      reject(new Error('no answer to the probe'));
    }, GUARD_MS);
    s.on('message', (m: Buffer) => {
      if (m.length >= 12 && m.readUInt16BE(0) === PROBE_ID) {
        clearTimeout(guard);
        s.close();
        resolve({ first: first ?? 'drop', probe: m });
      } else if (first === undefined) first = rcodeOf(m);
    });
    s.send(msg, port, '127.0.0.1', () => s.send(probe(), port, '127.0.0.1'));
  });
}

interface TcpResult {
  /** The messages answered, in order. */
  readonly answers: Buffer[];
  /** The server closed the connection. */
  readonly closed: boolean;
  /** Bytes of a dripped write sent before the close. */
  readonly written: number;
}

/**
 * Write `parts` on a TCP connection; collect framed answers until `count` have come (then the
 * client closes), or until the server closes. `drip`: one byte per `drip` ms.
 */
function tcp(port: number, parts: readonly Buffer[], o: { count?: number; end?: boolean; drip?: number; noRead?: boolean } = {}): Promise<TcpResult> {
  return new Promise((resolve, reject) => {
    const sock: Socket = netConnect(port, '127.0.0.1');
    const answers: Buffer[] = [];
    let buf = Buffer.alloc(0);
    let written = 0;
    let timer: NodeJS.Timeout | undefined;
    let serverClosed = true;
    const guard = setTimeout(() => {
      sock.destroy();
      reject(new Error(`the dns listener neither answered nor closed within ${GUARD_MS} ms`));
    }, GUARD_MS);
    const finish = (): void => {
      clearTimeout(guard);
      clearTimeout(timer);
      sock.destroy();
      resolve({ answers, closed: serverClosed, written });
    };
    if (o.noRead === true) sock.pause();
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        answers.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (o.count !== undefined && answers.length >= o.count) {
        serverClosed = false;
        finish();
      }
    });
    sock.on('close', finish);
    sock.on('error', () => {});
    sock.on('connect', () => {
      if (o.drip !== undefined) {
        const all = Buffer.concat(parts);
        const step = (): void => {
          if (sock.destroyed || written >= all.length) return;
          sock.write(all.subarray(written, written + 1));
          written++;
          timer = setTimeout(step, o.drip);
        };
        step();
        return;
      }
      for (const p of parts) sock.write(p);
      if (o.end === true) sock.end();
    });
  });
}

describe('hostile DNS clients', () => {
  let p: Portico;
  let port = 0;

  before(async () => {
    p = createPortico({
      admin: { enabled: false },
      log: { level: 'error' },
      listeners: [
        {
          name: 'dns',
          protocol: 'dns',
          listen: '127.0.0.1:0',
          responseRateLimit: false,
          tcp: { idleTimeout: '500ms', maxConnections: 8 },
          zones: [{ name: 'example.com', records: [{ name: 'www', type: 'A', pool: 'web' }] }],
        },
      ],
      pools: [{ name: 'web', servers: [{ name: 'a', address: '192.0.2.1:80' }] }],
    });
    await p.start();
    port = p.address('dns')!.port;
  });
  after(async () => {
    await p.stop(0);
  });

  /** A well-formed query is answered over UDP and over TCP. */
  async function assertHealthy(): Promise<void> {
    const u = await udpThenProbe(port, probe());
    assert.equal(rcodeOf(u.probe), 'NOERROR');
    const t = await tcp(port, [framed(probe())], { count: 1 });
    assert.equal(t.answers.length, 1);
    assert.equal(rcodeOf(t.answers[0]!), 'NOERROR');
    assert.equal(t.answers[0]!.readUInt16BE(6), 1, 'one answer record');
  }

  const MALFORMED: [name: string, msg: () => Buffer, expect: Expect][] = [
    ['a compression pointer to itself (loop)', () => Buffer.concat([HEADER(8, 0, 1), Buffer.from([0xc0, 12]), TYPE_A_IN]), 'FORMERR'],
    ['two compression pointers pointing at each other', () => Buffer.concat([HEADER(10, 0, 1), Buffer.from([1, 0x61, 0xc0, 14, 0xc0, 12]), TYPE_A_IN]), 'FORMERR'],
    ['a compression pointer past the end', () => Buffer.concat([HEADER(9, 0, 1), Buffer.from([0xc0, 0xff]), TYPE_A_IN]), 'FORMERR'],
    ['a label longer than what is left (lying length)', () => Buffer.concat([HEADER(15, 0, 1), Buffer.from([40, 0x61, 0x62])]), 'FORMERR'],
    ['a 64-byte label', () => Buffer.concat([HEADER(12, 0, 1), label(64), Buffer.from([0]), TYPE_A_IN]), 'FORMERR'],
    ['a name longer than 255 bytes', () => Buffer.concat([HEADER(13, 0, 1), label(63), label(63), label(63), label(63), label(10), Buffer.from([0]), TYPE_A_IN]), 'FORMERR'],
    ['a question cut in its type (truncated message)', () => Buffer.concat([HEADER(16, 0, 1), QUESTION.subarray(0, 18)]), 'FORMERR'],
    ['a name without its root label (truncated message)', () => Buffer.concat([HEADER(14, 0, 1), Buffer.from([3, 0x77, 0x77, 0x77])]), 'FORMERR'],
    ['ARCOUNT lying about a record that is not there (after the same question was answered and cached)', () => Buffer.concat([HEADER(20, 0, 1, 0, 0, 1), QUESTION]), 'FORMERR'],
    ['QDCOUNT 65535 with one question', () => Buffer.concat([HEADER(4, 0, 65535), QUESTION]), 'FORMERR'],
    ['an OPT record whose rdata length runs past the end', () => Buffer.concat([HEADER(24, 0, 1, 0, 0, 1), QUESTION, Buffer.from([0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 200])]), 'FORMERR'],
    ['an extra record whose length runs past the end', () => Buffer.concat([HEADER(30, 0, 1, 0, 0, 1), QUESTION, Buffer.from([0, 0, 16, 0, 1, 0, 0, 0, 0, 0xff, 0xff])]), 'FORMERR'],
    ['a reserved label type (0x80)', () => Buffer.concat([HEADER(12, 0, 1), Buffer.from([0x81, 0x61, 0]), TYPE_A_IN]), 'FORMERR'],
    ['a response instead of a query (QR set)', () => Buffer.concat([HEADER(1, 0x8000, 1), QUESTION]), 'drop'],
    ['a message shorter than its header', () => Buffer.alloc(11, 0xff), 'drop'],
    ['opcode UPDATE', () => Buffer.concat([HEADER(7, 5 << 11, 1), QUESTION]), 'NOTIMP'],
    ['a zone transfer (AXFR)', () => Buffer.concat([HEADER(32, 0, 1), QUESTION.subarray(0, 17), Buffer.from([0, 252, 0, 1])]), 'REFUSED'],
  ];
  for (const [name, msg, expect] of MALFORMED) {
    test(`UDP: ${name} is answered ${expect}`, async () => {
      const r = await udpThenProbe(port, msg());
      assert.equal(r.first, expect);
      assert.equal(rcodeOf(r.probe), 'NOERROR');
      await assertHealthy();
    });
  }

  test('UDP: a 64 KB datagram of garbage is refused (FORMERR) or dropped', async () => {
    const r = await udpThenProbe(port, Buffer.alloc(65_000, 0xc0));
    assert.ok(r.first === 'FORMERR' || r.first === 'drop', r.first);
    await assertHealthy();
  });

  for (const [name, msg, expect] of MALFORMED.filter(([, , e]) => e !== 'drop').slice(0, 6)) {
    test(`TCP: ${name} is answered ${expect} and the connection goes on`, async () => {
      const r = await tcp(port, [framed(msg()), framed(probe())], { count: 2 });
      assert.equal(rcodeOf(r.answers[0]!), expect);
      assert.equal(r.answers[1]!.readUInt16BE(0), PROBE_ID);
      assert.equal(rcodeOf(r.answers[1]!), 'NOERROR');
      await assertHealthy();
    });
  }

  test('TCP: a length prefix larger than what follows, then a half-close: no answer, closed', async () => {
    const r = await tcp(port, [Buffer.from([0x01, 0x00]), probe()], { end: true });
    assert.ok(r.closed);
    assert.equal(r.answers.length, 0);
    await assertHealthy();
  });

  test('TCP: a length prefix larger than what follows, then silence: closed at tcp.idleTimeout', async () => {
    const r = await tcp(port, [Buffer.from([0xff, 0xff]), probe()]);
    assert.ok(r.closed);
    assert.equal(r.answers.length, 0);
    await assertHealthy();
  });

  test('TCP: the largest length (65535) of garbage is refused and the next query answered', async () => {
    const r = await tcp(port, [framed(Buffer.alloc(65_535, 0xc0)), framed(probe())], { count: 1 });
    const last = r.answers[r.answers.length - 1]!;
    assert.equal(last.readUInt16BE(0), PROBE_ID);
    assert.equal(rcodeOf(last), 'NOERROR');
    await assertHealthy();
  });

  test('TCP: zero-length messages get no answer and the query after them is answered', async () => {
    const r = await tcp(port, [Buffer.alloc(20, 0), framed(probe())], { count: 1 });
    assert.equal(r.answers[0]!.readUInt16BE(0), PROBE_ID);
    await assertHealthy();
  });

  test('TCP: a length prefix shorter than the message (lying length) is answered FORMERR', async () => {
    const q = probe();
    const r = await tcp(port, [Buffer.from([0, 20]), q], { count: 1 });
    assert.equal(rcodeOf(r.answers[0]!), 'FORMERR');
    await assertHealthy();
  });

  test('TCP: a query split over one write per byte is answered', async () => {
    const all = framed(probe());
    const r = await tcp(port, [...all].map((b) => Buffer.from([b])), { count: 1 });
    assert.equal(rcodeOf(r.answers[0]!), 'NOERROR');
  });

  test('TCP: 200 pipelined queries in one write get 200 answers in order', async () => {
    const qs = Array.from({ length: 200 }, (_, i) => framed(query('www.example.com', 'A', { id: i + 1 })));
    const r = await tcp(port, [Buffer.concat(qs)], { count: 200 });
    assert.deepEqual(r.answers.map((a) => a.readUInt16BE(0)), Array.from({ length: 200 }, (_, i) => i + 1));
  });

  test('TCP: a client that connects and sends nothing is closed at tcp.idleTimeout', async () => {
    const r = await tcp(port, []);
    assert.ok(r.closed);
    await assertHealthy();
  });

  test('TCP: a query dripped one byte every 100 ms (slow client) is cut at tcp.idleTimeout', async () => {
    const all = framed(query('www.example.com', 'A', { id: 9 }));
    const r = await tcp(port, [all], { drip: 100 });
    assert.ok(r.closed);
    assert.equal(r.answers.length, 0, 'never answered');
    assert.ok(r.written < all.length, `cut after ${r.written} of ${all.length} bytes`);
    await assertHealthy();
  });

  test('TCP: zero-length messages sent to keep a connection open do not: it is closed at tcp.idleTimeout', async () => {
    const r = await tcp(port, [Buffer.alloc(400, 0)], { drip: 100 });
    assert.ok(r.closed);
    assert.ok(r.written < 400, `cut after ${r.written} bytes`);
    await assertHealthy();
  });

  test('TCP: a client that sends 5,000 queries and does not read does not hold up other clients', async () => {
    const qs = Buffer.concat(Array.from({ length: 5000 }, (_, i) => framed(query('www.example.com', 'A', { id: i & 0xffff }))));
    const sock = netConnect(port, '127.0.0.1');
    sock.on('error', () => {});
    try {
      sock.pause();
      await new Promise((r) => sock.once('connect', r));
      sock.write(qs);
      // While its answers pile up unread (the listener stops reading from it), others are served.
      await assertHealthy();
      await assertHealthy();
    } finally {
      sock.destroy();
    }
    await assertHealthy();
  });

  test('TCP: connections above tcp.maxConnections are refused at once, the others kept', async () => {
    const socks: Socket[] = [];
    try {
      for (let i = 0; i < 8; i++) {
        const s = netConnect(port, '127.0.0.1');
        s.on('error', () => {});
        socks.push(s);
        await new Promise((r) => s.once('connect', r));
      }
      const extra = await tcp(port, [framed(probe())]);
      assert.ok(extra.closed);
      assert.equal(extra.answers.length, 0, 'the ninth connection is not served');
    } finally {
      for (const s of socks) s.destroy();
    }
    // The eight are gone: new connections are served again.
    let served = false;
    for (let i = 0; i < 100 && !served; i++) {
      const r = await tcp(port, [framed(probe())], { count: 1 });
      served = r.answers.length === 1;
    }
    assert.ok(served);
  });
});
