import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { hasNetAdmin, prerequisiteProblems, type HostFacts } from './checks.js';
import { nftApply } from './nft.js';
import { carryCounters, counterName, forwardingUnavailable, modes, prefixOf, render, renderMaps, renderTable, slotElements, type KernelListenerSpec, type KernelSnapshot } from './render.js';
import { existsSync, readFileSync } from 'node:fs';
import { hash } from '../balancer/hash.js';
import { kernelSourceBucket, SOURCE_SEED } from '../balancer/jhash.js';
import { makeDeps, makeServer, makeSet } from '../balancer/testing.js';
import { L2_SEED, renderDsr, renderNetdevTable } from './render-l2.js';
import { HASH_SEED } from './render.js';

const CI = process.env['CI'] === 'true';

const spec = (extra: Partial<KernelListenerSpec> = {}): KernelListenerSpec => ({
  listener: 'vip',
  protocol: 'tcp',
  vip: '192.0.2.100',
  port: 80,
  forwarding: 'nat',
  balance: 'random',
  slots: 100,
  buckets: 31,
  snat: 'none',
  persistenceMs: 0,
  ...extra,
});

const snap: KernelSnapshot = {
  servers: [
    { name: 's1', address: '10.0.0.11', port: 80 },
    { name: 's2', address: '10.0.0.12', port: 8080 },
    { name: 's3', address: '10.0.0.13', port: 80 },
  ],
  active: [
    { index: 0, weight: 5 },
    { index: 1, weight: 3 },
    { index: 2, weight: 2 },
  ],
};

/** Slots per server index over the whole map. */
function share(els: { lo: number; hi: number; server: number }[]): number[] {
  const out = [0, 0, 0];
  for (const e of els) out[e.server]! += e.hi - e.lo + 1;
  return out;
}

describe('kernel renderer: slots', () => {
  it('random: contiguous ranges in proportion to the weights, covering every slot once', () => {
    const els = slotElements(spec(), snap);
    assert.deepEqual(els, [
      { lo: 0, hi: 49, server: 0 },
      { lo: 50, hi: 79, server: 1 },
      { lo: 80, hi: 99, server: 2 },
    ]);
  });

  it('roundrobin: the same shares, interleaved (a smooth weighted rotation for numgen inc)', () => {
    const els = slotElements(spec({ balance: 'roundrobin' }), snap);
    assert.deepEqual(share(els), [50, 30, 20]);
    // No server holds more than its share of consecutive slots: 5:3:2 never runs more than 2 alike.
    assert.ok(els.every((e) => e.hi - e.lo < 2), JSON.stringify(els.slice(0, 10)));
  });

  it('drain, failure or maint (out of the active set): no slot; slow start: a smaller share', () => {
    assert.deepEqual(share(slotElements(spec(), { ...snap, active: [snap.active[0]!, snap.active[2]!] })), [71, 0, 29]);
    assert.deepEqual(share(slotElements(spec(), { ...snap, active: [{ index: 0, weight: 5 }, { index: 1, weight: 0.3 }] })), [94, 6, 0]);
    assert.deepEqual(slotElements(spec(), { ...snap, active: [] }), []);
  });

  it('hash: a Maglev table by server name; removing a server moves only its buckets', () => {
    const s = spec({ balance: 'hash', buckets: 251 });
    const full = slotElements(s, snap);
    const table = (els: typeof full): number[] => {
      const t: number[] = [];
      for (const e of els) for (let i = e.lo; i <= e.hi; i++) t[i] = e.server;
      return t;
    };
    const before = table(full);
    assert.equal(before.length, 251);
    const after = table(slotElements(s, { ...snap, active: [snap.active[0]!, snap.active[2]!] }));
    for (let i = 0; i < 251; i++) if (before[i] !== 1) assert.equal(after[i], before[i], `bucket ${i} moved though its server stayed`);
    // The same live set in another order gives the same table (every node agrees).
    assert.deepEqual(table(slotElements(s, { ...snap, active: [...snap.active].reverse() })), before);
  });

  it('hash: a client address reaches the server a userspace listener picks for it (same table, same bucket)', () => {
    assert.equal(Number(HASH_SEED), SOURCE_SEED);
    assert.equal(Number(L2_SEED), SOURCE_SEED, 'dsr hashes the client with the same seed');
    for (const buckets of [251, 4093]) {
      const s = spec({ balance: 'hash', buckets });
      // Weighted, to exercise Maglev's weighted turns on both sides.
      const kernel = slotElements(s, snap);
      const userspace = hash.build(
        makeSet(snap.servers.map((x, i) => makeServer(x.name, snap.active[i]!.weight))),
        hash.parseOptions({ key: 'source-ip', tableSize: buckets }),
        makeDeps(),
      );
      const seen = new Set<string>();
      for (let i = 0; i < 2000; i++) {
        const addr = `10.${(i * 7) & 255}.${(i * 13) >> 3 & 255}.${i & 255}`;
        const b = kernelSourceBucket(addr, buckets);
        const inKernel = snap.servers[kernel.find((e) => e.lo <= b && b <= e.hi)!.server]!.name;
        const picked = userspace.pick({ hashKey: addr })!.name;
        assert.equal(picked, inKernel, `${addr}: bucket ${b}`);
        // A dual-stack socket reports the IPv4-mapped form: the same server.
        assert.equal(userspace.pick({ hashKey: `::ffff:${addr}` })!.name, inKernel);
        seen.add(picked);
      }
      assert.equal(seen.size, 3);
    }
  });
});

