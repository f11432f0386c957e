import { AggregatorRegistry, type PrometheusContentType, type Registry } from 'prom-client';
import { cacheHitRatio } from '../cache/cache.js';
import type { DiscoveryStatus } from '../discovery/status.js';
import { FINE_BUCKETS, fineQuantile } from '../observability/latency.js';
import { operationalLaws, type CacheFrame, type IntervalFigures, type Laws, type ListenerFrame, type PoolFrame, type ServerFrame, type StatsFrame, type TrafficFrame } from '../observability/live-stats.js';
import { lawsView } from '../observability/laws-view.js';
import type { ServiceEstimate } from '../observability/op-laws.js';
import { CollectedMetric } from '../observability/metrics.js';

/**
 * One view of several worker processes (`cluster.workers`): the figures each worker keeps of
 * the requests it served, merged. Counters and gauges that count (requests, bytes, connections
 * in flight, queue lengths) are summed; what every worker holds alike (a server's state, weight,
 * address) is taken once, from the first part (the worker that answers); rates are summed and
 * latency percentiles read from the sum of the workers' histograms. Pure functions: the IPC that
 * gathers the parts is src/cluster/workers-stats.ts.
 */

/** How many workers an answer covers: those that answered in time, of those running. */
export interface Coverage {
  readonly reporting: number;
  readonly running: number;
}

/** The figures of one interval of one worker, by pool (LiveStats.lastIntervals()). */
export type IntervalsByPool = Readonly<Record<string, IntervalFigures & { readonly servers: Readonly<Record<string, IntervalFigures>> }>>;

/** One worker's statistics frame with what merging it needs. */
export interface WorkerFrame {
  readonly frame: StatsFrame;
  readonly intervals: IntervalsByPool;
}

/** A merged frame: the StatsFrame of the whole group, and how many workers it covers. */
export type MergedFrame = StatsFrame & { readonly workers: Coverage };

// ---- metrics ------------------------------------------------------------------------------

/** One process's metrics as prom-client's Registry.getMetricsAsJSON() gives them. */
export type MetricsPart = readonly object[];

/**
 * The Prometheus registry of the whole group: every worker's metrics (and the primary's, which
 * counts the health checks it runs) combined by each metric's `aggregator` with prom-client's
 * AggregatorRegistry.aggregate, plus `portico_workers{state}`: the workers running and the number
 * whose figures are in this answer. The first part wins where a metric is taken once.
 */
export function mergeMetrics(parts: readonly MetricsPart[], coverage: Coverage): Registry {
  const reg = AggregatorRegistry.aggregate<PrometheusContentType>([...parts] as object[]);
  reg.registerMetric(
    new CollectedMetric('portico_workers', 'Worker processes (cluster.workers): running, and reporting (whose figures this answer sums)', 'gauge', function* () {
      yield { labels: { state: 'running' }, value: coverage.running };
      yield { labels: { state: 'reporting' }, value: coverage.reporting };
    }) as never,
  );
  return reg;
}

// ---- statistics frames --------------------------------------------------------------------

/** Merge the latest frame of every worker; the first frame gives what is taken once. */
export function mergeFrames(parts: readonly WorkerFrame[], coverage: Coverage): MergedFrame | undefined {
  const first = parts[0];
  if (first === undefined) return undefined;
  let time = 0;
  for (const p of parts) if (p.frame.time > time) time = p.frame.time;
  const listeners = byName(parts.map((p) => p.frame.listeners)).map(mergeListener);
  const pools = byName(parts.map((p) => p.frame.pools.map((f) => ({ f, fig: p.intervals[f.name] })))).map((list) => mergePool(list));
  const cacheLists = parts.map((p) => p.frame.caches ?? []);
  const caches = byName(cacheLists).map(
    (list): CacheFrame => ({
      name: list[0]!.name,
      entries: sum(list, (c) => c.entries),
      bytes: sum(list, (c) => c.bytes),
      fromCache: sum(list, (c) => c.fromCache),
      requests: sum(list, (c) => c.requests),
    }),
  );
  return { time, intervalMs: first.frame.intervalMs, listeners, pools, ...(caches.length === 0 ? {} : { caches }), workers: coverage };
}

