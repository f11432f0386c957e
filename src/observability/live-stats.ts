import type { Pool, PoolEvent } from '../pool/pool.js';
import type { ServerRuntime } from '../pool/server-runtime.js';
import type { EventHub } from './events.js';
import type { CacheFigures } from './metrics.js';
import { FINE_BUCKETS, fineQuantile } from './latency.js';
import { estimateService, poolLaws, type PoolLaws, type ServiceEstimate, type ServiceSample } from './op-laws.js';
import type { RequestStats } from './request-stats.js';
import type { ServerTraffic, TrafficCounters } from './traffic.js';

/** A request in progress, as the data path shows it (an HttpSession is one). */
export interface InflightRequest {
  readonly pool: string;
  readonly server: string;
  /** performance.now() ms when its head arrived; 0 when the connection has no request in progress. */
  readonly startedAt: number;
}

export interface ListenerInfo {
  readonly name: string;
  readonly protocol: string;
  /** `kernel` for a kernel (nftables) listener. */
  readonly dataPlane?: 'kernel' | undefined;
  readonly address: { host: string; port: number };
}

/**
 * The operational laws over the window: X (throughput, requests/s), R (mean response
 * time, ms), N (mean requests in flight, measured as the time integral of the in-flight
 * count, independently of X and R), X*R (Little's law says N = X*R), and U (N over
 * maxConnections, when the server has one).
 */
export interface Laws {
  readonly X: number;
  readonly R: number | null;
  readonly N: number;
  readonly XR: number | null;
  readonly U: number | null;
  /** The window they were computed over, seconds. */
  readonly windowSec: number;
}

export interface TrafficFrame {
  /** Requests per second over the last interval. */
  readonly rps: number;
  /** 5xx share of the requests of the last interval (0..1), null with no request. */
  readonly errorRate: number | null;
  /** Bytes per second, both directions, over the last interval. */
  readonly bytesPerSec: number;
  /** Latency percentiles over the last interval, ms (null with no request). */
  readonly p50: number | null;
  readonly p90: number | null;
  readonly p99: number | null;
  readonly laws: Laws;
}

export interface ServerFrame extends TrafficFrame {
  readonly name: string;
  readonly address: string;
  readonly backup: boolean;
  readonly admin: string;
  readonly op: string;
  /** Configured weight. */
  readonly weight: number;
  /** Weight in force (lower than `weight` during slow start). */
  readonly effectiveWeight: number;
  readonly maxConnections: number;
  /** Requests in flight now. */
  readonly inflight: number;
  readonly requests: number;
  readonly failures: number;
  /** Latency histogram of the histogram window: [bucket, count, bucket, count ...] for non-empty fine buckets. */
  readonly hist: number[];
  /** Service time and parallelism estimated from the server's own timing (src/observability/op-laws.ts). */
  readonly service: ServiceEstimate;
}

export interface PoolFrame extends TrafficFrame {
  readonly name: string;
  readonly balance: string;
  readonly inflight: number;
  /** Requests waiting in the pool's queue now (every available server at maxConnections). */
  readonly queued: number;
  readonly available: number;
  readonly servers: ServerFrame[];
  /** Every operational law of the pool: demands, bottleneck, saturation bound, bounds (think time 0). */
  readonly operational: PoolLaws;
}

export interface ListenerFrame {
  readonly name: string;
  readonly protocol: string;
  /** `kernel` for a kernel (nftables) listener (the dashboard reads its counters); absent otherwise. */
  readonly dataPlane?: 'kernel' | undefined;
  readonly address: string;
  readonly rps: number;
  readonly connectionsPerSec: number;
  readonly rejectedPerSec: number;
}

/** What the `stats` event carries, once an interval. */
export interface StatsFrame {
  /** Wall-clock time of the end of the interval, ms since the epoch. */
  readonly time: number;
  readonly intervalMs: number;
  readonly listeners: ListenerFrame[];
  readonly pools: PoolFrame[];
  /** The configured caches (absent when there is none). */
  readonly caches?: CacheFrame[];
}

/** One cache in a frame: what it holds, and its answers since it was created (the dashboard diffs two frames for a rate). */
export interface CacheFrame {
  readonly name: string;
  readonly entries: number;
  readonly bytes: number;
  /** Requests answered from the cache: fresh hits, stale answers and revalidations. */
  readonly fromCache: number;
  /** Every request counted on routes with the cache (all results). */
  readonly requests: number;
}

