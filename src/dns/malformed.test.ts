import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import { createPortico } from '../app/app.js';
import type { DnsListenerConfig } from '../config/types.js';
import { ManualClock } from '../core/clock.js';
import { SeededRng } from '../core/rng.js';
import { buildDnsListener } from './build.js';
import type { Responder } from './responder.js';
import { query } from './testing.js';

function responder(maxUdpSize = 1232): Responder {
  const p = createPortico({
    admin: { enabled: false },
    log: { level: 'error' },
    listeners: [
      {
        name: 'dns',
        protocol: 'dns',
        listen: '127.0.0.1:0',
        maxUdpSize,
        zones: [{ name: 'example.com', records: [{ name: 'www', type: 'A', pool: 'web' }] }],
      },
    ],
    pools: [{ name: 'web', servers: Array.from({ length: 60 }, (_, i) => ({ name: `s${i}`, address: `192.0.2.${i + 1}:80` })) }],
  });
  return buildDnsListener(p.config.listeners[0] as DnsListenerConfig, p.pools, { rng: new SeededRng(3), clock: new ManualClock() }).responder;
}

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
/** `www.example.com` IN A, as wire bytes. */
const QUESTION = Buffer.from([3, 0x77, 0x77, 0x77, 7, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 3, 0x63, 0x6f, 0x6d, 0, 0, 1, 0, 1]);
const TYPE_A_IN = Buffer.from([0, 1, 0, 1]);
const label = (n: number, ch = 0x61): Buffer => Buffer.concat([Buffer.from([n]), Buffer.alloc(n, ch)]);
const opt = (rdata: Buffer, name = Buffer.from([0]), version = 0): Buffer => {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(41, 0);
  fixed.writeUInt16BE(1232, 2);
  fixed[5] = version;
  fixed.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([name, fixed, rdata]);
};
const ecs = (family: number, source: number, addr: number[]): Buffer => {
  const data = Buffer.from([0, family, source, 0, ...addr]);
  const head = Buffer.alloc(4);
  head.writeUInt16BE(8, 0);
  head.writeUInt16BE(data.length, 2);
  return Buffer.concat([head, data]);
};

type Expect = 'drop' | 'FORMERR' | 'NOTIMP' | 'REFUSED' | 'any';

/** At least 20 hostile messages and what each must get. */
const CORPUS: [string, Buffer, Expect][] = [
  ['empty datagram', Buffer.alloc(0), 'drop'],
  ['shorter than a header', Buffer.alloc(11), 'drop'],
  ['a response (QR set)', Buffer.concat([HEADER(1, 0x8000, 1), QUESTION]), 'drop'],
  ['QDCOUNT 0', HEADER(2, 0, 0), 'FORMERR'],
  ['QDCOUNT 2', Buffer.concat([HEADER(3, 0, 2), QUESTION, QUESTION]), 'FORMERR'],
  ['QDCOUNT 65535', Buffer.concat([HEADER(4, 0, 65535), QUESTION]), 'FORMERR'],
  ['opcode STATUS', Buffer.concat([HEADER(5, 2 << 11, 1), QUESTION]), 'NOTIMP'],
  ['opcode NOTIFY', Buffer.concat([HEADER(6, 4 << 11, 1), QUESTION]), 'NOTIMP'],
  ['opcode UPDATE', Buffer.concat([HEADER(7, 5 << 11, 1), QUESTION]), 'NOTIMP'],
  ['compression pointer to itself (loop)', Buffer.concat([HEADER(8, 0, 1), Buffer.from([0xc0, 12]), TYPE_A_IN]), 'FORMERR'],
  ['compression pointer forward', Buffer.concat([HEADER(9, 0, 1), Buffer.from([0xc0, 40]), TYPE_A_IN, Buffer.alloc(30)]), 'FORMERR'],
  ['two pointers pointing at each other', Buffer.concat([HEADER(10, 0, 1), Buffer.from([1, 0x61, 0xc0, 14, 0xc0, 12]), TYPE_A_IN]), 'FORMERR'],
  ['label of 64 bytes (0x40 prefix)', Buffer.concat([HEADER(11, 0, 1), label(64), Buffer.from([0]), TYPE_A_IN]), 'FORMERR'],
  ['reserved label type 0x80', Buffer.concat([HEADER(12, 0, 1), Buffer.from([0x81, 0x61, 0]), TYPE_A_IN]), 'FORMERR'],
  ['name longer than 255 bytes', Buffer.concat([HEADER(13, 0, 1), label(63), label(63), label(63), label(63), label(10), Buffer.from([0]), TYPE_A_IN]), 'FORMERR'],
  ['name without its terminating root label', Buffer.concat([HEADER(14, 0, 1), Buffer.from([3, 0x77, 0x77, 0x77])]), 'FORMERR'],
  ['label longer than what is left', Buffer.concat([HEADER(15, 0, 1), Buffer.from([40, 0x61, 0x62])]), 'FORMERR'],
  ['question without type and class', Buffer.concat([HEADER(16, 0, 1), QUESTION.subarray(0, 17)]), 'FORMERR'],
  ['question cut in its class', Buffer.concat([HEADER(17, 0, 1), QUESTION.subarray(0, 20)]), 'FORMERR'],
  ['ANCOUNT 1 in a query', Buffer.concat([HEADER(18, 0, 1, 1), QUESTION]), 'FORMERR'],
  ['NSCOUNT 1 in a query', Buffer.concat([HEADER(19, 0, 1, 0, 1), QUESTION]), 'FORMERR'],
  ['ARCOUNT 1 with nothing after the question', Buffer.concat([HEADER(20, 0, 1, 0, 0, 1), QUESTION]), 'FORMERR'],
  ['ARCOUNT 65535', Buffer.concat([HEADER(21, 0, 1, 0, 0, 65535), QUESTION, opt(Buffer.alloc(0))]), 'FORMERR'],
  ['two OPT records', Buffer.concat([HEADER(22, 0, 1, 0, 0, 2), QUESTION, opt(Buffer.alloc(0)), opt(Buffer.alloc(0))]), 'FORMERR'],
  ['OPT owner name not the root', Buffer.concat([HEADER(23, 0, 1, 0, 0, 1), QUESTION, opt(Buffer.alloc(0), Buffer.from([1, 0x61, 0]))]), 'FORMERR'],
  ['OPT rdata length past the end', Buffer.concat([HEADER(24, 0, 1, 0, 0, 1), QUESTION, opt(Buffer.alloc(0)).subarray(0, 9), Buffer.from([200])]), 'FORMERR'],
  ['EDNS option longer than its OPT', Buffer.concat([HEADER(25, 0, 1, 0, 0, 1), QUESTION, opt(Buffer.from([0, 8, 0, 50, 0, 1]))]), 'FORMERR'],
  ['client subnet of family 3', Buffer.concat([HEADER(26, 0, 1, 0, 0, 1), QUESTION, opt(ecs(3, 8, [10]))]), 'FORMERR'],
  ['client subnet /33 for IPv4', Buffer.concat([HEADER(27, 0, 1, 0, 0, 1), QUESTION, opt(ecs(1, 33, [10, 0, 0, 0, 0]))]), 'FORMERR'],
  ['client subnet with more address bytes than its prefix', Buffer.concat([HEADER(28, 0, 1, 0, 0, 1), QUESTION, opt(ecs(1, 8, [10, 1]))]), 'FORMERR'],
  ['question of type OPT', Buffer.concat([HEADER(29, 0, 1), QUESTION.subarray(0, 17), Buffer.from([0, 41, 0, 1])]), 'FORMERR'],
  ['other record with a length past the end', Buffer.concat([HEADER(30, 0, 1, 0, 0, 1), QUESTION, Buffer.from([0, 0, 16, 0, 1, 0, 0, 0, 0, 0xff, 0xff])]), 'FORMERR'],
  ['pointer into the header', Buffer.concat([HEADER(31, 0, 1), Buffer.from([0xc0, 0]), TYPE_A_IN]), 'any'],
  ['zone transfer over UDP', Buffer.concat([HEADER(32, 0, 1), QUESTION.subarray(0, 17), Buffer.from([0, 252, 0, 1])]), 'REFUSED'],
];

