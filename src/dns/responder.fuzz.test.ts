import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { createPortico } from '../app/app.js';
import type { DnsListenerConfig } from '../config/types.js';
import { ManualClock } from '../core/clock.js';
import { SeededRng } from '../core/rng.js';
import { fuzzParams } from '../test-helpers/fuzz.js';
import { buildDnsListener } from './build.js';
import type { Responder } from './responder.js';

/**
 * Grammar-based fuzzing of the DNS responder: messages built with dns-packet (the oracle's encoder
 * and decoder) from generated ids, flags, opcodes, questions in and out of the zone, classes, types,
 * EDNS (sizes, versions, client-subnet options) and extra records, over UDP and TCP, then the same
 * with bytes changed. Every response must decode, answer the query's id and question, say it is a
 * response, fit the size the client can take over UDP (or be truncated), and carry answers only for
 * what was asked.
 */

const MAX_UDP = 1232;

function responder(): Responder {
  const p = createPortico({
    admin: { enabled: false },
    log: { level: 'error' },
    listeners: [
      {
        name: 'dns',
        protocol: 'dns',
        listen: '127.0.0.1:0',
        maxUdpSize: MAX_UDP,
        zones: [{ name: 'example.com', records: [{ name: 'www', type: 'A', pool: 'web' }, { name: 'www', type: 'AAAA', pool: 'web' }, { name: 'txt', type: 'TXT', values: ['hello'] }] }],
      },
    ],
    pools: [{ name: 'web', servers: Array.from({ length: 40 }, (_, i) => ({ name: `s${i}`, address: `192.0.2.${i + 1}:80` })) }],
  });
  return buildDnsListener(p.config.listeners[0] as DnsListenerConfig, p.pools, { rng: new SeededRng(5), clock: new ManualClock() }).responder;
}

const label = fc.stringMatching(/^[a-z0-9-]{1,12}$/);
const qname = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('www.example.com', 'WWW.Example.COM', 'example.com', 'txt.example.com', 'nx.example.com', 'a.b.www.example.com') },
  { weight: 2, arbitrary: fc.array(label, { minLength: 1, maxLength: 4 }).map((ls) => [...ls, 'example', 'com'].join('.')) },
  { weight: 1, arbitrary: fc.domain() },
  { weight: 1, arbitrary: fc.constantFrom('.', 'com', 'example.org', 'localhost') },
);
const qtype = fc.constantFrom('A', 'AAAA', 'ANY', 'TXT', 'SOA', 'NS', 'CNAME', 'MX', 'SRV', 'PTR', 'CAA', 'HTTPS', 'AXFR', 'IXFR', 'OPT');
const qclass = fc.oneof({ weight: 6, arbitrary: fc.constant('IN') }, { weight: 1, arbitrary: fc.constantFrom('CH', 'HS', 'ANY', 'NONE') });

const ednsOpt = fc.record({
  udpPayloadSize: fc.oneof(fc.constantFrom(0, 1, 511, 512, 1232, 4096, 65535), fc.nat(65535)),
  version: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat(255) }),
  ecs: fc.option(
    fc.oneof(
      fc.record({ family: fc.constant(1), sourcePrefixLength: fc.nat(32), ip: fc.ipV4() }),
      fc.record({ family: fc.constant(2), sourcePrefixLength: fc.nat(128), ip: fc.constantFrom('2001:db8::1', '::1', '2a00::') }),
    ),
    { nil: undefined },
  ),
});

