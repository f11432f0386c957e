import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { getBalancer } from '../balancer/registry.js';
import '../balancer/index.js';
import { ManualClock } from '../core/clock.js';
import { SeededRng } from '../core/rng.js';
import { serverId, type Server } from '../core/server.js';
import { Pool } from '../pool/pool.js';
import { EventHub } from '../observability/events.js';
import { LiveStats } from '../observability/live-stats.js';
import { HealthCheckCounters, Metrics } from '../observability/metrics.js';
import { RequestStats } from '../observability/request-stats.js';
import { exchange } from '../observability/testing.js';
import { TrafficCounters } from '../observability/traffic.js';
import { mergeBindingsViews, mergeCachesViews, mergeFrames, mergeMetrics, mergePoolViews, mergeServerViews, mergeService, type MetricsPart } from './stats-merge.js';

function server(name: string, maxConnections = 0): Server {
  return { id: serverId('web', name), name, host: '127.0.0.1', port: 1, weight: 2, backup: false, maxConnections, meta: {} };
}

/** One process's figures: a pool, its request statistics, metrics and live statistics. */
function worker(servers: Server[]) {
  const pool = new Pool(
    { name: 'web', factory: getBalancer('roundrobin')!, balancerOptions: undefined, rng: new SeededRng(1), clock: new ManualClock() },
    servers.map((s) => ({ server: s })),
  );
  const traffic = new TrafficCounters();
  const stats = new RequestStats();
  stats.onRequest(traffic.record);
  const health = new HealthCheckCounters();
  const metrics = new Metrics({ traffic, stats, pools: new Map([['web', pool]]), health, processMetrics: false });
  let now = 0;
  const live = new LiveStats({
    traffic,
    stats,
    pools: new Map([['web', pool]]),
    listeners: () => [{ name: 'web', protocol: 'http', address: { host: '127.0.0.1', port: 8080 } }],
    inflight: () => [],
    hub: new EventHub(),
    now: () => now,
    wallNow: () => 1_700_000_000_000 + now,
  });
  traffic.intervalStart = 0;
  return { pool, stats, health, metrics, live, setNow: (t: number) => (now = t) };
}

function sample(text: string, line: string): number | undefined {
  for (const l of text.split('\n')) if (l.startsWith(line + ' ')) return Number(l.slice(line.length + 1));
  return undefined;
}

