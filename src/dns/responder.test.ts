import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import { createPortico } from '../app/app.js';
import type { DnsListenerConfig } from '../config/types.js';
import { ManualClock } from '../core/clock.js';
import { SeededRng } from '../core/rng.js';
import { serverId } from '../core/server.js';
import type { Pool } from '../pool/pool.js';
import { buildDnsListener } from './build.js';
import type { Responder } from './responder.js';
import { query, read, type Reply } from './testing.js';

interface Setup {
  responder: Responder;
  pools: ReadonlyMap<string, Pool>;
  ask(name: string, type: Parameters<typeof query>[1], o?: Parameters<typeof query>[2] & { tcp?: boolean; from?: string }): Reply;
}

function setup(listener: Record<string, unknown>, pools: unknown[]): Setup {
  const p = createPortico({
    admin: { enabled: false },
    log: { level: 'error' },
    listeners: [{ name: 'dns', protocol: 'dns', listen: '127.0.0.1:0', responseRateLimit: false, ...listener }],
    pools,
  });
  const lc = p.config.listeners[0] as DnsListenerConfig;
  const l = buildDnsListener(lc, p.pools, { rng: new SeededRng(7), clock: new ManualClock(), nowSec: 1_700_000_000 });
  const responder = l.responder;
  return {
    responder,
    pools: p.pools,
    ask(name, type, o = {}) {
      const out = responder.handle(query(name, type, o), o.tcp === true ? 'tcp' : 'udp', o.from ?? '192.0.2.200');
      assert.ok(out !== undefined, 'expected a response');
      return read(out);
    },
  };
}

const WEB = {
  name: 'web',
  servers: [
    { name: 'w1', address: '192.0.2.1:80' },
    { name: 'w2', address: '192.0.2.2:80' },
    { name: 'w3', address: '192.0.2.3:80' },
  ],
};

