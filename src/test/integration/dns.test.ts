import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createPortico, type Portico, type PorticoDeps } from '../../app/app.js';
import { ManualClock } from '../../core/clock.js';
import { serverId } from '../../core/server.js';
import { query, read, udpQuery as udp } from '../../dns/testing.js';
import { missingBinary } from '../../test-helpers/certs.js';
import { startOrigin, waitFor, type Origin } from '../../test-helpers/origins.js';

/**
 * Several messages on one TCP connection, written at once; the responses in order. Ends when
 * `count` have arrived (unless `waitClose`), when the server closes, or after `ms`.
 */
function tcp(port: number, msgs: Buffer[], count = msgs.length, ms = 2000, waitClose = false): Promise<{ responses: Buffer[]; closedAfterMs: number | undefined }> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    const t0 = Date.now();
    let buf = Buffer.alloc(0);
    const responses: Buffer[] = [];
    let closedAfterMs: number | undefined;
    const finish = (): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ responses, closedAfterMs });
    };
    const timer = setTimeout(finish, ms);
    sock.on('connect', () => {
      sock.write(Buffer.concat(msgs.map((m) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 255]), m]))));
    });
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        responses.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (responses.length >= count && !waitClose) finish();
    });
    sock.on('close', () => {
      closedAfterMs = Date.now() - t0;
      finish();
    });
    sock.on('error', () => undefined);
  });
}

function dig(port: number, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('dig', ['@127.0.0.1', '-p', String(port), '+norec', '+tries=1', '+time=2', ...args], { timeout: 10_000 }, (err, stdout) => {
      if (err !== null && stdout === '') reject(err);
      else resolve(stdout);
    });
  });
}

const ZONE = {
  name: 'example.com',
  ttl: 20,
  records: [
    { name: 'www', type: 'A', pool: 'web', answers: 1 },
    { name: 'all', type: 'A', pool: 'web' },
    { name: 'big', type: 'A', pool: 'big' },
    { name: 'geo', type: 'A', pool: 'geo', policy: 'geo' },
    { name: 'txt', type: 'TXT', values: ['hello'] },
  ],
};

const POOLS = [
  {
    name: 'web',
    servers: [
      { name: 'w1', address: '192.0.2.1:80' },
      { name: 'w2', address: '192.0.2.2:80' },
      { name: 'w3', address: '192.0.2.3:80' },
    ],
  },
  { name: 'big', servers: Array.from({ length: 100 }, (_, i) => ({ name: `b${i}`, address: `198.51.100.${i + 1}:80` })) },
  {
    name: 'geo',
    servers: [
      { name: 'eu1', address: '192.0.2.11:80', region: 'eu' },
      { name: 'us1', address: '192.0.2.21:80', region: 'us' },
    ],
  },
];

async function startDns(extra: Record<string, unknown> = {}, pools: unknown[] = POOLS, zones: unknown[] = [ZONE], deps: PorticoDeps = {}): Promise<{ p: Portico; port: number }> {
  const p = createPortico({
    admin: { enabled: false },
    log: { level: 'error' },
    listeners: [
      {
        name: 'dns',
        protocol: 'dns',
        listen: '127.0.0.1:0',
        zones,
        geo: { regions: { eu: ['10.1.0.0/16'], us: ['10.2.0.0/16'] }, fallback: { eu: ['us'], us: ['eu'] } },
        responseRateLimit: false,
        tcp: { idleTimeout: '400ms' },
        ...extra,
      },
    ],
    pools,
  }, deps);
  await p.start();
  return { p, port: p.address('dns')!.port };
}