export interface LiveStatsDeps {
  readonly traffic: TrafficCounters;
  readonly stats: RequestStats;
  /** The live map of pools (a reload may change it). */
  readonly pools: ReadonlyMap<string, Pool>;
  readonly listeners: () => Iterable<ListenerInfo>;
  readonly inflight: () => Iterable<InflightRequest>;
  readonly hub: EventHub;
  /** The configured caches (the app's CacheSet); none: frames carry no `caches`. */
  readonly caches?: (() => Iterable<CacheFigures>) | undefined;
  /** Monotonic ms (default performance.now). */
  readonly now?: () => number;
  /** Wall-clock ms (default Date.now). */
  readonly wallNow?: () => number;
  /** Length of an interval (default 1000 ms). */
  readonly intervalMs?: number;
  /** Intervals the laws are averaged over (default 10). */
  readonly lawWindow?: number;
  /** Intervals the per-server histogram covers (default 60). */
  readonly histWindow?: number;
  /** Intervals the service time and parallelism are estimated over (default 60). */
  readonly serviceWindow?: number;
}

/** One interval of one server (or of a pool's unplaced requests). */
interface Sample {
  dtMs: number;
  n: number;
  sumMs: number;
  areaMs: number;
}

/** The rolling windows kept per server. */
class ServerWindow {
  readonly samples: Sample[] = [];
  readonly hists: Float64Array[] = [];
  /** The long window of the server's own times (estimateService). */
  readonly service: ServiceSample[] = [];
  readonly histSum = new Float64Array(FINE_BUCKETS);
  last: { n: number; errs: number; bytes: number; dtMs: number; fine: Float64Array } = {
    n: 0,
    errs: 0,
    bytes: 0,
    dtMs: 0,
    fine: new Float64Array(FINE_BUCKETS),
  };

  push(t: ServerTraffic, dtMs: number, lawWindow: number, histWindow: number, serviceWindow: number): void {
    this.samples.push({ dtMs, n: t.n, sumMs: t.sumMs, areaMs: t.areaMs });
    if (this.samples.length > lawWindow) this.samples.shift();
    this.service.push({ dtMs, svcN: t.svcN, svcSumMs: t.svcSumMs });
    if (this.service.length > serviceWindow) this.service.shift();
    const h = this.hists.length >= histWindow ? this.hists.shift()! : new Float64Array(FINE_BUCKETS);
    const hs = this.histSum;
    for (let i = 0; i < FINE_BUCKETS; i++) {
      hs[i] = hs[i]! - h[i]! + t.fine[i]!;
      h[i] = t.fine[i]!;
    }
    this.hists.push(h);
    this.last = { n: t.n, errs: t.errs, bytes: t.bytes, dtMs, fine: h };
  }
}

/**
 * Once an interval: reads the traffic counters, the pools and the requests in flight,
 * computes rates, percentiles and the operational laws per server, pool and listener,
 * and publishes them as a `stats` event. It also republishes every pool event as a
 * `server` event (the dashboard's timeline). Nothing here runs per request.
 */
export class LiveStats {
  readonly name = 'live-stats';
  private readonly d: LiveStatsDeps;
  private readonly now: () => number;
  private readonly wallNow: () => number;
  readonly intervalMs: number;
  private readonly lawWindow: number;
  private readonly histWindow: number;
  private readonly serviceWindow: number;
  private readonly windows = new Map<string, Map<string, ServerWindow>>();
  private subscribed = new WeakSet<Pool>();
  private readonly unsubscribe: (() => void)[] = [];
  private prevConnections = new Map<string, number>();
  private prevRejected = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  /** The last frame computed (this process's own). */
  last: StatsFrame | undefined;
  /**
   * Where each frame goes (default: the hub, as a `stats` event). A worker of `cluster.workers`
   * sends it to be merged with the other workers' frames, and publishes the merged one.
   */
  publishFrame: (frame: StatsFrame) => void = (frame) => void this.d.hub.publish('stats', frame);