function rcodeOf(buf: Buffer): string {
  return ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'][buf.readUInt16BE(2) & 0xf] ?? 'OTHER';
}

describe('dns responder: malformed messages', () => {
  const r = responder();

  it(`a corpus of ${CORPUS.length} hostile messages gets FORMERR, NOTIMP, REFUSED or nothing, each in bounded time`, () => {
    assert.ok(CORPUS.length >= 20);
    for (const [what, msg, expect] of CORPUS) {
      const t0 = performance.now();
      const out = r.handle(msg, 'udp', '192.0.2.100');
      const ms = performance.now() - t0;
      // A loop or a blow-up would take seconds or forever; 250 ms leaves room for a loaded machine's pauses.
      assert.ok(ms < 250, `${what}: took ${ms.toFixed(1)} ms`);
      if (expect === 'drop') {
        assert.equal(out, undefined, what);
        continue;
      }
      assert.ok(out !== undefined, `${what}: expected a response`);
      assert.ok((out.readUInt16BE(2) & 0x8000) !== 0, `${what}: QR set`);
      assert.equal(out.readUInt16BE(0), msg.readUInt16BE(0), `${what}: the id is kept`);
      dnsPacket.decode(out); // every response is well-formed
      if (expect !== 'any') assert.equal(rcodeOf(out), expect, what);
    }
  });

  it('20000 random mutations of valid queries: never a throw, always a well-formed response or nothing, in bounded time', () => {
    const rng = new SeededRng(20240601);
    const seeds = [
      query('www.example.com', 'A'),
      query('www.example.com', 'A', { edns: 4096 }),
      query('www.example.com', 'A', { subnet: '10.1.2.0/24' }),
      query('nope.example.com', 'AAAA', { edns: 1232 }),
      query('example.com', 'SOA'),
    ];
    const t0 = performance.now();
    let answered = 0;
    for (let i = 0; i < 20000; i++) {
      const base = seeds[i % seeds.length]!;
      const m = Buffer.from(base);
      const edits = 1 + rng.nextInt(4);
      for (let e = 0; e < edits; e++) m[rng.nextInt(m.length)] = rng.nextInt(256);
      const cut = rng.next() < 0.2 ? m.subarray(0, rng.nextInt(m.length + 1)) : m;
      const out = r.handle(cut, rng.next() < 0.5 ? 'udp' : 'tcp', '192.0.2.100');
      if (out === undefined) continue;
      answered++;
      assert.ok((out.readUInt16BE(2) & 0x8000) !== 0);
      dnsPacket.decode(out);
    }
    const ms = performance.now() - t0;
    assert.ok(answered > 1000, `answered ${answered}`);
    assert.ok(ms < 15_000, `took ${ms} ms`);
  });

  it("a client's EDNS size above maxUdpSize is capped", () => {
    const small = responder(600);
    const out = small.handle(query('www.example.com', 'A', { edns: 4096 }), 'udp', '192.0.2.100')!;
    assert.ok(out.length <= 600);
    assert.ok((out.readUInt16BE(2) & 0x0200) !== 0, 'TC set');
  });
});