describe('dns listener on real sockets', () => {
  let p: Portico;
  let port: number;
  before(async () => {
    ({ p, port } = await startDns());
  });
  after(async () => {
    await p.stop(100);
  });

  it('UDP and TCP on the same port; answers rotate across the servers', async () => {
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = read((await udp(port, query('www.example.com', 'A', { id: i })))!);
      assert.equal(r.packet.id, i);
      seen.push(...r.data('A'));
    }
    assert.deepEqual(seen, ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.1', '192.0.2.2', '192.0.2.3']);
    const { responses } = await tcp(port, [query('txt.example.com', 'TXT')], 1, 500);
    assert.deepEqual(read(responses[0]!).data('TXT'), ['hello']);
  });

  it('TCP: several queries on one connection are answered in order; an idle connection is closed', async () => {
    const msgs = [query('www.example.com', 'A', { id: 1 }), query('nope.example.com', 'A', { id: 2 }), query('txt.example.com', 'TXT', { id: 3 })];
    const { responses, closedAfterMs } = await tcp(port, msgs, 3, 3000, true);
    assert.deepEqual(responses.map((r) => read(r).packet.id), [1, 2, 3]);
    assert.deepEqual(responses.map((r) => read(r).rcode), ['NOERROR', 'NXDOMAIN', 'NOERROR']);
    assert.ok(closedAfterMs !== undefined && closedAfterMs >= 350 && closedAfterMs < 2500, `closed after ${closedAfterMs} ms (idleTimeout 400ms)`);
  });

  it('a large answer is truncated over UDP and complete over TCP', async () => {
    const u = read((await udp(port, query('big.example.com', 'A', { edns: 1232 })))!);
    assert.ok(u.tc);
    assert.equal(u.packet.answers!.length, 0);
    const { responses } = await tcp(port, [query('big.example.com', 'A', { edns: 1232 })], 1, 500);
    const t = read(responses[0]!);
    assert.ok(!t.tc);
    assert.equal(t.data('A').length, 100);
  });

  it('geo answers from two regions by EDNS Client Subnet', async () => {
    const eu = read((await udp(port, query('geo.example.com', 'A', { subnet: '10.1.2.0/24' })))!);
    const us = read((await udp(port, query('geo.example.com', 'A', { subnet: '10.2.2.0/24' })))!);
    assert.deepEqual(eu.data('A'), ['192.0.2.11']);
    assert.deepEqual(us.data('A'), ['192.0.2.21']);
  });

  it('malformed datagrams do not stop the listener', async () => {
    for (const junk of [Buffer.alloc(0), Buffer.from([1, 2, 3]), Buffer.alloc(512, 0xff), Buffer.concat([query('www.example.com', 'A').subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])])]) {
      await udp(port, junk, 100);
    }
    // a one-byte message is dropped; the connection then idles until the timeout closes it
    const { responses, closedAfterMs } = await tcp(port, [Buffer.from([0xff])], 1, 1500, true);
    assert.equal(responses.length, 0);
    assert.ok(closedAfterMs !== undefined);
    // a datagram from source port 0 (which cannot be answered) is read and not answered
    const listener = (p as unknown as { listeners: { name: string }[] }).listeners.find((x) => x.name === 'dns') as unknown as {
      onUdp(msg: Buffer, rinfo: { address: string; port: number; family: string; size: number }): void;
    };
    listener.onUdp(query('txt.example.com', 'TXT'), { address: '127.0.0.1', port: 0, family: 'IPv4', size: 33 });
    const r = read((await udp(port, query('txt.example.com', 'TXT')))!);
    assert.equal(r.rcode, 'NOERROR');
    const l = (p as unknown as { listeners: { name: string; count?: (z: string, r: string) => number }[] }).listeners.find((x) => x.name === 'dns')!;
    assert.ok(l.count!('', 'DROPPED') >= 2);
    assert.ok(l.count!('', 'FORMERR') >= 1);
  });

  it('portico_dns_queries_total counts messages by listener, zone and rcode', async () => {
    await udp(port, query('nope.example.com', 'A'));
    const text = await p.observability.metrics.render();
    assert.match(text, /^portico_dns_queries_total\{listener="dns",zone="example\.com",rcode="NOERROR"\} [1-9]\d*$/m);
    assert.match(text, /^portico_dns_queries_total\{listener="dns",zone="example\.com",rcode="NXDOMAIN"\} [1-9]\d*$/m);
    assert.match(text, /^portico_dns_queries_total\{listener="dns",zone="",rcode="DROPPED"\} [1-9]\d*$/m);
  });
});