const query = fc.record({
  id: fc.nat(65535),
  opcode: fc.oneof({ weight: 8, arbitrary: fc.constant('QUERY') }, { weight: 1, arbitrary: fc.constantFrom('IQUERY', 'STATUS', 'NOTIFY', 'UPDATE') }),
  rd: fc.boolean(),
  cd: fc.boolean(),
  qr: fc.oneof({ weight: 12, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  questions: fc.oneof({ weight: 10, arbitrary: fc.array(fc.record({ name: qname, type: qtype, class: qclass }), { minLength: 1, maxLength: 1 }) }, { weight: 1, arbitrary: fc.array(fc.record({ name: qname, type: qtype, class: qclass }), { maxLength: 3 }) }),
  edns: fc.option(ednsOpt, { nil: undefined }),
  extra: fc.array(fc.record({ name: qname, type: fc.constant('A' as const), ttl: fc.nat(100), data: fc.ipV4() }), { maxLength: 2 }),
  transport: fc.constantFrom('udp' as const, 'tcp' as const),
});

type Query = typeof query extends fc.Arbitrary<infer T> ? T : never;

function encode(q: Query): Buffer {
  const additionals: dnsPacket.Answer[] = q.extra.map((e) => ({ type: 'A', name: e.name, ttl: e.ttl, data: e.data }) as dnsPacket.Answer);
  if (q.edns !== undefined) {
    const options = q.edns.ecs === undefined ? [] : [{ code: 'CLIENT_SUBNET', family: q.edns.ecs.family, sourcePrefixLength: q.edns.ecs.sourcePrefixLength, scopePrefixLength: 0, ip: q.edns.ecs.ip }];
    additionals.push({ type: 'OPT', name: '.', udpPayloadSize: q.edns.udpPayloadSize, extendedRcode: 0, ednsVersion: q.edns.version, flags: 0, options } as unknown as dnsPacket.Answer);
  }
  const flags = (q.qr ? 0x8000 : 0) | ({ QUERY: 0, IQUERY: 1, STATUS: 2, NOTIFY: 4, UPDATE: 5 }[q.opcode]! << 11) | (q.rd ? 0x0100 : 0) | (q.cd ? 0x0010 : 0);
  return dnsPacket.encode({ type: q.qr ? 'response' : 'query', id: q.id, flags, questions: q.questions as dnsPacket.Question[], additionals });
}

describe('dns responder: grammar-based fuzzing with dns-packet', () => {
  const r = responder();

  it('every response decodes, answers the query it was for, and fits what the client can take', () => {
    let answered = 0;
    fc.assert(
      fc.property(query, (q) => {
        const msg = encode(q);
        const out = r.handle(msg, q.transport, '192.0.2.200');
        if (out === undefined) {
          // Dropped: only what is not a question at all (a response, or nothing a responder answers).
          assert.ok(q.qr, `a query was dropped: ${JSON.stringify(q)}`);
          return;
        }
        answered++;
        const res = dnsPacket.decode(out);
        assert.equal(res.id, q.id, 'id');
        assert.equal(res.type, 'response');
        const rcode = (out.readUInt16BE(2) & 0xf) | 0;
        assert.ok([0, 1, 2, 3, 4, 5].includes(rcode), `rcode ${rcode}`);
        if (q.transport === 'udp') {
          // (dns-packet writes a udpPayloadSize of 0 as 4096)
          const size = q.edns === undefined ? 512 : Math.min(Math.max(512, q.edns.udpPayloadSize || 4096), MAX_UDP);
          assert.ok(out.length <= size, `a UDP response of ${out.length} bytes for a client that takes ${size}`);
        }
        // (an EDNS version other than 0 is answered BADVERS, an extended rcode whose low bits are 0)
        if (rcode === 0 && q.questions.length === 1 && q.opcode === 'QUERY' && (q.edns?.version ?? 0) === 0) {
          const norm = (n: string): string => n.toLowerCase().replace(/\.$/, '') || '.';
          const asked = q.questions[0]!;
          assert.equal(res.questions?.length, 1);
          assert.equal(norm(res.questions![0]!.name), norm(asked.name));
          for (const a of res.answers ?? []) {
            assert.equal(norm(a.name), norm(asked.name), 'an answer for another name');
            if (asked.type !== 'ANY') assert.ok(a.type === asked.type || a.type === 'CNAME', `an answer of type ${a.type} to ${asked.type}`);
            if (a.type === 'A') assert.match(String(a.data), /^192\.0\.2\.\d+$/);
          }
        }
      }),
      fuzzParams(3000),
    );
    assert.ok(answered > 1000, `answered ${answered}`);
  });

  it('on the same messages with bytes changed: no throw, and whatever it answers decodes with the query id', () => {
    const mutated = fc.tuple(query, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 }), fc.nat()).map(([q, edits, cut]) => {
      const b = Buffer.from(encode(q));
      for (const [at, byte] of edits) b[at % b.length] = byte;
      return { b: cut % 5 === 0 ? b.subarray(0, cut % (b.length + 1)) : b, transport: q.transport };
    });
    fc.assert(
      fc.property(mutated, ({ b, transport }) => {
        const out = r.handle(b, transport, '192.0.2.200');
        if (out === undefined) return;
        assert.ok(b.length >= 2, 'an answer to less than an id');
        assert.equal(out.readUInt16BE(0), b.readUInt16BE(0), 'id');
        assert.ok((out[2]! & 0x80) !== 0, 'QR');
        dnsPacket.decode(out);
      }),
      fuzzParams(5000),
    );
  });
});