describe('dns responder: zones and records', () => {
  const s = setup(
    {
      zones: [
        {
          name: 'example.com',
          nameservers: ['ns1.example.com', 'ns2.example.net'],
          soa: { email: 'admin.example.com', serial: 2024010101, minimum: 5 },
          records: [
            { name: 'www', type: 'A', pool: 'web', answers: 1 },
            { name: 'all', type: 'A', pool: 'web' },
            { name: 'short', type: 'A', pool: 'web', ttl: 3 },
            { name: 'ns1', type: 'A', values: ['192.0.2.53'] },
            { name: 'txt', type: 'TXT', values: ['v=spf1 -all', 'second'] },
            { name: '@', type: 'MX', values: ['10 mail.example.com'] },
            { name: 'alias', type: 'CNAME', values: ['all.example.com'] },
            { name: 'outside', type: 'CNAME', values: ['www.example.org'] },
            { name: 'loop1', type: 'CNAME', values: ['loop2.example.com'] },
            { name: 'loop2', type: 'CNAME', values: ['loop1.example.com'] },
            { name: 'a.b.c', type: 'A', values: ['192.0.2.9'] },
            { name: '*.wild', type: 'A', values: ['192.0.2.10'] },
            { name: 'sub', type: 'NS', values: ['ns.sub.example.com'] },
            { name: 'ns.sub', type: 'A', values: ['192.0.2.54'] },
            { name: '_http._tcp', type: 'SRV', pool: 'web' },
          ],
        },
        { name: 'other.test', records: [{ name: 'x', type: 'AAAA', values: ['2001:db8::1'] }] },
      ],
    },
    [WEB],
  );

  it('rotates the servers of a pool-backed record, one per answer', () => {
    const seen = [0, 1, 2, 3, 4, 5].map(() => s.ask('www.example.com', 'A').data('A'));
    for (const d of seen) assert.equal(d.length, 1);
    assert.deepEqual(seen.map((d) => d[0]), ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.1', '192.0.2.2', '192.0.2.3']);
    const all = [0, 1, 2].map(() => s.ask('all.example.com', 'A').data('A'));
    assert.deepEqual(all.map((d) => d[0]), ['192.0.2.1', '192.0.2.2', '192.0.2.3']);
    assert.deepEqual([...all[1]!].sort(), ['192.0.2.1', '192.0.2.2', '192.0.2.3']);
  });

  it('answers carry the zone TTL (20 s by default) or the record TTL; AA is set', () => {
    const r = s.ask('all.example.com', 'A');
    assert.equal(r.rcode, 'NOERROR');
    assert.ok(r.aa);
    assert.ok(r.packet.answers!.every((a) => (a as { ttl: number }).ttl === 20));
    assert.ok(s.ask('short.example.com', 'A').packet.answers!.every((a) => (a as { ttl: number }).ttl === 3));
  });

  it('serves SOA and NS at the apex', () => {
    const soa = s.ask('example.com', 'SOA');
    assert.equal(soa.packet.answers!.length, 1);
    const d = (soa.packet.answers![0] as { data: dnsPacket.SoaData }).data;
    assert.equal(d.mname, 'ns1.example.com');
    assert.equal(d.rname, 'admin.example.com');
    assert.equal(d.serial, 2024010101);
    assert.equal(d.minimum, 5);
    const ns = s.ask('example.com', 'NS');
    assert.deepEqual(ns.data('NS').sort(), ['ns1.example.com', 'ns2.example.net']);
    // glue for the in-zone name server
    assert.deepEqual(ns.packet.additionals!.filter((a) => a.type === 'A').map((a) => (a as { data: string }).data), ['192.0.2.53']);
    // defaults: ns1.ZONE and hostmaster.ZONE
    const other = (s.ask('other.test', 'SOA').packet.answers![0] as { data: dnsPacket.SoaData }).data;
    assert.equal(other.mname, 'ns1.other.test');
    assert.equal(other.rname, 'hostmaster.other.test');
    assert.equal(other.serial, 1_700_000_000);
  });

  it('NXDOMAIN for a name that does not exist, NODATA for a type it lacks; both with the SOA and the negative TTL', () => {
    const nx = s.ask('nope.example.com', 'A');
    assert.equal(nx.rcode, 'NXDOMAIN');
    assert.ok(nx.aa);
    assert.equal(nx.packet.answers!.length, 0);
    assert.equal(nx.packet.authorities![0]!.type, 'SOA');
    assert.equal((nx.packet.authorities![0] as { ttl: number }).ttl, 5);
    const nodata = s.ask('www.example.com', 'AAAA');
    assert.equal(nodata.rcode, 'NOERROR');
    assert.equal(nodata.packet.answers!.length, 0);
    assert.equal(nodata.packet.authorities![0]!.type, 'SOA');
    // an empty non-terminal exists: NODATA, not NXDOMAIN
    assert.equal(s.ask('b.c.example.com', 'A').rcode, 'NOERROR');
    assert.equal(s.ask('c.example.com', 'A').rcode, 'NOERROR');
    assert.equal(s.ask('x.a.b.c.example.com', 'A').rcode, 'NXDOMAIN');
  });

  it('names are case-insensitive and the question is echoed as asked', () => {
    const r = s.ask('WwW.ExAmPlE.CoM', 'A');
    assert.equal(r.rcode, 'NOERROR');
    assert.equal(r.packet.questions![0]!.name, 'WwW.ExAmPlE.CoM');
    assert.equal(r.data('A').length, 1);
  });

  it('static records: TXT, MX, AAAA in a second zone; REFUSED outside every zone', () => {
    assert.deepEqual(s.ask('txt.example.com', 'TXT').data('TXT').sort(), ['second', 'v=spf1 -all']);
    assert.deepEqual(s.ask('example.com', 'MX').data('MX'), [JSON.stringify({ preference: 10, exchange: 'mail.example.com' })]);
    assert.deepEqual(s.ask('x.other.test', 'AAAA').data('AAAA'), ['2001:db8::1']);
    const refused = s.ask('www.example.org', 'A');
    assert.equal(refused.rcode, 'REFUSED');
    assert.ok(!refused.aa);
    assert.equal(s.ask('notexample.com', 'A').rcode, 'REFUSED');
  });

  it('CNAME chains are followed inside the zones served, and stop at a loop or an outside name', () => {
    const r = s.ask('alias.example.com', 'A');
    assert.deepEqual(r.data('CNAME'), ['all.example.com']);
    assert.equal(r.data('A').length, 3);
    assert.equal(s.ask('alias.example.com', 'CNAME').data().length, 1);
    const out = s.ask('outside.example.com', 'A');
    assert.equal(out.rcode, 'NOERROR');
    assert.deepEqual(out.data(), ['www.example.org']);
    const loop = s.ask('loop1.example.com', 'A');
    assert.equal(loop.rcode, 'NOERROR');
    assert.deepEqual(loop.data(), ['loop2.example.com', 'loop1.example.com']);
  });

  it('wildcards answer for names below them that do not exist', () => {
    const r = s.ask('anything.wild.example.com', 'A');
    assert.deepEqual(r.data('A'), ['192.0.2.10']);
    assert.equal(r.packet.answers![0]!.name, 'anything.wild.example.com');
    assert.equal(s.ask('wild.example.com', 'A').rcode, 'NOERROR'); // the parent is an empty non-terminal
  });

  it('a name below a delegation gets a referral (no AA, NS in authority, glue)', () => {
    const r = s.ask('host.sub.example.com', 'A');
    assert.equal(r.rcode, 'NOERROR');
    assert.ok(!r.aa);
    assert.equal(r.packet.answers!.length, 0);
    assert.deepEqual(r.packet.authorities!.map((a) => (a as { data: string }).data), ['ns.sub.example.com']);
    assert.deepEqual(r.packet.additionals!.filter((a) => a.type === 'A').map((a) => (a as { data: string }).data), ['192.0.2.54']);
  });

  it('SRV from a pool: priority, weight, port, and the targets resolve with glue', () => {
    const r = s.ask('_http._tcp.example.com', 'SRV');
    const srv = r.packet.answers!.map((a) => (a as { data: dnsPacket.SrvData }).data);
    assert.equal(srv.length, 3);
    for (const d of srv) {
      assert.equal(d.priority, 10);
      assert.equal(d.weight, 1);
      assert.equal(d.port, 80);
      assert.match(d.target, /^w[123]\._http\._tcp\.example\.com$/);
    }
    assert.equal(r.packet.additionals!.filter((a) => a.type === 'A').length, 3);
    assert.deepEqual(s.ask('w2._http._tcp.example.com', 'A').data('A'), ['192.0.2.2']);
    assert.equal(s.ask('w9._http._tcp.example.com', 'A').rcode, 'NXDOMAIN');
  });

  it('ANY gets a single RRset (RFC 8482)', () => {
    const r = s.ask('example.com', 'ANY');
    assert.equal(r.rcode, 'NOERROR');
    assert.equal(new Set(r.packet.answers!.map((a) => a.type)).size, 1);
  });

  it('class CH and zone transfers are refused', () => {
    assert.equal(s.ask('example.com', 'TXT', { klass: 'CH' }).rcode, 'REFUSED');
    assert.equal(s.ask('example.com', 'AXFR' as never).rcode, 'REFUSED');
  });
});

describe('dns responder: health', () => {
  it('a server marked down leaves the answers at once; with none available the fallback answers', () => {
    const s = setup(
      {
        zones: [
          {
            name: 'example.com',
            records: [
              { name: 'www', type: 'A', pool: 'web' },
              { name: 'sorry', type: 'A', pool: 'web', fallback: ['198.51.100.99'] },
            ],
          },
        ],
      },
      [WEB],
    );
    const pool = s.pools.get('web')!;
    const ips = (name: string): string[] => s.ask(name, 'A').data('A').sort();
    assert.deepEqual(ips('www.example.com'), ['192.0.2.1', '192.0.2.2', '192.0.2.3']);
    pool.setOp(serverId('web', 'w2'), 'down', 'probe');
    assert.deepEqual(ips('www.example.com'), ['192.0.2.1', '192.0.2.3']);
    pool.setOp(serverId('web', 'w1'), 'down', 'probe');
    pool.setOp(serverId('web', 'w3'), 'down', 'probe');
    // none available: `fallback: all` answers with every server, a sorry address replaces them
    assert.deepEqual(ips('www.example.com'), ['192.0.2.1', '192.0.2.2', '192.0.2.3']);
    assert.deepEqual(ips('sorry.example.com'), ['198.51.100.99']);
    pool.setOp(serverId('web', 'w3'), 'up', 'probe');
    assert.deepEqual(ips('www.example.com'), ['192.0.2.3']);
    assert.deepEqual(ips('sorry.example.com'), ['192.0.2.3']);
    // maint is left out of `fallback: all` too
    pool.setAdmin('w3', 'maint');
    assert.deepEqual(ips('www.example.com'), ['192.0.2.1', '192.0.2.2']);
  });
});

describe('dns responder: sizes, EDNS and truncation', () => {
  const many = {
    name: 'big',
    servers: Array.from({ length: 40 }, (_, i) => ({ name: `s${i}`, address: `198.51.100.${i + 1}:80` })),
  };
  const s = setup({ maxUdpSize: 1232, zones: [{ name: 'example.com', records: [{ name: 'big', type: 'A', pool: 'big' }, { name: 'small', type: 'A', pool: 'big', answers: 2 }] }] }, [many]);

  it('an answer larger than 512 bytes is truncated over UDP without EDNS, and complete over TCP', () => {
    const udp = s.ask('big.example.com', 'A');
    assert.ok(udp.tc);
    assert.equal(udp.packet.answers!.length, 0);
    assert.ok(udp.size <= 512);
    const tcp = s.ask('big.example.com', 'A', { tcp: true });
    assert.ok(!tcp.tc);
    assert.equal(tcp.data('A').length, 40);
    assert.ok(tcp.size > 512);
  });

  it("EDNS: the client's size is honoured (at least 512, at most maxUdpSize)", () => {
    // 40 A records: 1,273 bytes with every name in full, 686 compressed (each owner name a pointer).
    const fits = s.ask('big.example.com', 'A', { edns: 1232 });
    assert.ok(!fits.tc);
    assert.equal(fits.data('A').length, 40);
    assert.ok(fits.size < 700, `${fits.size} bytes`);
    const opt = fits.packet.additionals!.find((a) => a.type === 'OPT') as { udpPayloadSize: number };
    assert.equal(opt.udpPayloadSize, 1232);
    assert.ok(s.ask('big.example.com', 'A', { edns: 100 }).tc, 'below 512 counts as 512');
    const small = s.ask('small.example.com', 'A', { edns: 100 });
    assert.ok(!small.tc);
    assert.equal(small.data('A').length, 2);
  });

  it('a version above 0 gets BADVERS', () => {
    const buf = s.responder.handle(query('small.example.com', 'A', { ednsVersion: 1 }), 'udp', '192.0.2.1')!;
    const r = read(buf);
    const opt = r.packet.additionals!.find((a) => a.type === 'OPT') as { extendedRcode: number };
    assert.equal(opt.extendedRcode, 1);
    assert.equal(buf.readUInt16BE(2) & 0xf, 0);
    assert.equal(r.packet.answers!.length, 0);
  });
});

describe('dns responder: geo with EDNS Client Subnet', () => {
  const s = setup(
    {
      geo: { regions: { eu: ['10.1.0.0/16'], us: ['10.2.0.0/16'] }, fallback: { eu: ['us'], us: ['eu'] } },
      proximity: { eu: { eu: 0, us: 80 }, us: { us: 0, eu: 80 } },
      zones: [{ name: 'example.com', records: [{ name: 'geo', type: 'A', pool: 'web', policy: 'geo' }, { name: 'near', type: 'A', pool: 'web', policy: 'nearest' }, { name: 'rr', type: 'A', pool: 'web' }] }],
    },
    [
      {
        name: 'web',
        servers: [
          { name: 'eu1', address: '192.0.2.11:80', region: 'eu' },
          { name: 'eu2', address: '192.0.2.12:80', site: 'eu' },
          { name: 'us1', address: '192.0.2.21:80', region: 'us' },
        ],
      },
    ],
  );

  it('answers from the region of the client subnet, and echoes ECS with a scope', () => {
    const eu = s.ask('geo.example.com', 'A', { subnet: '10.1.7.0/24' });
    assert.deepEqual(eu.data('A').sort(), ['192.0.2.11', '192.0.2.12']);
    const ecs = (eu.packet.additionals!.find((a) => a.type === 'OPT') as { options: { code: number; scopePrefixLength: number; sourcePrefixLength: number }[] }).options[0]!;
    assert.equal(ecs.code, 8);
    assert.equal(ecs.sourcePrefixLength, 24);
    assert.equal(ecs.scopePrefixLength, 24);
    const us = s.ask('geo.example.com', 'A', { subnet: '10.2.7.0/24' });
    assert.deepEqual(us.data('A'), ['192.0.2.21']);
    assert.deepEqual(s.ask('near.example.com', 'A', { subnet: '10.2.7.0/24' }).data('A'), ['192.0.2.21']);
    // an answer that does not depend on the client has scope 0
    const rr = s.ask('rr.example.com', 'A', { subnet: '10.2.7.0/24' });
    assert.equal((rr.packet.additionals!.find((a) => a.type === 'OPT') as { options: { scopePrefixLength: number }[] }).options[0]!.scopePrefixLength, 0);
  });

  it('without ECS the source address decides; unknown clients get every server', () => {
    assert.deepEqual(s.ask('geo.example.com', 'A', { from: '10.2.0.5' }).data('A'), ['192.0.2.21']);
    assert.deepEqual(s.ask('geo.example.com', 'A', { from: '203.0.113.5' }).data('A').sort(), ['192.0.2.11', '192.0.2.12', '192.0.2.21']);
  });

  it('a region with no available server falls back in order', () => {
    s.pools.get('web')!.setOp(serverId('web', 'us1'), 'down', 'probe');
    try {
      assert.deepEqual(s.ask('geo.example.com', 'A', { subnet: '10.2.7.0/24' }).data('A').sort(), ['192.0.2.11', '192.0.2.12']);
      assert.deepEqual(s.ask('near.example.com', 'A', { subnet: '10.2.7.0/24' }).data('A').sort(), ['192.0.2.11', '192.0.2.12']);
    } finally {
      s.pools.get('web')!.setOp(serverId('web', 'us1'), 'up', 'probe');
    }
  });

  it('a malformed client subnet gets FORMERR', () => {
    // 10.1.7.0/22: the address has bits set past its prefix length
    const opt = dnsPacket.encode({
      id: 1,
      type: 'query',
      questions: [{ name: 'geo.example.com', type: 'A' }],
      additionals: [{ name: '.', type: 'OPT', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [{ code: 8, data: Buffer.from([0, 1, 22, 0, 10, 1, 7]) }] } as never],
    });
    assert.equal(read(s.responder.handle(opt, 'udp', '192.0.2.1')!).rcode, 'FORMERR');
  });
});

describe('dns responder: answer cache', () => {
  const s = setup(
    {
      geo: { regions: { eu: ['10.1.0.0/16'], us: ['10.2.0.0/16'] } },
      zones: [
        {
          name: 'example.com',
          records: [
            { name: 'www', type: 'A', pool: 'web', answers: 1 },
            { name: 'geo', type: 'A', pool: 'geo', policy: 'geo' },
            { name: 'weighted', type: 'A', pool: 'web', policy: 'weighted', answers: 1 },
            { name: '_http._tcp', type: 'SRV', pool: 'web' },
          ],
        },
      ],
    },
    [
      WEB,
      {
        name: 'geo',
        servers: [
          { name: 'eu1', address: '192.0.2.11:80', region: 'eu' },
          { name: 'us1', address: '192.0.2.21:80', region: 'us' },
        ],
      },
    ],
  );
  const raw = (name: string, type: Parameters<typeof query>[1], id: number, from = '192.0.2.200'): Buffer =>
    s.responder.handle(query(name, type, { id }), 'udp', from)!;

  it('a repeated question is answered from the cache with its own id, and rotation goes on', () => {
    const seen: string[] = [];
    let cached = 0;
    for (let i = 0; i < 9; i++) {
      const buf = raw('www.example.com', 'A', 100 + i);
      if (s.responder.outcome.cached) cached++;
      const r = read(buf);
      assert.equal(r.packet.id, 100 + i);
      seen.push(r.data('A')[0]!);
    }
    assert.ok(cached >= 5, `${cached} cached`);
    assert.deepEqual(seen.slice(3), seen.slice(0, 6));
    assert.equal(new Set(seen).size, 3);
  });

  it('RD is copied from each query', () => {
    const q = query('www.example.com', 'A', { id: 7 });
    q[2] = q[2]! & 0xfe; // RD off
    raw('www.example.com', 'A', 1);
    const out = s.responder.handle(q, 'udp', '192.0.2.200')!;
    assert.equal(out[2]! & 0x01, 0);
    assert.equal(raw('www.example.com', 'A', 8)[2]! & 0x01, 1);
  });

  it('a health change invalidates cached answers at once', () => {
    for (let i = 0; i < 6; i++) raw('www.example.com', 'A', i);
    const pool = s.pools.get('web')!;
    pool.setOp(serverId('web', 'w1'), 'down', 'probe');
    try {
      const after = new Set(Array.from({ length: 6 }, (_, i) => read(raw('www.example.com', 'A', i)).data('A')[0]));
      assert.deepEqual([...after].sort(), ['192.0.2.2', '192.0.2.3']);
    } finally {
      pool.setOp(serverId('web', 'w1'), 'up', 'probe');
    }
  });

  it('geo answers placed by the source address are kept per region', () => {
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(read(raw('geo.example.com', 'A', i, '10.1.0.9')).data('A'), ['192.0.2.11']);
      assert.deepEqual(read(raw('geo.example.com', 'A', i, '10.2.0.9')).data('A'), ['192.0.2.21']);
    }
  });

  it('weighted answers are drawn for every query, never cached', () => {
    for (let i = 0; i < 5; i++) {
      raw('weighted.example.com', 'A', i);
      assert.equal(s.responder.outcome.cached, false);
    }
  });

  it('a server removed from the pool: its SRV target stops resolving although it was cached', () => {
    assert.deepEqual(read(raw('w3._http._tcp.example.com', 'A', 1)).data('A'), ['192.0.2.3']);
    assert.deepEqual(read(raw('w3._http._tcp.example.com', 'A', 2)).data('A'), ['192.0.2.3']);
    const pool = s.pools.get('web')!;
    const w3 = pool.byName('w3')!.server;
    pool.remove('w3');
    try {
      assert.equal(read(raw('w3._http._tcp.example.com', 'A', 3)).rcode, 'NXDOMAIN');
    } finally {
      pool.add(w3, 'ready', 'up');
    }
  });
});