function mergeListener(list: readonly ListenerFrame[]): ListenerFrame {
  const f = list[0]!;
  return {
    name: f.name,
    protocol: f.protocol,
    address: f.address,
    rps: round3(sum(list, (l) => l.rps)),
    connectionsPerSec: round3(sum(list, (l) => l.connectionsPerSec)),
    rejectedPerSec: round3(sum(list, (l) => l.rejectedPerSec)),
  };
}

interface WithFigures<F> {
  readonly f: F;
  readonly fig: IntervalFigures | undefined;
}

function mergePool(list: readonly WithFigures<PoolFrame>[]): PoolFrame {
  const f = list[0]!.f;
  const servers = byName(list.map(({ f: pf, fig }) => pf.servers.map((s) => ({ f: s, fig: (fig as { servers?: Record<string, IntervalFigures> } | undefined)?.servers?.[s.name] })))).map(
    mergeServer,
  );
  const traffic = mergeTraffic(list);
  // Which servers take requests: as the first part's laws counted them (a share, or a weight without traffic).
  const inService = new Set(f.operational?.servers.filter((s) => s.V > 0).map((s) => s.name) ?? []);
  return {
    name: f.name,
    balance: f.balance,
    inflight: sum(list, (x) => x.f.inflight),
    queued: sum(list, (x) => x.f.queued),
    available: f.available,
    servers,
    ...traffic,
    operational: operationalLaws(traffic.laws, servers, (name) => inService.has(name)),
  };
}

/**
 * A server's service estimate over several workers: each sees the same server, so the low-load
 * time is the lowest of theirs and the recent time their mean weighted by throughput; each
 * worker's parallelism is the share of the server's slots its requests used (its share of
 * maxConnections, or its busy slots at saturation), so the group's is their sum. One part whose
 * parallelism is only a lower bound makes the sum one.
 */
export function mergeService(list: readonly { readonly service: ServiceEstimate; readonly laws: Laws }[]): ServiceEstimate {
  let S: number | null = null;
  let tw = 0;
  let tx = 0;
  let c: number | null = null;
  let source: ServiceEstimate['cSource'] = null;
  const rank = { maxConnections: 1, saturation: 2, observed: 3 } as const;
  for (const { service: e, laws } of list) {
    if (e.S !== null && (S === null || e.S < S)) S = e.S;
    if (e.T !== null) {
      tw += e.T * Math.max(laws.X, 1e-9);
      tx += Math.max(laws.X, 1e-9);
    }
    if (e.c !== null) c = (c ?? 0) + e.c;
    if (e.cSource !== null && (source === null || rank[e.cSource] > rank[source])) source = e.cSource;
  }
  return { S, T: tx > 0 ? tw / tx : null, c, cSource: source };
}

function mergeServer(list: readonly WithFigures<ServerFrame>[]): ServerFrame {
  const f = list[0]!.f;
  return {
    name: f.name,
    address: f.address,
    backup: f.backup,
    admin: f.admin,
    op: f.op,
    weight: f.weight,
    effectiveWeight: f.effectiveWeight,
    maxConnections: sum(list, (x) => x.f.maxConnections),
    inflight: sum(list, (x) => x.f.inflight),
    requests: sum(list, (x) => x.f.requests),
    failures: sum(list, (x) => x.f.failures),
    hist: sparse(addSparse(list.map((x) => x.f.hist))),
    ...mergeTraffic(list),
    service: mergeService(list.map((x) => x.f)),
  };
}

/**
 * Rates of several workers over their last intervals: requests and bytes per second add up; the
 * error rate is the 5xx share of all their requests; percentiles come from the summed histograms.
 */