describe('dns listener: reload', () => {
  it('a reload serves the new zone on the same UDP and TCP port', async () => {
    const { p, port } = await startDns();
    try {
      assert.equal(read((await udp(port, query('new.example.com', 'A')))!).rcode, 'NXDOMAIN');
      await p.reload({
        admin: { enabled: false },
        log: { level: 'error' },
        listeners: [
          {
            name: 'dns',
            protocol: 'dns',
            listen: `127.0.0.1:${port}`,
            responseRateLimit: false,
            zones: [{ ...ZONE, records: [...ZONE.records, { name: 'new', type: 'A', values: ['192.0.2.77'] }] }],
          },
        ],
        pools: POOLS,
      });
      assert.equal(p.address('dns')!.port, port);
      assert.deepEqual(read((await udp(port, query('new.example.com', 'A')))!).data('A'), ['192.0.2.77']);
      const { responses } = await tcp(port, [query('new.example.com', 'A')], 1, 1000);
      assert.deepEqual(read(responses[0]!).data('A'), ['192.0.2.77']);
    } finally {
      await p.stop(100);
    }
  });
});

describe('dns listener: health', () => {
  it('a server that fails its health check leaves the answers as soon as it is marked down; with none left, every server is answered', async () => {
    const origins: Origin[] = [await startOrigin('a'), await startOrigin('b')];
    const interval = 300;
    const { p, port } = await startDns({}, [
      {
        name: 'web',
        health: { type: 'tcp', interval: `${interval}ms`, timeout: '2s', rise: 1, fall: 1 },
        servers: origins.map((o, i) => ({ name: o.name, address: o.address, dnsAddress: `192.0.2.${i + 1}` })),
      },
    ], [{ name: 'example.com', records: [{ name: 'www', type: 'A', pool: 'web' }] }]);
    const answer = async (): Promise<string[]> => read((await udp(port, query('www.example.com', 'A')))!).data('A').sort();
    try {
      await waitFor(async () => (await answer()).length === 2, 15_000, 'both servers up');
      await origins[1]!.close();
      const pool = p.pools.get('web')!;
      await waitFor(() => pool.byName('b')!.op === 'down', 15_000, 'b marked down by its check');
      assert.deepEqual(await answer(), ['192.0.2.1'], 'the next answer leaves b out');
      // none available: the fallback (every server) rather than an empty answer
      await origins[0]!.close();
      await waitFor(async () => p.pools.get('web')!.current.set.available.length === 0, 15_000, 'a down too');
      assert.deepEqual(await answer(), ['192.0.2.1', '192.0.2.2']);
      p.pools.get('web')!.setOp(serverId('web', 'a'), 'up', 'probe');
    } finally {
      await p.stop(100);
      await Promise.all(origins.map((o) => o.close()));
    }
  });
});

describe('dns listener: response-rate limiting', () => {
  it('over the limit, UDP responses are dropped and every second one slips through truncated; TCP is not limited', async () => {
    // The limiter runs on the clock Portico is given: frozen while the 40 queries arrive, then moved
    // by one second, so the counts are exact whatever the machine's speed.
    const clock = new ManualClock(1_000_000);
    const { p, port } = await startDns({ responseRateLimit: { responsesPerSecond: 5, burst: 5, slip: 2 } }, POOLS, [ZONE], { clock });
    const s = createSocket('udp4');
    try {
      const got: Buffer[] = [];
      s.on('message', (m) => got.push(m));
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
      for (let i = 0; i < 40; i++) s.send(query('www.example.com', 'A', { id: i }), port, '127.0.0.1');
      // 5 answers and 17 or 18 truncated ones (every second of the 35 over the limit) are expected;
      // then a moment for any extra to show
      await waitFor(() => got.length >= 22, 15_000, 'the answers');
      await new Promise((r) => setTimeout(r, 200));
      const replies = got.map(read);
      const full = replies.filter((r) => !r.tc);
      const slipped = replies.filter((r) => r.tc);
      assert.equal(full.length, 5, `${full.length} full answers: the burst`);
      assert.ok(slipped.length === 17 || slipped.length === 18, `${slipped.length} truncated`);
      assert.ok(slipped.every((r) => r.packet.answers!.length === 0));
      // One second later at 5/s: five more full answers, then the limit again.
      clock.advance(1000);
      got.length = 0;
      for (let i = 0; i < 6; i++) s.send(query('www.example.com', 'A', { id: 100 + i }), port, '127.0.0.1');
      await waitFor(() => got.filter((m) => !read(m).tc).length >= 5, 15_000, 'the refilled answers');
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(got.map(read).filter((r) => !r.tc).length, 5, 'refilled at the configured rate');
      const { responses } = await tcp(port, Array.from({ length: 20 }, (_, i) => query('www.example.com', 'A', { id: i })), 20, 1000);
      assert.equal(responses.length, 20);
      assert.ok(responses.every((r) => !read(r).tc));
    } finally {
      s.close();
      await p.stop(100);
    }
  });
});