describe('merging the figures of several workers', () => {
  it('metrics: counters and histograms add up, a server\'s state and weight are taken once, up is the lowest', async () => {
    const a = worker([server('a'), server('b')]);
    const b = worker([server('a'), server('b')]);
    for (let i = 0; i < 3; i++) a.stats.requestDone(exchange({ server: 'a', status: 200, totalMs: 0.7, bytesOut: 20 }));
    for (let i = 0; i < 5; i++) b.stats.requestDone(exchange({ server: 'a', status: 200, totalMs: 3000, bytesOut: 20 }));
    b.stats.requestDone(exchange({ server: 'b', status: 502, totalMs: 1 }));
    a.stats.connection('web');
    b.stats.connection('web');
    b.stats.connection('web');
    b.pool.setOp(serverId('web', 'b'), 'down', 'passive');
    const primary = new HealthCheckCounters();
    primary.add('web', 'a', 'success');
    primary.add('web', 'a', 'success');
    const primaryMetrics = new Metrics({ traffic: new TrafficCounters(), stats: new RequestStats(), pools: new Map(), health: primary, processMetrics: false });

    const parts = [await a.metrics.registry.getMetricsAsJSON(), await b.metrics.registry.getMetricsAsJSON(), await primaryMetrics.registry.getMetricsAsJSON()] as MetricsPart[];
    const text = await mergeMetrics(parts, { reporting: 2, running: 3 }).metrics();

    assert.equal(sample(text, 'portico_requests_total{listener="web",pool="web",server="a",code="200"}'), 8);
    assert.equal(sample(text, 'portico_requests_total{listener="web",pool="web",server="b",code="502"}'), 1);
    assert.equal(sample(text, 'portico_bytes_total{listener="web",pool="web",server="a",direction="out"}'), 160);
    assert.equal(sample(text, 'portico_connections_total{listener="web"}'), 3);
    const base = 'listener="web",pool="web",server="a"';
    assert.equal(sample(text, `portico_request_duration_seconds_bucket{${base},le="0.001"}`), 3);
    assert.equal(sample(text, `portico_request_duration_seconds_bucket{${base},le="+Inf"}`), 8);
    assert.equal(sample(text, `portico_request_duration_seconds_count{${base}}`), 8);
    assert.ok(Math.abs(sample(text, `portico_request_duration_seconds_sum{${base}}`)! - (3 * 0.0007 + 5 * 3)) < 1e-9);
    // Taken once, not doubled.
    assert.equal(sample(text, 'portico_server_weight{pool="web",server="a"}'), 2);
    assert.equal(sample(text, 'portico_server_state{pool="web",server="a",state="ready"}'), 1);
    // Down in one worker (its passive checks): down.
    assert.equal(sample(text, 'portico_server_up{pool="web",server="b"}'), 0);
    assert.equal(sample(text, 'portico_server_up{pool="web",server="a"}'), 1);
    assert.equal(sample(text, 'portico_health_checks_total{pool="web",server="a",result="success"}'), 2);
    assert.equal(sample(text, 'portico_workers{state="running"}'), 3);
    assert.equal(sample(text, 'portico_workers{state="reporting"}'), 2);
    // One HELP and one TYPE per metric, as a single process writes them.
    for (const name of ['portico_requests_total', 'portico_request_duration_seconds', 'portico_server_weight']) {
      assert.equal(text.split('\n').filter((l) => l === `# TYPE ${name} ${name === 'portico_request_duration_seconds' ? 'histogram' : name.endsWith('_total') ? 'counter' : 'gauge'}`).length, 1, name);
    }
  });

  it('frames: two workers\' frames merge into the frame of one process that saw every request', () => {
    const one = worker([server('a', 4), server('b', 4)]);
    // Each worker enforces its share of a server's maxConnections: 2 of the 4.
    const w1 = worker([server('a', 2), server('b', 2)]);
    const w2 = worker([server('a', 2), server('b', 2)]);
    // Worker 1: fast requests on a; worker 2: slow ones on a and b, two of them 5xx.
    const reqs: [typeof w1, string, number, number][] = [];
    for (let i = 0; i < 30; i++) reqs.push([w1, 'a', 1 + (i % 5), 200]);
    for (let i = 0; i < 10; i++) reqs.push([w2, i % 2 === 0 ? 'a' : 'b', 40 + i, i < 2 ? 502 : 200]);
    for (const [w, s, ms, status] of reqs) {
      const ex = exchange({ server: s, totalMs: ms, status, startedAt: 100, bytesIn: 10, bytesOut: 90 });
      w.stats.requestDone(ex);
      one.stats.requestDone(ex);
    }
    w1.stats.connection('web');
    w2.stats.connection('web');
    one.stats.connection('web');
    one.stats.connection('web');
    for (const w of [one, w1, w2]) w.setNow(1000);
    const whole = one.live.tick();
    const f1 = w1.live.tick();
    const f2 = w2.live.tick();
    const merged = mergeFrames(
      [
        { frame: f1, intervals: w1.live.lastIntervals() },
        { frame: f2, intervals: w2.live.lastIntervals() },
      ],
      { reporting: 2, running: 2 },
    )!;
    assert.deepEqual(merged.workers, { reporting: 2, running: 2 });
    const mp = merged.pools[0]!;
    const wp = whole.pools[0]!;
    for (const k of ['rps', 'errorRate', 'bytesPerSec', 'p50', 'p90', 'p99'] as const) assert.equal(mp[k], wp[k], `pool ${k}`);
    assert.equal(mp.laws.X, wp.laws.X);
    assert.equal(mp.laws.R, wp.laws.R);
    for (const name of ['a', 'b']) {
      const ms = mp.servers.find((s) => s.name === name)!;
      const ws = wp.servers.find((s) => s.name === name)!;
      for (const k of ['rps', 'errorRate', 'bytesPerSec', 'p50', 'p90', 'p99', 'requests', 'failures', 'inflight', 'weight', 'admin', 'op'] as const) assert.equal(ms[k], ws[k], `${name} ${k}`);
      assert.deepEqual(ms.hist, ws.hist, `${name} histogram`);
      // The group's capacity is the sum of the workers' shares, the utilisation their mean.
      assert.equal(ms.maxConnections, ws.maxConnections);
      assert.equal(ms.maxConnections, 4);
    }
    assert.equal(merged.listeners[0]!.rps, whole.listeners[0]!.rps);
    assert.equal(merged.listeners[0]!.connectionsPerSec, whole.listeners[0]!.connectionsPerSec);
  });

  it('frames: a server one worker has not seen yet is in the merged frame', () => {
    const w1 = worker([server('a')]);
    const w2 = worker([server('a'), server('new')]);
    w2.stats.requestDone(exchange({ server: 'new', totalMs: 5 }));
    w1.setNow(1000);
    w2.setNow(1000);
    const merged = mergeFrames(
      [
        { frame: w1.live.tick(), intervals: w1.live.lastIntervals() },
        { frame: w2.live.tick(), intervals: w2.live.lastIntervals() },
      ],
      { reporting: 2, running: 2 },
    )!;
    assert.deepEqual(
      merged.pools[0]!.servers.map((s) => [s.name, s.rps]),
      [
        ['a', 0],
        ['new', 1],
      ],
    );
    assert.equal(mergeFrames([], { reporting: 0, running: 0 }), undefined);
  });

  it('frames: the workers\' caches are summed by name; no cache, no caches key', () => {
    const w1 = worker([server('a')]);
    const w2 = worker([server('a')]);
    w1.setNow(1000);
    w2.setNow(1000);
    const f1 = w1.live.tick();
    const f2 = w2.live.tick();
    const bare = mergeFrames([{ frame: f1, intervals: {} }], { reporting: 1, running: 1 })!;
    assert.equal('caches' in bare, false);
    const merged = mergeFrames(
      [
        { frame: { ...f1, caches: [{ name: 'main', entries: 2, bytes: 100, fromCache: 5, requests: 9 }] }, intervals: {} },
        {
          frame: {
            ...f2,
            caches: [
              { name: 'main', entries: 3, bytes: 50, fromCache: 1, requests: 4 },
              { name: 'img', entries: 1, bytes: 10, fromCache: 0, requests: 1 },
            ],
          },
          intervals: {},
        },
      ],
      { reporting: 2, running: 2 },
    )!;
    assert.deepEqual(merged.caches, [
      { name: 'main', entries: 5, bytes: 150, fromCache: 6, requests: 13 },
      { name: 'img', entries: 1, bytes: 10, fromCache: 0, requests: 1 },
    ]);
  });

  it('GET /api/v1/caches: the workers\' figures summed, the shared tier\'s too; a cache without one has none', () => {
    const cache = (n: number, shared?: { hits: number; misses: number; writes: number; errors: number }) => ({
      name: 'main',
      entries: n,
      bytes: 10 * n,
      hits: n,
      misses: 1,
      stale: 0,
      revalidated: 0,
      hitRatio: n / (n + 1),
      evictions: 0,
      ...(shared === undefined ? {} : { shared }),
    });
    const ctx = { coverage: { reporting: 2, running: 2 }, pids: [1, 2] };
    const merged = mergeCachesViews(
      [{ caches: [cache(1, { hits: 1, misses: 2, writes: 3, errors: 0 }), { ...cache(0), name: 'local' }] }, { caches: [cache(3, { hits: 4, misses: 0, writes: 1, errors: 2 })] }],
      ctx,
    );
    const caches = merged['caches'] as Record<string, unknown>[];
    assert.deepEqual(caches[0], { name: 'main', entries: 4, bytes: 40, hits: 4, misses: 2, stale: 0, revalidated: 0, hitRatio: 4 / 6, evictions: 0, shared: { hits: 5, misses: 2, writes: 4, errors: 2 } });
    assert.equal('shared' in caches[1]!, false);
  });

  it('admin views: counters summed, probe details from the primary, the rest from the answering worker', () => {
    const view = (requests: number, active: number, health: string) => ({
      name: 'web',
      balance: 'roundrobin',
      servers: [
        { name: 'a', address: '127.0.0.1:1', state: 'ready', health, active, requests, failures: 1, serverErrors: 0, bytesIn: 10, bytesOut: 100, rates: null, meta: { zone: 'x' } },
      ],
      size: 1,
      inflight: active,
      rates: null,
    });
    const ctx = {
      coverage: { reporting: 2, running: 2 },
      pids: [10, 11],
      probes: { web: [{ server: 'a', passed: 7, failed: 1, last: { ok: true, latencyMs: 1.5 }, lastAt: 1_700_000_000_000 }] },
    };
    const merged = mergePoolViews([view(30, 2, 'up'), view(12, 1, 'down')], ctx) as unknown as {
      inflight: number;
      size: number;
      servers: Record<string, unknown>[];
      workers: unknown;
    };
    assert.equal(merged.inflight, 3);
    assert.equal(merged.size, 1);
    assert.deepEqual(merged.workers, { reporting: 2, running: 2 });
    const s = merged.servers[0]!;
    assert.equal(s['requests'], 42);
    assert.equal(s['active'], 3);
    assert.equal(s['failures'], 2);
    assert.equal(s['bytesOut'], 200);
    assert.equal(s['health'], 'up', 'taken from the answering worker');
    assert.deepEqual(s['probe'], { passed: 7, failed: 1, last: { ok: true, latencyMs: 1.5 }, lastAt: new Date(1_700_000_000_000).toISOString() });
    assert.equal(Object.keys(s).at(-1), 'meta');
    const one = mergeServerViews([view(30, 2, 'up').servers[0]!, view(12, 1, 'up').servers[0]!], 'web', ctx);
    assert.equal(one['requests'], 42);

    const b = mergeBindingsViews(
      [
        { listener: 'db', connections: 1, bindings: [{ client: '1' }] },
        { listener: 'db', connections: 2, bindings: [{ client: '2' }, { client: '3' }] },
      ],
      ctx,
    );
    assert.equal(b['connections'], 3);
    assert.equal((b['bindings'] as unknown[]).length, 3);
  });

  it('a pool view takes the discovery status from the primary, once; a static pool stays null', () => {
    const status = {
      type: 'file',
      source: '/s.json',
      servers: 2,
      updates: 3,
      failures: 1,
      ignoredEmpty: 0,
      lastError: 'bad',
      lastUpdateAt: '2026-01-01T00:00:00.000Z',
      lastErrorAt: '2026-01-01T00:00:01.000Z',
      usingLastKnownGood: true,
    };
    const partial = { name: 'web', servers: [], inflight: 0, discovery: { type: 'file', source: '/s.json' } };
    const ctx = { coverage: { reporting: 2, running: 2 }, pids: [1, 2], discovery: { web: status } };
    assert.deepEqual(mergePoolViews([partial, partial], ctx)['discovery'], status);
    // Without the primary's answer the workers' partial object stays.
    assert.deepEqual(mergePoolViews([partial, partial], { ...ctx, discovery: undefined })['discovery'], { type: 'file', source: '/s.json' });
    const fixed = { name: 'web', servers: [], inflight: 0, discovery: null };
    assert.equal(mergePoolViews([fixed], ctx)['discovery'], null);
  });
});

describe('mergeService', () => {
  const laws = (X: number) => ({ X, R: 20, N: 0, XR: 0, U: null, windowSec: 10 });
  it('the lowest low-load time, the throughput-weighted recent time, parallelism summed, the weakest source', () => {
    const m = mergeService([
      { service: { S: 20, T: 80, c: 2, cSource: 'saturation' }, laws: laws(100) },
      { service: { S: 21, T: 40, c: 2, cSource: 'maxConnections' }, laws: laws(300) },
    ]);
    assert.deepEqual(m, { S: 20, T: 50, c: 4, cSource: 'saturation' });
    const o = mergeService([
      { service: { S: null, T: null, c: null, cSource: null }, laws: laws(0) },
      { service: { S: 20, T: 20, c: 1, cSource: 'observed' }, laws: laws(10) },
    ]);
    assert.deepEqual(o, { S: 20, T: 20, c: 1, cSource: 'observed' });
  });
});