export function mergeTraffic(list: readonly WithFigures<TrafficFrame & { readonly intervalMs?: number }>[]): TrafficFrame {
  let n = 0;
  let errs = 0;
  const fine = new Float64Array(FINE_BUCKETS);
  let finePart = false;
  for (const { f, fig } of list) {
    if (fig !== undefined) {
      n += fig.n;
      errs += fig.errs;
      addInto(fine, fig.fine);
      finePart = true;
    }
  }
  const q = (p: number, own: (t: TrafficFrame) => number | null): number | null => {
    if (n > 0 && finePart) return round3(fineQuantile(fine, p));
    // Without the histograms (a part that did not send them), the highest of the parts' own.
    let best: number | null = null;
    for (const { f } of list) {
      const v = own(f);
      if (v !== null && (best === null || v > best)) best = v;
    }
    return best;
  };
  return {
    rps: round3(sum(list, (x) => x.f.rps)),
    errorRate: n > 0 ? round4(errs / n) : null,
    bytesPerSec: Math.round(sum(list, (x) => x.f.bytesPerSec)),
    p50: q(0.5, (t) => t.p50),
    p90: q(0.9, (t) => t.p90),
    p99: q(0.99, (t) => t.p99),
    laws: mergeLaws(list.map((x) => x.f.laws)),
  };
}

/**
 * The operational laws of several workers: throughputs and requests in flight add up, the mean
 * response time is weighted by throughput, and the utilisation is the mean of theirs (each worker
 * enforces its share of a server's maxConnections, so the group's capacity is their sum).
 */
export function mergeLaws(list: readonly Laws[]): Laws {
  let X = 0;
  let N = 0;
  let xr = 0;
  let xForR = 0;
  let uSum = 0;
  let uCount = 0;
  let windowSec = 0;
  for (const l of list) {
    X += l.X;
    N += l.N;
    if (l.R !== null) {
      xr += l.X * l.R;
      xForR += l.X;
    }
    if (l.U !== null) {
      uSum += l.U;
      uCount++;
    }
    if (l.windowSec > windowSec) windowSec = l.windowSec;
  }
  const R = xForR > 0 ? xr / xForR : null;
  return {
    X: round3(X),
    R: R === null ? null : round3(R),
    N: round4(N),
    XR: R === null ? null : round4((X * R) / 1000),
    U: uCount === 0 ? null : round4(uSum / uCount),
    windowSec,
  };
}

// ---- admin API views ----------------------------------------------------------------------

/** A health monitor's status of one server, as the primary (which runs the probes) reports it. */
export interface ProbeFacts {
  readonly server: string;
  readonly passed: number;
  readonly failed: number;
  readonly last?: unknown;
  readonly lastAt: number;
}

/** What the views of the workers are merged with. */
export interface ViewContext {
  readonly coverage: Coverage;
  /** The pids of the workers whose views are merged, the answering one first. */
  readonly pids: readonly number[];
  /** The merged statistics frame (rates); undefined before the first. */
  readonly frame?: MergedFrame | undefined;
  /** Per pool, the probes' status from the primary. */
  readonly probes?: Readonly<Record<string, readonly ProbeFacts[]>> | undefined;
  /** Per pool, the discovery status from the primary. */
  readonly discovery?: Readonly<Record<string, DiscoveryStatus>> | undefined;
}

type View = Record<string, unknown>;

/** The admin API reads that carry per-worker figures, and how the answers of every worker are merged. */
export const MERGED_VIEWS = {
  '/api/v1/status': mergeStatusViews,
  '/api/v1/pools': mergePoolsViews,
  '/api/v1/pools/{pool}': mergePoolViews,
  '/api/v1/pools/{pool}/laws': mergeLawsViews,
  '/api/v1/pools/{pool}/servers/{name}': mergeServerViewsOf,
  '/api/v1/listeners/{listener}/bindings': mergeBindingsViews,
  '/api/v1/caches': mergeCachesViews,
} as const satisfies Record<string, (views: readonly View[], ctx: ViewContext, params: Readonly<Record<string, string>>) => View>;

