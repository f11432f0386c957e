import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import './l2-modes.js';
import { renderTable, type KernelListenerSpec, type KernelSnapshot } from './render.js';

/**
 * A keepalived take-over between two dsr balancers with `balance: hash` (Katran's property): the
 * node that takes the address over has an empty flow map, so the established flows' next
 * packets (ACKs, data: no SYN) are placed by its slot map alone. They reach the same server only
 * if (1) both nodes render the same bucket → MAC map for the same servers, whatever order their
 * pools list them in, and (2) the slot rule places any packet of an unknown flow, not only a SYN,
 * by the client's address alone.
 */

const MACS: Record<string, string> = { s1: '02:00:00:00:00:11', s2: '02:00:00:00:00:12', s3: '02:00:00:00:00:13' };

const spec = (deviceMac: string): KernelListenerSpec => ({
  listener: 'web',
  protocol: 'tcp',
  vip: '192.0.2.100',
  port: 80,
  forwarding: 'dsr',
  balance: 'hash',
  slots: 1000,
  buckets: 4093,
  snat: 'none',
  persistenceMs: 0,
  link: { device: 'eth0', deviceMac, flowSize: 65536, flowTimeoutMs: 300_000 },
});

/** A node's pool, its servers in the order given (discovery, registration through the API ...). */
function snap(order: readonly string[], weights: Record<string, number> = {}): KernelSnapshot {
  const servers = order.map((name, i) => ({ name, address: `10.0.0.${11 + i}`, port: 80 }));
  return {
    servers,
    active: servers.map((s, index) => ({ index, weight: weights[s.name] ?? 1 })),
    link: { macs: new Map(order.map((n) => [n, MACS[n]!])), cut: new Set(), mine: [] },
  };
}

/** Bucket → MAC of the rendered slot map. */
function buckets(table: string): string[] {
  const m = /map web_slots \{[^}]*elements = \{ ([^}]*) \}/.exec(table);
  assert.ok(m !== null, `no slot map elements in:\n${table}`);
  const out: string[] = [];
  for (const el of m[1]!.split(', ')) {
    const [range, mac] = el.split(' : ') as [string, string];
    const [lo, hi] = range.includes('-') ? range.split('-').map(Number) : [Number(range), Number(range)];
    for (let b = lo!; b <= hi!; b++) out[b] = mac;
  }
  return out;
}

describe('dsr with balance: hash across a keepalived take-over', () => {
  it('two nodes with the same servers, listed in another order, render the same bucket → MAC map', () => {
    const a = buckets(renderTable([{ spec: spec('02:00:00:00:00:0a'), snap: snap(['s1', 's2', 's3']) }]));
    const b = buckets(renderTable([{ spec: spec('02:00:00:00:00:0b'), snap: snap(['s3', 's1', 's2']) }]));
    assert.equal(a.length, 4093);
    assert.equal(a.filter((x) => x !== undefined).length, 4093, 'every bucket has a server');
    assert.deepEqual(b, a);
    for (const mac of Object.values(MACS)) assert.ok(a.filter((x) => x === mac).length > 1200, `${mac} has about a third of the buckets`);
    // Weights too: the same weights give the same table on both.
    const wa = buckets(renderTable([{ spec: spec('02:00:00:00:00:0a'), snap: snap(['s1', 's2', 's3'], { s1: 3 }) }]));
    const wb = buckets(renderTable([{ spec: spec('02:00:00:00:00:0b'), snap: snap(['s2', 's3', 's1'], { s1: 3 }) }]));
    assert.deepEqual(wb, wa);
  });

  it('the slot rule places any packet of a flow it has not seen (no SYN or conntrack condition), by the client address only', () => {
    const t = renderTable([{ spec: spec('02:00:00:00:00:0b'), snap: snap(['s1', 's2', 's3']) }]);
    const netdev = t.slice(t.indexOf('table netdev portico {'));
    assert.doesNotMatch(netdev, /\bct\b/, 'no connection tracking');
    const pick = netdev.slice(netdev.indexOf('chain web_pick'));
    const slotRule = pick.split('\n').find((l) => l.includes('@web_slots'));
    assert.ok(slotRule !== undefined, pick);
    // No condition before the slot map: not a TCP flag (only the flow-map rule skips SYNs).
    assert.match(slotRule, /^\s*ether daddr set jhash ip saddr mod 4093 seed 0x706f7274 map @web_slots .* fwd to "eth0"$/);
    // The flow-map rule comes first, and on a miss the packet falls through to the slot rule.
    assert.ok(pick.indexOf('map @web_flows') < pick.indexOf('map @web_slots'));
    // Every packet to the address and port sent to this node goes to the pick chain; frames a
    // switch floods to the standby are not its to forward.
    assert.match(netdev, /ether daddr 02:00:00:00:00:0b ip daddr 192\.0\.2\.100 tcp dport 80 ether saddr set 02:00:00:00:00:0b goto web_pick/);
  });

  it("a server gone on both nodes moves its own buckets and almost no other (Maglev's near-minimal disruption)", () => {
    const all = buckets(renderTable([{ spec: spec('02:00:00:00:00:0a'), snap: snap(['s1', 's2', 's3']) }]));
    const less = snap(['s1', 's2', 's3']);
    const without2 = buckets(renderTable([{ spec: spec('02:00:00:00:00:0b'), snap: { ...less, active: less.active.filter((x) => x.index !== 1) } }]));
    let moved = 0;
    for (let i = 0; i < all.length; i++) {
      if (all[i] === MACS['s2']) assert.notEqual(without2[i], MACS['s2']);
      else if (without2[i] !== all[i]) moved++;
    }
    // Maglev is not strictly minimal: a few of the survivors' buckets change hands too.
    assert.ok(moved <= 41, `${moved} of the survivors' buckets moved (at most 1 %)`);
  });
});
