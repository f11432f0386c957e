import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import { SeededRng } from '../core/rng.js';
import { compressMessage } from './compress.js';

type Packet = Parameters<typeof dnsPacket.encode>[0];

/** Names from a few labels, so that they share suffixes often. */
function randomName(rng: SeededRng): string {
  const labels = ['www', 'a', 'mail', 'Example', 'example', 'com', 'org', 'x-1', 'api', 'eu'];
  const n = 1 + Math.floor(rng.next() * 4);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(labels[Math.floor(rng.next() * labels.length)]!);
  return out.join('.');
}

function randomRecord(rng: SeededRng): NonNullable<Packet['answers']>[number] {
  const name = randomName(rng);
  switch (Math.floor(rng.next() * 8)) {
    case 0:
      return { type: 'A', name, ttl: 60, data: `192.0.2.${Math.floor(rng.next() * 255)}` };
    case 1:
      return { type: 'AAAA', name, ttl: 60, data: '2001:db8::1' };
    case 2:
      return { type: 'CNAME', name, ttl: 60, data: randomName(rng) };
    case 3:
      return { type: 'NS', name, ttl: 60, data: randomName(rng) };
    case 4:
      return { type: 'MX', name, ttl: 60, data: { preference: 10, exchange: randomName(rng) } };
    case 5:
      return { type: 'SRV', name, ttl: 60, data: { priority: 1, weight: 2, port: 443, target: randomName(rng) } };
    case 6:
      return { type: 'TXT', name, ttl: 60, data: ['hello', randomName(rng)] };
    default:
      return {
        type: 'SOA',
        name,
        ttl: 60,
        data: { mname: randomName(rng), rname: randomName(rng), serial: 7, refresh: 60, retry: 30, expire: 600, minimum: 5 },
      };
  }
}

const decode = (b: Buffer): unknown => {
  const p = dnsPacket.decode(b) as unknown as Record<string, unknown>;
  // The same message apart from how it is written.
  for (const k of ['answers', 'authorities', 'additionals']) {
    for (const r of (p[k] as Record<string, unknown>[]) ?? []) {
      delete r['flush'];
    }
  }
  return p;
};

describe('dns name compression', () => {
  it('property: 2,000 random messages decode to the same message, never longer', () => {
    const rng = new SeededRng(20261123);
    let saved = 0;
    let total = 0;
    for (let i = 0; i < 2000; i++) {
      const packet: Packet = {
        id: i,
        type: 'response',
        flags: dnsPacket.AUTHORITATIVE_ANSWER,
        questions: [{ type: 'A', name: randomName(rng) }],
        answers: Array.from({ length: Math.floor(rng.next() * 8) }, () => randomRecord(rng)),
        authorities: Array.from({ length: Math.floor(rng.next() * 3) }, () => randomRecord(rng)),
        additionals: Array.from({ length: Math.floor(rng.next() * 3) }, () => randomRecord(rng)),
      };
      const plain = dnsPacket.encode(packet);
      const small = compressMessage(plain);
      assert.ok(small.length <= plain.length);
      assert.deepEqual(decode(small), decode(plain), `message ${i}`);
      total += plain.length;
      saved += plain.length - small.length;
    }
    assert.ok(saved / total > 0.04, `saved ${((100 * saved) / total).toFixed(1)}%`);
  });

  it('points owner names at the question, and the tails of NS, CNAME, MX and SOA names at earlier names', () => {
    const plain = dnsPacket.encode({
      id: 1,
      type: 'response',
      questions: [{ type: 'A', name: 'www.example.com' }],
      answers: [
        { type: 'CNAME', name: 'www.example.com', ttl: 5, data: 'web.example.com' },
        { type: 'A', name: 'web.example.com', ttl: 5, data: '192.0.2.1' },
        { type: 'MX', name: 'example.com', ttl: 5, data: { preference: 1, exchange: 'mail.example.com' } },
      ],
      authorities: [{ type: 'NS', name: 'example.com', ttl: 5, data: 'ns1.example.com' }],
    });
    const small = compressMessage(plain);
    // The question is written in full (12 + 17 + 4); every later name is a pointer or a label and a pointer.
    const q = 12 + 17 + 4;
    assert.equal(small.readUInt16BE(q), 0xc000 | 12, 'the CNAME owner points at the question');
    // CNAME rdata: "web" then a pointer to "example.com" (offset 16 in the question).
    const cnameRdata = q + 2 + 10;
    assert.equal(small.readUInt16BE(cnameRdata - 2), 4 + 2, 'rdlength rewritten');
    assert.deepEqual([...small.subarray(cnameRdata, cnameRdata + 4)], [3, 0x77, 0x65, 0x62]);
    assert.equal(small.readUInt16BE(cnameRdata + 4), 0xc000 | 16);
    assert.ok(small.length < plain.length - 40, `${plain.length} → ${small.length}`);
    assert.deepEqual(decode(small), decode(plain));
  });

  it('SRV targets and unknown types are copied as they are (RFC 3597)', () => {
    const plain = dnsPacket.encode({
      id: 1,
      type: 'response',
      questions: [{ type: 'SRV', name: '_http._tcp.example.com' }],
      answers: [{ type: 'SRV', name: '_http._tcp.example.com', ttl: 5, data: { priority: 1, weight: 1, port: 80, target: 'example.com' } }],
    });
    const small = compressMessage(plain);
    const rdata = small.subarray(small.length - (6 + 13));
    assert.deepEqual([...rdata.subarray(6, 8)], [7, 0x65], 'the target is written in full');
    assert.equal(small.length, plain.length - 22, 'only the owner name became a pointer');
  });

  it('keeps the case of each name: a pointer goes only to the same bytes', () => {
    const plain = dnsPacket.encode({
      id: 1,
      type: 'response',
      questions: [{ type: 'A', name: 'WwW.ExAmPlE.CoM' }],
      answers: [{ type: 'A', name: 'www.example.com', ttl: 5, data: '192.0.2.1' }],
    });
    const out = dnsPacket.decode(compressMessage(plain));
    assert.equal(out.questions![0]!.name, 'WwW.ExAmPlE.CoM');
    assert.equal(out.answers![0]!.name, 'www.example.com');
  });

  it('returns a message that does not parse as it is', () => {
    const plain = dnsPacket.encode({ id: 1, type: 'response', questions: [{ type: 'A', name: 'a.example.com' }], answers: [{ type: 'A', name: 'a.example.com', ttl: 5, data: '192.0.2.1' }] });
    for (const bad of [plain.subarray(0, plain.length - 1), Buffer.concat([plain, Buffer.from([0])]), Buffer.from([0, 1, 2])]) {
      assert.equal(compressMessage(bad), bad);
    }
    // A pointer loop in the question.
    const loop = Buffer.from(plain);
    loop.writeUInt16BE(0xc000 | 12, 12);
    assert.equal(compressMessage(loop), loop);
  });
});