export type MergedViewPattern = keyof typeof MERGED_VIEWS;

/** `GET /api/v1/status`: the answering worker's, with the workers it covers. */
export function mergeStatusViews(views: readonly View[], ctx: ViewContext): View {
  return { ...views[0], workers: { ...ctx.coverage, pids: ctx.pids } };
}

/** `GET /api/v1/pools`. */
export function mergePoolsViews(views: readonly View[], ctx: ViewContext): View {
  const lists = views.map((v) => (Array.isArray(v['pools']) ? (v['pools'] as View[]) : []));
  return { pools: byName(lists).map((list) => poolView(list, ctx)), workers: ctx.coverage };
}

/** `GET /api/v1/pools/{pool}`. */
export function mergePoolViews(views: readonly View[], ctx: ViewContext): View {
  return { ...poolView(views, ctx), workers: ctx.coverage };
}

/**
 * `GET /api/v1/pools/{pool}/laws`: the laws computed again from the merged frame (the group's
 * throughput and in-flight count, its servers' merged estimates), at the think time asked for.
 */
export function mergeLawsViews(views: readonly View[], ctx: ViewContext, params: Readonly<Record<string, string>>): View {
  const first = views[0]!;
  const frame = ctx.frame?.pools.find((p) => p.name === params['pool']);
  if (frame === undefined || frame.operational === undefined) return { ...first, workers: ctx.coverage };
  const servers = Array.isArray(first['servers']) ? (first['servers'] as View[]) : [];
  const inService = new Set(servers.filter((s) => typeof s['V'] === 'number' && s['V'] > 0).map((s) => String(s['name'])));
  const Z = typeof first['Z'] === 'number' ? first['Z'] : 0;
  return { ...lawsView(frame, ctx.frame!.time, (name) => inService.has(name), Z), workers: ctx.coverage };
}

function mergeServerViewsOf(views: readonly View[], ctx: ViewContext, params: Readonly<Record<string, string>>): View {
  return { ...mergeServerViews(views, params['pool'] ?? '', ctx), workers: ctx.coverage };
}

/** `GET /api/v1/listeners/{listener}/bindings`: every worker's connections. */
export function mergeBindingsViews(views: readonly View[], ctx: ViewContext): View {
  const bindings: unknown[] = [];
  for (const v of views) if (Array.isArray(v['bindings'])) bindings.push(...(v['bindings'] as unknown[]));
  return { ...views[0], connections: bindings.length, bindings, workers: ctx.coverage };
}

const CACHE_SUMS = ['entries', 'bytes', 'hits', 'misses', 'stale', 'revalidated', 'evictions'] as const;
const SHARED_SUMS = ['hits', 'misses', 'writes', 'errors'] as const;

/** `GET /api/v1/caches`: each worker holds its own cache; the figures are their sums. */
export function mergeCachesViews(views: readonly View[], ctx: ViewContext): View {
  const lists = views.map((v) => (Array.isArray(v['caches']) ? (v['caches'] as View[]) : []));
  const caches = byName(lists).map((list) => {
    const out: View = { ...list[0] };
    for (const k of CACHE_SUMS) out[k] = sumField(list, k);
    // A shared cache's tier figures: each worker counts its own lookups and writes.
    const shared = list.map((c) => c['shared']).filter((s): s is View => typeof s === 'object' && s !== null);
    if (shared.length > 0) out['shared'] = Object.fromEntries(SHARED_SUMS.map((k) => [k, sumField(shared, k)]));
    // The group's ratio, from the summed counts (not a sum of ratios).
    if ('hitRatio' in out) out['hitRatio'] = cacheHitRatio(out['hits'] as number, out['misses'] as number, out['stale'] as number, out['revalidated'] as number);
    return out;
  });
  return { caches, workers: ctx.coverage };
}

const POOL_SUMS = ['inflight'] as const;
const SERVER_SUMS = ['active', 'maxConnections', 'requests', 'failures', 'serverErrors', 'bytesIn', 'bytesOut'] as const;