describe('dns listener with dig as the client', () => {
  const why = missingBinary('dig');
  let p: Portico;
  let port: number;
  before(async () => {
    if (why !== undefined) return;
    ({ p, port } = await startDns({}, POOLS, [
      { ...ZONE, nameservers: ['ns1.example.com'], soa: { serial: 2024060101 }, records: [...ZONE.records, { name: 'ns1', type: 'A', values: ['192.0.2.53'] }] },
    ]));
  });
  after(async () => {
    if (p !== undefined) await p.stop(100);
  });

  it('rotation and TTL', { skip: why }, async () => {
    const first = (await dig(port, ['www.example.com', 'A', '+noall', '+answer'])).trim();
    const second = (await dig(port, ['www.example.com', 'A', '+noall', '+answer'])).trim();
    assert.match(first, /^www\.example\.com\.\s+20\s+IN\s+A\s+192\.0\.2\.\d$/);
    assert.notEqual(first, second);
  });

  it('SOA and NS at the apex, authoritative', { skip: why }, async () => {
    const soa = await dig(port, ['example.com', 'SOA']);
    assert.match(soa, /flags: qr aa;/);
    assert.match(soa, /example\.com\.\s+20\s+IN\s+SOA\s+ns1\.example\.com\. hostmaster\.example\.com\. 2024060101 3600 600 604800 60/);
    const ns = await dig(port, ['example.com', 'NS']);
    assert.match(ns, /IN\s+NS\s+ns1\.example\.com\./);
    assert.match(ns, /ns1\.example\.com\.\s+20\s+IN\s+A\s+192\.0\.2\.53/);
  });

  it('NXDOMAIN and NODATA', { skip: why }, async () => {
    const nx = await dig(port, ['nope.example.com', 'A']);
    assert.match(nx, /status: NXDOMAIN/);
    assert.match(nx, /AUTHORITY: 1/);
    const nodata = await dig(port, ['www.example.com', 'AAAA']);
    assert.match(nodata, /status: NOERROR/);
    assert.match(nodata, /ANSWER: 0, AUTHORITY: 1/);
    assert.match(await dig(port, ['www.example.org', 'A']), /status: REFUSED/);
  });

  it('a truncated UDP answer is retried over TCP and complete', { skip: why }, async () => {
    const out = await dig(port, ['big.example.com', 'A', '+bufsize=1232']);
    assert.match(out, /Truncated, retrying in TCP mode/);
    assert.match(out, /ANSWER: 100,/);
    assert.match(out, /\(TCP\)/);
  });

  it('EDNS Client Subnet: answers from two regions', { skip: why }, async () => {
    const eu = await dig(port, ['geo.example.com', 'A', '+subnet=10.1.2.0/24', '+noall', '+answer']);
    const us = await dig(port, ['geo.example.com', 'A', '+subnet=10.2.2.0/24', '+noall', '+answer']);
    assert.match(eu, /IN\s+A\s+192\.0\.2\.11/);
    assert.match(us, /IN\s+A\s+192\.0\.2\.21/);
    assert.match(await dig(port, ['geo.example.com', 'A', '+subnet=10.2.2.0/24']), /CLIENT-SUBNET: 10\.2\.2\.0\/24\/24/);
  });

  it('names are case-insensitive, and dig over TCP works too', { skip: why }, async () => {
    assert.match(await dig(port, ['TxT.ExAmPlE.cOm', 'TXT', '+tcp', '+noall', '+answer']), /"hello"/);
  });
});