describe('kernel renderer: rules', () => {
  it('one dnat rule through the slots map, per-server counters both ways, the reject of an empty map', () => {
    const t = render(spec(), snap);
    assert.match(t, /ip daddr 192\.0\.2\.100 tcp dport 80 dnat ip addr \. port to numgen random mod 100 map @vip_slots/);
    assert.match(t, /50-79 : 10\.0\.0\.12 \. 8080/);
    assert.match(t, /counter name ip daddr \. tcp dport map @vip_ctr_in/);
    assert.match(t, /ct direction reply counter name ip saddr \. tcp sport map @vip_ctr_out/);
    assert.match(t, /10\.0\.0\.11 \. 80 : "vip_out_s1"/);
    assert.match(t, /reject with tcp reset/);
    assert.doesNotMatch(t, /postrouting/, 'snat none: the servers route replies through this node');
    assert.match(render(spec({ balance: 'roundrobin' }), snap), /numgen inc mod 100/);
    assert.match(render(spec({ balance: 'hash' }), snap), /jhash ip saddr mod 31 seed 0x[0-9a-f]+ map @vip_slots/);
  });

  it('udp: the same shape on udp ports, a plain reject', () => {
    const t = render(spec({ protocol: 'udp', port: 53 }), snap);
    assert.match(t, /ip daddr 192\.0\.2\.100 udp dport 53 dnat/);
    assert.match(t, /ip daddr . udp dport; flags interval/);
    assert.match(t, /counter reject comment/);
  });

  it('snat: masquerade, one address, or a list spread by a hash of the client', () => {
    assert.match(render(spec({ snat: 'masquerade' }), snap), /ct status dnat masquerade/);
    assert.match(render(spec({ snat: ['10.0.0.2'] }), snap), /ct status dnat snat to 10\.0\.0\.2\n/);
    assert.match(render(spec({ snat: ['10.0.0.2', '10.0.0.3'] }), snap), /snat to jhash ip saddr \. tcp sport mod 2 seed \S+ map \{ 0 : 10\.0\.0\.2, 1 : 10\.0\.0\.3 \}/);
  });

  it('persistence: a dynamic map consulted before the slots and refreshed by every packet', () => {
    const t = render(spec({ persistenceMs: 90_000 }), snap);
    assert.match(t, /map vip_sticky \{\n\s+typeof ip saddr : ip daddr \. tcp dport; flags dynamic,timeout; timeout 90s;/);
    assert.ok(t.indexOf('map @vip_sticky') < t.indexOf('map @vip_slots'), 'the sticky lookup comes first');
    assert.match(t, /ct direction original update @vip_sticky \{ ip saddr : ip daddr \. tcp dport \}/);
  });

  it('the run-time update touches maps only: flush and add, counters of new servers added', () => {
    const m = renderMaps(spec(), snap);
    assert.doesNotMatch(m, /chain|rule|delete table/);
    assert.match(m, /^flush map ip portico vip_slots$/m);
    assert.match(m, /^add element ip portico vip_slots \{ 0-49 : 10\.0\.0\.11 \. 80, 50-79 : 10\.0\.0\.12 \. 8080, 80-99 : 10\.0\.0\.13 \. 80 \}$/m);
    assert.match(m, /^add counter ip portico vip_in_s3$/m);
    const empty = renderMaps(spec(), { ...snap, active: [] });
    assert.match(empty, /^flush map ip portico vip_slots$/m);
    assert.doesNotMatch(empty, /add element ip portico vip_slots/);
  });

  it('the whole table is one idempotent transaction: add, delete, re-create', () => {
    const t = renderTable([{ spec: spec(), snap }]);
    assert.ok(t.startsWith('table ip portico {}\ndelete table ip portico\ntable ip portico {\n'));
  });

  it('names nft takes: a listener name with dashes or dots gets a clean prefix that cannot collide', () => {
    assert.equal(prefixOf('vip'), 'vip');
    assert.match(prefixOf('web-1'), /^web_1_[0-9a-z]+$/);
    assert.notEqual(prefixOf('web-1'), prefixOf('web_1'));
    assert.match(prefixOf('1st'), /^l1st_/);
    assert.match(counterName('web-1', 'db.a', 'in'), /^[A-Za-z][A-Za-z0-9_]*$/);
  });

  it('a mode with a netdev part gets table netdev portico in the same transaction; without, it is deleted', () => {
    assert.match(renderTable([{ spec: spec(), snap }]), /\ntable netdev portico \{\}\ndelete table netdev portico\n$/);
    const was = modes.dsr;
    modes.dsr = { table: () => '', maps: () => '', netdev: (s) => `  chain ${s.listener}_ingress {}\n` };
    try {
      const t = renderTable([{ spec: spec({ forwarding: 'dsr' }), snap }]);
      assert.match(t, /delete table netdev portico\ntable netdev portico \{\n  chain vip_ingress \{\}\n\}\n$/);
      assert.equal(forwardingUnavailable('dsr'), undefined, 'a registered mode is no longer refused');
    } finally {
      if (was === undefined) delete modes.dsr;
      else modes.dsr = was;
    }
  });

  it('a whole-table write carries the named counters\' values, so the metrics never go back', () => {
    const carry = new Map([
      [counterName('vip', 's1', 'in'), { packets: 12, bytes: 3400 }],
      [counterName('vip', 's2', 'out'), { packets: 7, bytes: 900 }],
      ['gone_in_s9', { packets: 1, bytes: 1 }],
    ]);
    const t = renderTable([{ spec: spec(), snap }], carry);
    assert.match(t, /^  counter vip_in_s1 \{ packets 12 bytes 3400 \}$/m);
    assert.match(t, /^  counter vip_out_s2 \{ packets 7 bytes 900 \}$/m);
    assert.match(t, /^  counter vip_in_s3 \{\}$/m, 'a counter not read before starts at 0');
    assert.doesNotMatch(t, /gone_in_s9/, 'a counter of a server that left is not declared again');
    assert.equal(renderTable([{ spec: spec(), snap }], new Map()), renderTable([{ spec: spec(), snap }]));
    // The maps and rules are untouched: only the declarations of the counters change.
    assert.equal(t.replace(/ \{ packets \d+ bytes \d+ \}/g, ' {}'), renderTable([{ spec: spec(), snap }]));
  });

  it('the link-layer modes\' counters are carried alike (netdev table)', () => {
    const dsr = renderDsr(
      { prefix: 'web', protocol: 'tcp', vip: '192.0.2.100', port: 80, device: 'eth0', deviceMac: '02:00:00:00:00:02', byClient: false, slots: 1000, flowSize: 65536, flowTimeoutMs: 300_000 },
      [{ name: 's1', counterIn: 'web_in_s1', counterOut: 'web_out_s1', mac: '02:00:00:00:00:11', keepFlows: true }],
      [{ lo: 0, hi: 999, server: 0 }],
    );
    const t = carryCounters(renderNetdevTable([dsr]), new Map([['web_in_s1', { packets: 5, bytes: 600 }], ['web_none', { packets: 1, bytes: 60 }]]));
    assert.match(t, /^  counter web_in_s1 \{ packets 5 bytes 600 \}$/m);
    assert.match(t, /^  counter web_none \{ packets 1 bytes 60 \}$/m);
    assert.match(t, /^  counter web_out_s1 \{\}$/m);
  });

  it('dsr and distributed are refused until their renderer is built', () => {
    assert.equal(forwardingUnavailable('nat'), undefined);
    assert.match(forwardingUnavailable('dsr') ?? '', /forwarding: dsr is not built yet/);
    assert.throws(() => render(spec({ forwarding: 'distributed' }), snap), /not built yet/);
  });
});

describe('kernel renderer: nft --check of the output', () => {
  const why = (): string | undefined => {
    if (!['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft'].some((p) => existsSync(p))) return 'nft is not installed';
    if (!hasNetAdmin(readFileSync('/proc/self/status', 'utf8'))) return 'nft -c needs CAP_NET_ADMIN';
    return undefined;
  };
  const skip = why();
  if (skip !== undefined && CI) throw new Error(`CI=true: ${skip}`);
  it(`every shape parses and validates in the kernel${skip === undefined ? '' : ` (SKIPPED: ${skip})`}`, { skip }, async () => {
    const parts = [
      { spec: spec(), snap },
      { spec: spec({ listener: 'rr', port: 81, balance: 'roundrobin', slots: 1000, snat: 'masquerade', persistenceMs: 300_000 }), snap },
      { spec: spec({ listener: 'h-1', port: 82, balance: 'hash', buckets: 4093, snat: ['10.0.0.2', '10.0.0.3'] }), snap },
      { spec: spec({ listener: 'dns', protocol: 'udp', port: 53, persistenceMs: 60_000 }), snap },
      { spec: spec({ listener: 'none', port: 83 }), snap: { ...snap, active: [] } },
    ];
    // A map update refers to the table's objects: checked in the same batch, after the table.
    const carry = new Map([[counterName('vip', 's1', 'in'), { packets: 2 ** 40, bytes: 2 ** 50 }]]);
    await nftApply(renderTable(parts, carry) + parts.map((p) => renderMaps(p.spec, p.snap)).join(''), { check: true });
  });
});

describe('kernel prerequisites', () => {
  const host = (o: Partial<HostFacts> = {}): HostFacts => ({
    nftVersion: async () => 'nftables v1.0.6',
    netAdmin: () => true,
    ipForward: () => '1',
    interfaceExists: () => true,
    localAddresses: () => ['192.0.2.100'],
    ...o,
  });
  const lc = { name: 'vip', forwarding: 'nat', listen: { host: '192.0.2.100', port: 80 }, kernel: { interface: 'eth0' } } as never;

  it('a ready host: nothing to say', async () => {
    assert.deepEqual(await prerequisiteProblems(lc, host()), []);
  });

  it('each missing piece is named with its fix', async () => {
    assert.match((await prerequisiteProblems(lc, host({ nftVersion: async () => undefined })))[0]!, /nft not found: install nftables/);
    assert.match((await prerequisiteProblems(lc, host({ netAdmin: () => false })))[0]!, /no CAP_NET_ADMIN: run Portico as root or grant/);
    assert.match((await prerequisiteProblems(lc, host({ ipForward: () => '0' })))[0]!, /ip_forward is off.*sysctl -w net\.ipv4\.ip_forward=1/);
    assert.match((await prerequisiteProblems(lc, host({ interfaceExists: () => false })))[0]!, /interface eth0 not found/);
    assert.match(
      (await prerequisiteProblems(lc, host({ localAddresses: () => [] })))[0]!,
      /192\.0\.2\.100 is on no interface.*ip addr add 192\.0\.2\.100\/32 dev eth0, or, when keepalived moves it between two nodes, set kernel\.addressHeldBy: keepalived/,
    );
  });

  it('kernel.addressHeldBy: keepalived: a node starts without the virtual address (the standby of a pair)', async () => {
    const standby = { name: 'vip', forwarding: 'dsr', listen: { host: '192.0.2.100', port: 80 }, kernel: { interface: 'eth0', addressHeldBy: 'keepalived' } } as never;
    assert.deepEqual(await prerequisiteProblems(standby, host({ localAddresses: () => [] })), []);
    // Everything else is still checked.
    assert.match((await prerequisiteProblems(standby, host({ localAddresses: () => [], interfaceExists: () => false })))[0]!, /interface eth0 not found/);
  });

  it('CAP_NET_ADMIN read from CapEff', () => {
    assert.equal(hasNetAdmin('CapEff:\t000001ffffffffff\n'), true);
    assert.equal(hasNetAdmin('CapEff:\t0000000000000000\n'), false);
    assert.equal(hasNetAdmin('CapEff:\t0000000000001000\n'), true);
  });
});