function poolView(views: readonly View[], ctx: ViewContext): View {
  const first = views[0]!;
  const name = String(first['name']);
  const out: View = { ...first };
  for (const k of POOL_SUMS) out[k] = sumField(views, k);
  const lists = views.map((v) => (Array.isArray(v['servers']) ? (v['servers'] as View[]) : []));
  out['servers'] = byName(lists).map((list) => mergeServerViews(list, name, ctx));
  const frame = ctx.frame?.pools.find((p) => p.name === name);
  if (frame !== undefined) out['rates'] = ratesOf(frame, ctx.frame!.intervalMs);
  const discovery = ctx.discovery?.[name];
  if (discovery !== undefined && out['discovery'] !== null) out['discovery'] = discovery;
  return out;
}

/** One server's view from every worker: counters summed, probe details from the primary, rates from the merged frame. */
export function mergeServerViews(views: readonly View[], pool: string, ctx: ViewContext): View {
  const first = views[0]!;
  const name = String(first['name']);
  const out: View = { ...first };
  for (const k of SERVER_SUMS) out[k] = sumField(views, k);
  const probe = ctx.probes?.[pool]?.find((p) => p.server === name);
  if (probe !== undefined) {
    out['probe'] = { passed: probe.passed, failed: probe.failed, last: probe.last ?? null, lastAt: probe.lastAt === 0 ? null : new Date(probe.lastAt).toISOString() };
  }
  const frame = ctx.frame?.pools.find((p) => p.name === pool)?.servers.find((s) => s.name === name);
  if (frame !== undefined) out['rates'] = ratesOf(frame, ctx.frame!.intervalMs);
  // Keep the key order of a single process's answer (meta last).
  if ('meta' in out) {
    const meta = out['meta'];
    delete out['meta'];
    out['meta'] = meta;
  }
  return out;
}

/** The `rates` of the admin API from a frame (as src/admin/api.ts shows them). */
function ratesOf(f: TrafficFrame, intervalMs: number): View {
  return { rps: f.rps, errorRate: f.errorRate, bytesPerSec: f.bytesPerSec, p50Ms: f.p50, p90Ms: f.p90, p99Ms: f.p99, intervalMs };
}

// ---- helpers ------------------------------------------------------------------------------

/**
 * Items of several lists grouped by `name` (or by `f.name`): in the order of the first list,
 * then of the others for names it lacks.
 */
function byName<T>(lists: readonly (readonly T[])[]): T[][] {
  const groups = new Map<string, T[]>();
  for (const list of lists) {
    for (const item of list) {
      const o = item as { name?: unknown; f?: { name?: unknown } };
      const key = String(o.name ?? o.f?.name);
      const g = groups.get(key);
      if (g === undefined) groups.set(key, [item]);
      else g.push(item);
    }
  }
  return [...groups.values()];
}

function sum<T>(list: readonly T[], f: (x: T) => number): number {
  let s = 0;
  for (const x of list) s += f(x);
  return s;
}

function sumField(views: readonly View[], key: string): number {
  let s = 0;
  for (const v of views) {
    const x = v[key];
    if (typeof x === 'number') s += x;
  }
  return s;
}

function addInto(dst: Float64Array, sparseHist: readonly number[]): void {
  for (let i = 0; i + 1 < sparseHist.length; i += 2) {
    const b = sparseHist[i]!;
    if (b >= 0 && b < dst.length) dst[b] = dst[b]! + sparseHist[i + 1]!;
  }
}

function addSparse(list: readonly (readonly number[])[]): Float64Array {
  const out = new Float64Array(FINE_BUCKETS);
  for (const h of list) addInto(out, h);
  return out;
}

function sparse(h: Float64Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < h.length; i++) if (h[i]! > 0) out.push(i, h[i]!);
  return out;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function round4(x: number): number {
  return Math.round(x * 10000) / 10000;
}
