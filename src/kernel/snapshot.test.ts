import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import '../balancer/index.js';
import { getBalancer } from '../balancer/registry.js';
import { ManualClock } from '../core/clock.js';
import { SeededRng } from '../core/rng.js';
import { serverId, type Server } from '../core/server.js';
import { Pool } from '../pool/pool.js';
import { slotElements, type KernelListenerSpec } from './render.js';
import { snapshotOf } from './snapshot.js';

const srv = (name: string, host: string, extra: Partial<Server> = {}): Server => ({
  id: serverId('p', name),
  name,
  host,
  port: 80,
  weight: 1,
  backup: false,
  maxConnections: 0,
  meta: {},
  ...extra,
});

function pool(servers: Server[], options: { slowStartMs?: number; panic?: number } = {}) {
  const clock = new ManualClock(1000);
  const factory = getBalancer('roundrobin')!;
  const p = new Pool(
    { name: 'p', factory, balancerOptions: factory.parseOptions(undefined), rng: new SeededRng(1), clock, slowStartMs: options.slowStartMs, panicThresholdPct: options.panic },
    servers.map((server) => ({ server })),
  );
  return { p, clock };
}

const spec: KernelListenerSpec = {
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
};

/** Slots per server name. */
function shares(p: Pool): Record<string, number> {
  const snap = snapshotOf(p);
  const out: Record<string, number> = {};
  for (const e of slotElements(spec, snap)) out[snap.servers[e.server]!.name] = (out[snap.servers[e.server]!.name] ?? 0) + e.hi - e.lo + 1;
  return out;
}

describe('kernel snapshot of a pool', () => {
  it('weights, drain, down and maint as the pool says; servers without an IPv4 address are left out', () => {
    const { p } = pool([srv('a', '10.0.0.1', { weight: 3 }), srv('b', '10.0.0.2'), srv('c', 'db.example')]);
    assert.deepEqual(snapshotOf(p).skipped, ['c']);
    assert.deepEqual(shares(p), { a: 75, b: 25 });
    p.setAdmin('a', 'drain');
    assert.deepEqual(shares(p), { b: 100 });
    p.setAdmin('a', 'ready');
    p.setOp(serverId('p', 'b'), 'down', 'probe');
    assert.deepEqual(shares(p), { a: 100 });
    p.setAdmin('a', 'maint');
    assert.deepEqual(shares(p), {}, 'nobody: the input chain refuses new flows');
    p.close();
  });

  it('backup servers take over when no primary is up, and leave when one returns', () => {
    const { p } = pool([srv('a', '10.0.0.1'), srv('b', '10.0.0.2'), srv('spare', '10.0.0.9', { backup: true })]);
    assert.deepEqual(shares(p), { a: 50, b: 50 });
    p.setOp(serverId('p', 'a'), 'down', 'probe');
    p.setOp(serverId('p', 'b'), 'down', 'probe');
    assert.deepEqual(shares(p), { spare: 100 });
    p.setOp(serverId('p', 'a'), 'up', 'probe');
    assert.deepEqual(shares(p), { a: 100 });
    p.close();
  });

  it('panic mode: below the threshold, every primary takes flows again', () => {
    const { p } = pool([srv('a', '10.0.0.1'), srv('b', '10.0.0.2'), srv('c', '10.0.0.3'), srv('d', '10.0.0.4')], { panic: 50 });
    for (const n of ['a', 'b', 'c']) p.setOp(serverId('p', n), 'down', 'probe');
    assert.deepEqual(shares(p), { a: 25, b: 25, c: 25, d: 25 });
    p.close();
  });

  it('slow start: a returning server\'s slots grow over the ramp', () => {
    const { p, clock } = pool([srv('a', '10.0.0.1', { weight: 10 }), srv('b', '10.0.0.2', { weight: 10 })], { slowStartMs: 10_000 });
    const a = p.byName('a')!;
    p.setOp(a.server.id, 'down', 'probe');
    p.setOp(a.server.id, 'up', 'probe');
    const first = shares(p)['a'] ?? 0;
    assert.ok(first > 0 && first < 15, `at the start of the ramp: ${first}`);
    clock.advance(5000);
    (p as unknown as { slowStart: { step(): boolean } }).slowStart.step();
    assert.equal(shares(p)['a'], 33, 'half way: weight 5 against 10');
    clock.advance(5000);
    (p as unknown as { slowStart: { step(): boolean } }).slowStart.step();
    assert.equal(shares(p)['a'], 50);
    p.close();
  });
});
