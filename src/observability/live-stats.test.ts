import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { getBalancer } from '../balancer/registry.js';
import '../balancer/index.js';
import { ManualClock } from '../core/clock.js';
import { SeededRng } from '../core/rng.js';
import { serverId, type Server } from '../core/server.js';
import { Pool } from '../pool/pool.js';
import { EventHub } from './events.js';
import { LiveStats, type InflightRequest, type StatsFrame } from './live-stats.js';
import { RequestStats } from './request-stats.js';
import { exchange } from './testing.js';
import { TrafficCounters } from './traffic.js';

function server(name: string, maxConnections = 0): Server {
  return { id: serverId('web', name), name, host: '127.0.0.1', port: 1, weight: 2, backup: false, maxConnections, meta: {} };
}

function setup(servers: Server[]) {
  const pool = new Pool(
    { name: 'web', factory: getBalancer('roundrobin')!, balancerOptions: undefined, rng: new SeededRng(1), clock: new ManualClock() },
    servers.map((s) => ({ server: s })),
  );
  const traffic = new TrafficCounters();
  const stats = new RequestStats();
  stats.onRequest(traffic.record);
  const hub = new EventHub();
  let now = 0;
  let inflight: InflightRequest[] = [];
  const live = new LiveStats({
    traffic,
    stats,
    pools: new Map([['web', pool]]),
    listeners: () => [{ name: 'web', protocol: 'http', address: { host: '127.0.0.1', port: 8080 } }],
    inflight: () => inflight,
    hub,
    now: () => now,
    wallNow: () => 1_700_000_000_000 + now,
  });
  traffic.intervalStart = 0;
  return {
    pool,
    stats,
    traffic,
    hub,
    live,
    setNow: (t: number) => (now = t),
    setInflight: (x: InflightRequest[]) => (inflight = x),
  };
}