  constructor(deps: LiveStatsDeps) {
    this.d = deps;
    this.now = deps.now ?? (() => performance.now());
    this.wallNow = deps.wallNow ?? Date.now;
    this.intervalMs = deps.intervalMs ?? 1000;
    this.lawWindow = deps.lawWindow ?? 10;
    this.histWindow = deps.histWindow ?? 60;
    this.serviceWindow = deps.serviceWindow ?? 60;
  }

  async start(): Promise<void> {
    if (this.timer !== undefined) return;
    this.d.traffic.intervalStart = this.now();
    this.watchPools();
    this.timer = setInterval(() => {
      try {
        this.tick();
      } catch {
        // statistics never take the process down; the next tick tries again
      }
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    for (const u of this.unsubscribe.splice(0)) u();
    this.subscribed = new WeakSet();
  }

  /** Subscribe to the events of pools not seen yet (pools may come with a reload). */
  private watchPools(): void {
    for (const pool of this.d.pools.values()) {
      if (this.subscribed.has(pool)) continue;
      this.subscribed.add(pool);
      this.unsubscribe.push(pool.onEvent((ev) => this.onPoolEvent(ev)));
    }
  }

  private onPoolEvent(ev: PoolEvent): void {
    if (ev.kind === 'removed') {
      this.d.traffic.forget(ev.pool, ev.server);
      this.windows.get(ev.pool)?.delete(ev.server);
    }
    this.d.hub.publish('server', {
      pool: ev.pool,
      server: ev.server,
      kind: ev.kind,
      from: ev.from,
      to: ev.to,
      cause: ev.cause,
      ...(ev.detail === undefined ? {} : { detail: ev.detail }),
    });
  }

  private cacheFrames(): CacheFrame[] {
    const out: CacheFrame[] = [];
    for (const c of this.d.caches?.() ?? []) {
      const r = c.requests;
      let requests = 0;
      for (const k in r) requests += r[k]!;
      out.push({ name: c.name, entries: c.store.entries, bytes: c.store.bytes, fromCache: (r['hit'] ?? 0) + (r['stale'] ?? 0) + (r['revalidated'] ?? 0), requests });
    }
    return out;
  }

  /** Close the current interval: compute and publish its frame. Public for tests. */
  tick(): StatsFrame {
    const d = this.d;
    const t1 = this.now();
    const t0 = d.traffic.intervalStart;
    const dtMs = Math.max(t1 - t0, 1e-3);
    this.watchPools();

    // Requests still in flight contribute their time inside this interval to N.
    for (const r of d.inflight()) {
      const start = r.startedAt;
      if (start === 0 || r.pool === '') continue;
      d.traffic.serverTraffic(r.pool, r.server).areaMs += t1 - (start > t0 ? start : t0);
    }

    const pools: PoolFrame[] = [];
    for (const pool of d.pools.values()) pools.push(this.poolFrame(pool, dtMs));
    // Traffic of pools no longer configured is dropped with them ('' holds the requests answered
    // without a pool: no route, 405 ...; it stays).
    for (const [name, m] of d.traffic.servers) {
      if (name === '' || d.pools.has(name)) continue;
      for (const s of m.keys()) d.traffic.forget(name, s);
      d.traffic.servers.delete(name);
      this.windows.delete(name);
    }
    const listeners = this.listenerFrames(dtMs);
    d.traffic.intervalStart = t1;
    const caches = this.cacheFrames();
    const frame: StatsFrame = { time: this.wallNow(), intervalMs: Math.round(dtMs), listeners, pools, ...(caches.length === 0 ? {} : { caches }) };
    this.last = frame;
    this.publishFrame(frame);
    return frame;
  }

  /**
   * The figures of the last interval behind the last frame, per pool and server: requests,
   * 5xx answers, bytes and the fine latency histogram (sparse: [bucket, count, ...]). A pool's
   * include the requests it answered without a server. What merging the frames of several
   * processes needs beside the frames (percentiles are not added, histograms are).
   */
  lastIntervals(): Record<string, IntervalFigures & { readonly servers: Record<string, IntervalFigures> }> {
    const out: Record<string, IntervalFigures & { servers: Record<string, IntervalFigures> }> = {};
    for (const [pool, m] of this.windows) {
      const sum = new Float64Array(FINE_BUCKETS);
      let n = 0;
      let errs = 0;
      let bytes = 0;
      const servers: Record<string, IntervalFigures> = {};
      for (const [name, w] of m) {
        const l = w.last;
        n += l.n;
        errs += l.errs;
        bytes += l.bytes;
        for (let i = 0; i < FINE_BUCKETS; i++) sum[i] = sum[i]! + l.fine[i]!;
        if (name !== '') servers[name] = { n: l.n, errs: l.errs, bytes: l.bytes, fine: sparse(l.fine) };
      }
      out[pool] = { n, errs, bytes, fine: sparse(sum), servers };
    }
    return out;
  }

  private window(pool: string, server: string): ServerWindow {
    let m = this.windows.get(pool);
    if (m === undefined) {
      m = new Map();
      this.windows.set(pool, m);
    }
    let w = m.get(server);
    if (w === undefined) {
      w = new ServerWindow();
      m.set(server, w);
    }
    return w;
  }

  private poolFrame(pool: Pool, dtMs: number): PoolFrame {
    const traffic = this.d.traffic;
    const servers: ServerFrame[] = [];
    const sums: Sums = newSums();
    let capacity = 0;
    let everyBounded = true;
    for (const rt of pool) {
      const name = rt.server.name;
      const t = traffic.serverTraffic(pool.name, name);
      const w = this.window(pool.name, name);
      w.push(t, dtMs, this.lawWindow, this.histWindow, this.serviceWindow);
      t.resetInterval();
      servers.push(this.serverFrame(rt, w));
      addSums(sums, w);
      if (rt.server.maxConnections > 0) capacity += rt.server.maxConnections;
      else everyBounded = false;
    }
    // Requests the pool answered without a server (no server available, ...).
    const unplaced = traffic.servers.get(pool.name)?.get('');
    if (unplaced !== undefined) {
      const w = this.window(pool.name, '');
      w.push(unplaced, dtMs, this.lawWindow, this.histWindow, this.serviceWindow);
      unplaced.resetInterval();
      addSums(sums, w);
    }
    const frame = trafficFrame(sums.n, sums.errs, sums.bytes, dtMs, sums.fine, lawsOf(sums.samples, everyBounded && capacity > 0 ? capacity : 0));
    const available = pool.current.set.available;
    return {
      name: pool.name,
      balance: pool.current.balancer.name,
      inflight: pool.inflight,
      queued: pool.queued,
      available: available.length,
      servers,
      ...frame,
      operational: operationalLaws(frame.laws, servers, (name) => available.some((s) => s.name === name)),
    };
  }

  private serverFrame(rt: ServerRuntime, w: ServerWindow): ServerFrame {
    const s = rt.server;
    const l = w.last;
    const hist: number[] = [];
    for (let i = 0; i < FINE_BUCKETS; i++) {
      const c = w.histSum[i]!;
      if (c > 0) hist.push(i, c);
    }
    return {
      name: s.name,
      address: s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`,
      backup: s.backup,
      admin: rt.admin,
      op: rt.op,
      weight: s.weight,
      effectiveWeight: rt.weight,
      maxConnections: s.maxConnections,
      inflight: rt.active,
      requests: rt.requests,
      failures: rt.failures,
      hist,
      ...trafficFrame(l.n, l.errs, l.bytes, l.dtMs, l.fine, lawsOf(w.samples, s.maxConnections)),
      service: estimateService(w.service, s.maxConnections, { recent: this.lawWindow }),
    };
  }

  private listenerFrames(dtMs: number): ListenerFrame[] {
    const stats = this.d.stats;
    const conns = new Map(stats.connections);
    const rejected = new Map<string, number>();
    for (const [k, v] of stats.rejections) {
      const l = k.slice(0, k.indexOf('\u0000'));
      rejected.set(l, (rejected.get(l) ?? 0) + v);
    }
    const out: ListenerFrame[] = [];
    const perSec = 1000 / dtMs;
    for (const l of this.d.listeners()) {
      const lt = this.d.traffic.listeners.get(l.name);
      const n = lt?.n ?? 0;
      if (lt !== undefined) lt.n = 0;
      const c = (conns.get(l.name) ?? 0) - (this.prevConnections.get(l.name) ?? 0);
      const r = (rejected.get(l.name) ?? 0) - (this.prevRejected.get(l.name) ?? 0);
      const h = l.address.host;
      out.push({
        name: l.name,
        protocol: l.protocol,
        ...(l.dataPlane === undefined ? {} : { dataPlane: l.dataPlane }),
        address: `${h.includes(':') ? `[${h}]` : h}:${l.address.port}`,
        rps: round3(n * perSec),
        connectionsPerSec: round3(c * perSec),
        rejectedPerSec: round3(r * perSec),
      });
    }
    // A listener a reload removed leaves the metrics with its counters.
    const names = new Set(out.map((l) => l.name));
    for (const name of this.d.traffic.listeners.keys()) if (!names.has(name)) this.d.traffic.listeners.delete(name);
    this.prevConnections = conns;
    this.prevRejected = rejected;
    return out;
  }
}

/** One interval of a server or pool: requests, 5xx answers, bytes, and the sparse fine latency histogram. */
export interface IntervalFigures {
  readonly n: number;
  readonly errs: number;
  readonly bytes: number;
  /** [bucket, count, bucket, count ...] for the non-empty fine buckets. */
  readonly fine: readonly number[];
}

function sparse(h: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < h.length; i++) if (h[i]! > 0) out.push(i, h[i]!);
  return out;
}

interface Sums {
  n: number;
  errs: number;
  bytes: number;
  fine: Float64Array;
  /** Per interval position in the window, summed over servers. */
  samples: Sample[];
}

function newSums(): Sums {
  return { n: 0, errs: 0, bytes: 0, fine: new Float64Array(FINE_BUCKETS), samples: [] };
}

function addSums(s: Sums, w: ServerWindow): void {
  const l = w.last;
  s.n += l.n;
  s.errs += l.errs;
  s.bytes += l.bytes;
  for (let i = 0; i < FINE_BUCKETS; i++) s.fine[i] = s.fine[i]! + l.fine[i]!;
  // Align the server's samples with the pool's from the most recent backwards.
  const ws = w.samples;
  for (let k = 0; k < ws.length; k++) {
    const from = ws[ws.length - 1 - k]!;
    let to = s.samples[s.samples.length - 1 - k];
    if (to === undefined) {
      to = { dtMs: from.dtMs, n: 0, sumMs: 0, areaMs: 0 };
      s.samples.unshift(to);
    }
    to.n += from.n;
    to.sumMs += from.sumMs;
    to.areaMs += from.areaMs;
  }
}

/** The operational laws of a pool from its frame's figures (also used on the frames merged from workers). */
export function operationalLaws(laws: Laws, servers: readonly ServerFrame[], inService: (name: string) => boolean, Z = 0): PoolLaws {
  return poolLaws(
    {
      X: laws.X,
      R: laws.R,
      N: laws.N,
      servers: servers.map((f) => ({ name: f.name, X: f.laws.X, weight: f.weight, inService: inService(f.name), S: f.service.S, c: f.service.c, cSource: f.service.cSource })),
    },
    Z,
  );
}

function lawsOf(samples: readonly Sample[], maxConnections: number): Laws {
  let dtMs = 0;
  let n = 0;
  let sumMs = 0;
  let areaMs = 0;
  for (const s of samples) {
    dtMs += s.dtMs;
    n += s.n;
    sumMs += s.sumMs;
    areaMs += s.areaMs;
  }
  if (dtMs <= 0) return { X: 0, R: null, N: 0, XR: null, U: null, windowSec: 0 };
  const X = (n * 1000) / dtMs;
  const R = n > 0 ? sumMs / n : null;
  const N = areaMs / dtMs;
  return {
    X: round3(X),
    R: R === null ? null : round3(R),
    N: round4(N),
    XR: R === null ? null : round4((X * R) / 1000),
    U: maxConnections > 0 ? round4(N / maxConnections) : null,
    windowSec: round3(dtMs / 1000),
  };
}

function trafficFrame(n: number, errs: number, bytes: number, dtMs: number, fine: Float64Array, laws: Laws): TrafficFrame {
  const perSec = dtMs > 0 ? 1000 / dtMs : 0;
  const q = (p: number): number | null => (n > 0 ? round3(fineQuantile(fine, p)) : null);
  return {
    rps: round3(n * perSec),
    errorRate: n > 0 ? round4(errs / n) : null,
    bytesPerSec: Math.round(bytes * perSec),
    p50: q(0.5),
    p90: q(0.9),
    p99: q(0.99),
    laws,
  };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function round4(x: number): number {
  return Math.round(x * 10000) / 10000;
}
