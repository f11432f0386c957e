import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import '../app/listener-kinds.js';
import { ConfigError } from '../config/errors.js';
import { validateConfig } from '../config/load.js';
import '../balancer/index.js';

function problems(listener: Record<string, unknown>): string[] {
  try {
    validateConfig({
      admin: { enabled: false },
      listeners: [{ name: 'dns', protocol: 'dns', listen: '127.0.0.1:0', zones: [{ name: 'example.com' }], ...listener }],
      pools: [{ name: 'web', servers: [{ name: 'a', address: '192.0.2.1:80' }] }],
    });
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.lines();
  }
}

const zone = (records: unknown[]): Record<string, unknown> => ({ zones: [{ name: 'example.com', records }] });

describe('dns configuration', () => {
  it('a full listener is valid, with defaults for SOA, nameservers, TCP and rate limiting', () => {
    const c = validateConfig({
      admin: { enabled: false },
      listeners: [{ name: 'dns', protocol: 'dns', listen: '127.0.0.1:0', zones: [{ name: 'Example.COM.', records: [{ name: 'www', type: 'A', pool: 'web' }] }] }],
      pools: [{ name: 'web', servers: [{ name: 'a', address: '192.0.2.1:80' }] }],
    });
    const l = c.listeners[0]!;
    assert.equal(l.protocol, 'dns');
    if (l.protocol !== 'dns') return;
    assert.equal(l.zones[0]!.name, 'example.com');
    assert.equal(l.zones[0]!.ttl, 20);
    assert.equal(l.zones[0]!.soa.minimum, 60);
    assert.equal(l.maxUdpSize, 1232);
    assert.equal(l.tcp.idleTimeout, 10_000);
    assert.deepEqual(l.responseRateLimit, { responsesPerSecond: 100, burst: 100, slip: 2, ipv4PrefixLength: 24, ipv6PrefixLength: 56, exempt: [], maxTracked: 100_000 });
    assert.deepEqual(l.zones[0]!.records[0], { name: 'www', type: 'A', pool: 'web', policy: 'roundrobin', answers: 0, fallback: 'all' });
  });

  it('refuses records that cannot be served, each at its key', () => {
    const cases: [unknown[], RegExp][] = [
      [[{ name: 'x', type: 'TXT', pool: 'web' }], /records\.0\.pool: a TXT record cannot come from a pool/],
      [[{ name: 'x', type: 'A', pool: 'web', values: ['192.0.2.1'] }], /records\.0: takes only one of pool, values/],
      [[{ name: 'x', type: 'A', values: ['2001:db8::1'] }], /records\.0\.values\.0: bad A value/],
      [[{ name: 'x', type: 'A', pool: 'web', fallback: ['2001:db8::1'] }], /records\.0\.fallback: fallback "2001:db8::1" is not an IPv4 address/],
      [[{ name: 'x', type: 'SRV', pool: 'web', fallback: ['192.0.2.1'] }], /records\.0\.fallback: an SRV record takes fallback: all/],
      [[{ name: 'x', type: 'A', values: ['192.0.2.1'] }, { name: 'x', type: 'CNAME', values: ['y.example.com'] }], /records\.1\.type: a CNAME cannot share its name "x"/],
      [[{ name: '@', type: 'CNAME', values: ['y.example.com'] }], /records\.0\.type: a CNAME cannot be at the zone apex/],
      [[{ name: '@', type: 'NS', values: ['ns.example.com'] }], /records\.0\.type: the zone's own NS records come from the zone's `nameservers`/],
      [[{ name: 'x', type: 'A', pool: 'web' }, { name: 'x', type: 'A', values: ['192.0.2.1'] }], /records\.1: "x" A is defined twice/],
      [[{ name: 'x', type: 'MX', values: ['mail.example.com'] }], /records\.0\.values\.0: bad MX value/],
      [[{ name: 'x', type: 'TXT', values: ['a'.repeat(300)] }], /at most 255 bytes/],
      [[{ name: 'x', type: 'A', pool: 'nope' }], /records\.0\.pool: pool "nope" does not exist/],
      [[{ name: 'x', type: 'A', values: ['192.0.2.1'], targets: 'srv' }], /records\.0\.targets: targets applies only to an SRV record from a pool/],
    ];
    for (const [records, re] of cases) {
      const out = problems(zone(records));
      assert.ok(out.some((l) => re.test(l)), `${JSON.stringify(records)}: ${out.join(' | ')}`);
    }
  });

  it('policy nearest needs regions and a proximity table; a zone is served once', () => {
    assert.ok(problems(zone([{ name: 'x', type: 'A', pool: 'web', policy: 'nearest' }])).some((l) => /policy nearest needs geo\.regions/.test(l)));
    assert.deepEqual(problems({ ...zone([{ name: 'x', type: 'A', pool: 'web', policy: 'nearest' }]), geo: { regions: { eu: ['10.0.0.0/8'] } }, proximity: { eu: { eu: 0 } } }), []);
    // geo without regions is accepted: every client is unplaced and gets every available server
    assert.deepEqual(problems(zone([{ name: 'x', type: 'A', pool: 'web', policy: 'geo' }])), []);
    assert.ok(problems({ zones: [{ name: 'example.com' }, { name: 'EXAMPLE.com' }] }).some((l) => /zones\.1\.name: zone "example\.com" is served twice/.test(l)));
    assert.ok(problems({ geo: { regions: { eu: ['10.0.0.0/33'] } } }).some((l) => /geo\.regions\.eu\.0/.test(l)));
    assert.ok(problems({ geo: { fallback: { eu: ['eu'] } } }).some((l) => /geo\.fallback\.eu\.0: region "eu" falls back to itself/.test(l)));
  });
});