describe('live statistics', () => {
  it("Little's law: N measured from the in-flight integral equals X*R in steady state", () => {
    // Requests of 100 ms, one every 50 ms, on server a (maxConnections 4): N = 2, X = 20/s, R = 100 ms.
    const t = setup([server('a', 4)]);
    const reqs: { start: number; end: number }[] = [];
    for (let k = 0; k < 300; k++) reqs.push({ start: 50 * k, end: 50 * k + 100 });
    let frame: StatsFrame | undefined;
    let done = 0;
    for (let tick = 1000; tick <= 14_000; tick += 1000) {
      // Requests that end before this tick are recorded in time order.
      while (done < reqs.length && reqs[done]!.end <= tick) {
        const r = reqs[done++]!;
        t.setNow(r.end);
        t.stats.requestDone(exchange({ server: 'a', startedAt: r.start, totalMs: r.end - r.start }));
      }
      t.setNow(tick);
      t.setInflight(reqs.filter((r) => r.start < tick && r.end > tick).map((r) => ({ pool: 'web', server: 'a', startedAt: r.start })));
      frame = t.live.tick();
    }
    const s = frame!.pools[0]!.servers[0]!;
    assert.equal(s.rps, 20);
    assert.equal(s.laws.X, 20);
    assert.equal(s.laws.R, 100);
    assert.ok(Math.abs(s.laws.N - 2) < 1e-6, `N ${s.laws.N}`);
    assert.ok(Math.abs(s.laws.XR! - 2) < 1e-6, `XR ${s.laws.XR}`);
    assert.ok(Math.abs(s.laws.U! - 0.5) < 1e-6, `U ${s.laws.U}`);
    assert.equal(s.laws.windowSec, 10);
    assert.ok(s.p50! > 80 && s.p50! <= 100, `p50 ${s.p50}`);
    const p = frame!.pools[0]!;
    assert.equal(p.laws.N, s.laws.N);
    assert.equal(p.laws.U, s.laws.U, 'every server is bounded: the pool has a utilisation too');
  });

  it('N is measured, not derived: a request that has not finished counts in N and not in X*R', () => {
    const t = setup([server('a')]);
    for (let tick = 1000; tick <= 3000; tick += 1000) {
      t.setNow(tick);
      t.setInflight([{ pool: 'web', server: 'a', startedAt: 500 }]);
      t.live.tick();
    }
    const s = t.live.last!.pools[0]!.servers[0]!;
    assert.ok(Math.abs(s.laws.N - 2.5 / 3) < 1e-3, `N ${s.laws.N}`);
    assert.equal(s.laws.X, 0);
    assert.equal(s.laws.XR, null);
    assert.equal(s.laws.U, null, 'no maxConnections: no utilisation');
  });

  it('rates, error rate, bytes, states and the effective weight are in the frame', () => {
    const t = setup([server('a'), server('b')]);
    t.setNow(500);
    for (let i = 0; i < 8; i++) t.stats.requestDone(exchange({ server: 'a', startedAt: 400, totalMs: 10, status: i < 2 ? 502 : 200 }));
    t.stats.requestDone(exchange({ server: '', status: 503, startedAt: 450, totalMs: 0.1 }));
    t.stats.connection('web');
    t.stats.rejected('web', 'bad-request');
    t.pool.setAdmin('b', 'drain');
    t.pool.setEffectiveWeight(serverId('web', 'a'), 1);
    t.setNow(2000);
    const f = t.live.tick();
    const [a, b] = f.pools[0]!.servers;
    assert.equal(f.intervalMs, 2000);
    assert.equal(a!.rps, 4);
    assert.equal(a!.errorRate, 0.25);
    assert.equal(a!.bytesPerSec, (8 * 300) / 2);
    assert.equal(a!.effectiveWeight, 1);
    assert.equal(a!.weight, 2);
    assert.equal(b!.admin, 'drain');
    assert.equal(b!.rps, 0);
    assert.equal(b!.p50, null);
    assert.equal(f.pools[0]!.rps, 4.5, 'the pool counts the request it could not place');
    assert.equal(f.pools[0]!.available, 1);
    assert.deepEqual(f.listeners[0], { name: 'web', protocol: 'http', address: '127.0.0.1:8080', rps: 4.5, connectionsPerSec: 0.5, rejectedPerSec: 0.5 });
    const hist = a!.hist;
    let total = 0;
    for (let i = 1; i < hist.length; i += 2) total += hist[i]!;
    assert.equal(total, 8);
    // The next interval starts empty.
    t.setNow(3000);
    const g = t.live.tick();
    assert.equal(g.pools[0]!.servers[0]!.rps, 0);
    assert.equal(g.listeners[0]!.rejectedPerSec, 0);
    // Traffic of a listener that no longer exists (removed by a reload) is dropped.
    t.stats.requestDone(exchange({ listener: 'gone', server: 'a' }));
    assert.ok(t.traffic.listeners.has('gone'));
    t.setNow(4000);
    t.live.tick();
    assert.ok(!t.traffic.listeners.has('gone'));
    assert.ok(t.traffic.listeners.has('web'));
  });

  it('pool events are republished as server events, and a removed server leaves the statistics', async () => {
    const t = setup([server('a'), server('b')]);
    const seen: unknown[] = [];
    t.hub.subscribe((ev) => seen.push({ type: ev.type, ...(ev.data as object) }));
    await t.live.start();
    try {
      t.pool.setAdmin('a', 'maint');
      t.pool.setOp(serverId('web', 'b'), 'down', 'probe', 'refused');
      t.pool.remove('b');
      assert.deepEqual(seen.slice(0, 3), [
        { type: 'server', pool: 'web', server: 'a', kind: 'admin', from: 'ready', to: 'maint', cause: 'admin' },
        { type: 'server', pool: 'web', server: 'b', kind: 'op', from: 'up', to: 'down', cause: 'probe', detail: 'refused' },
        { type: 'server', pool: 'web', server: 'b', kind: 'removed', from: 'ready', to: '', cause: 'admin' },
      ]);
      t.setNow(1000);
      assert.deepEqual(
        t.live.tick().pools[0]!.servers.map((s) => s.name),
        ['a'],
      );
      // Stopped, it hears nothing; started again, it hears the pools again.
      await t.live.stop();
      const n = seen.length;
      t.pool.setAdmin('a', 'ready');
      assert.equal(seen.length, n);
      await t.live.start();
      t.pool.setAdmin('a', 'drain');
      assert.equal(seen.length, n + 1);
    } finally {
      await t.live.stop();
    }
  });
});

describe('live statistics: caches', () => {
  it('a frame carries every cache: objects, bytes and answers from the cache (hit, stale, revalidated) over all its requests; none without caches', () => {
    const base = {
      traffic: new TrafficCounters(),
      stats: new RequestStats(),
      pools: new Map<string, Pool>(),
      listeners: () => [],
      inflight: () => [],
      hub: new EventHub(),
      now: () => 1000,
      wallNow: () => 1_700_000_000_000,
    };
    const requests = { hit: 4, miss: 3, stale: 1, revalidated: 2, bypass: 5, uncacheable: 6 };
    const live = new LiveStats({ ...base, caches: () => [{ name: 'main', requests, store: { entries: 7, bytes: 1234 } }] });
    assert.deepEqual(live.tick().caches, [{ name: 'main', entries: 7, bytes: 1234, fromCache: 7, requests: 21 }]);
    const none = new LiveStats({ ...base, caches: () => [] });
    assert.equal('caches' in none.tick(), false);
  });
});
