import { Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { Pool } from '../pool/pool.js';
import type { ServerRuntime } from '../pool/server-runtime.js';
import { PROM_BUCKETS_SEC } from './latency.js';
import type { RequestStats } from './request-stats.js';
import type { TrafficCounters } from './traffic.js';

type Labels = Record<string, string>;
interface Sample {
  readonly labels: Labels;
  readonly value: number;
  readonly metricName?: string;
}

/**
 * How the samples of several processes (`cluster.workers`) are combined into one, as prom-client's
 * AggregatorRegistry.aggregate reads it: `sum` for counters and for gauges that count (connections
 * in flight), `first` for a value every process holds alike (a server's state, its weight), `min`
 * for a gauge that is 0 when any process sees the thing down.
 */
export type MetricAggregator = 'sum' | 'first' | 'min' | 'max';

/**
 * A metric whose samples are produced at scrape time from counters the data path keeps
 * (prom-client's own Counter would hash its labels on every increment). It has the shape
 * prom-client's Registry formats: name, help, type, get().
 */
export class CollectedMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly aggregator: MetricAggregator;
  private readonly produce: () => Iterable<Sample>;

  constructor(name: string, help: string, type: 'counter' | 'gauge' | 'histogram', produce: () => Iterable<Sample>, aggregator: MetricAggregator = 'sum') {
    this.name = name;
    this.help = help;
    this.type = type;
    this.produce = produce;
    this.aggregator = aggregator;
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: [...this.produce()] };
  }

  reset(): void {
    // the counters belong to the data path; a scrape never resets them
  }
}

/** Counts of active health checks by result, per server; the health monitors feed it. */
export class HealthCheckCounters {
  private readonly counts = new Map<string, { pool: string; server: string; result: string; n: number }>();

  /** One finished check. `result` is `success` or the failure reason (`timeout`, `refused`, `status` ...). */
  add(pool: string, server: string, result: string): void {
    const k = `${pool}\u0000${server}\u0000${result}`;
    const c = this.counts.get(k);
    if (c !== undefined) c.n++;
    else this.counts.set(k, { pool, server, result, n: 1 });
  }

  forget(pool: string, server: string): void {
    for (const [k, c] of this.counts) if (c.pool === pool && c.server === server) this.counts.delete(k);
  }

  *entries(): IterableIterator<{ pool: string; server: string; result: string; n: number }> {
    yield* this.counts.values();
  }
}

/** `portico_health_checks_total` from the counters the health monitors feed. */
export function healthChecksMetric(health: HealthCheckCounters | undefined): CollectedMetric {
  return new CollectedMetric('portico_health_checks_total', 'Active health checks run, by pool, server and result', 'counter', function* () {
    if (health === undefined) return;
    for (const c of health.entries()) yield { labels: { pool: c.pool, server: c.server, result: c.result }, value: c.n };
  });
}

/** `portico_compressed_bytes_total` from the compression phases' counters (SPEC §6). */
export function compressedBytesMetric(c: { readonly bytes: ReadonlyMap<string, { in: number; out: number }> }): CollectedMetric {
  return new CollectedMetric(
    'portico_compressed_bytes_total',
    'Bytes through response compression, by listener and algorithm: from the servers (in) and toward the clients (out)',
    'counter',
    function* () {
      for (const [k, t] of c.bytes) {
        const at = k.indexOf('\u0000');
        const listener = k.slice(0, at);
        const algorithm = k.slice(at + 1);
        yield { labels: { listener, algorithm, direction: 'in' }, value: t.in };
        yield { labels: { listener, algorithm, direction: 'out' }, value: t.out };
      }
    },
  );
}

/** What the cache metrics read of one cache at scrape time (src/cache/cache.ts's Cache fits). */
export interface CacheFigures {
  readonly name: string;
  readonly requests: Readonly<Record<string, number>>;
  readonly store: { readonly entries: number; readonly bytes: number };
  /** The shared tier's figures (`shared: true`), undefined without one. */
  readonly shared?: { readonly counters: { readonly hits: number; readonly misses: number; readonly writes: number; readonly errors: number } } | undefined;
}

/** `portico_cache_requests_total{cache,result}`, `portico_cache_bytes{cache}`, `portico_cache_entries{cache}` (SPEC §6). */
export function cacheMetrics(caches: () => Iterable<CacheFigures>): CollectedMetric[] {
  return [
    new CollectedMetric('portico_cache_requests_total', 'Requests on routes with a cache, by cache and result (hit, miss, stale, revalidated, bypass, uncacheable)', 'counter', function* () {
      for (const c of caches()) for (const [result, n] of Object.entries(c.requests)) yield { labels: { cache: c.name, result }, value: n };
    }),
    new CollectedMetric('portico_cache_bytes', 'Bytes of the objects held by the cache (bodies and heads)', 'gauge', function* () {
      for (const c of caches()) yield { labels: { cache: c.name }, value: c.store.bytes };
    }),
    new CollectedMetric('portico_cache_entries', 'Objects held by the cache (each variant counts)', 'gauge', function* () {
      for (const c of caches()) yield { labels: { cache: c.name }, value: c.store.entries };
    }),
    new CollectedMetric(
      'portico_cache_shared_requests_total',
      'Lookups and writes of the shared tier (cluster.store) of caches with shared: true, by result: hit (found there after a memory miss), miss, write',
      'counter',
      function* () {
        for (const c of caches()) {
          const s = c.shared?.counters;
          if (s === undefined) continue;
          yield { labels: { cache: c.name, result: 'hit' }, value: s.hits };
          yield { labels: { cache: c.name, result: 'miss' }, value: s.misses };
          yield { labels: { cache: c.name, result: 'write' }, value: s.writes };
        }
      },
    ),
    new CollectedMetric(
      'portico_cache_shared_errors_total',
      'Operations on the shared tier (cluster.store) of caches with shared: true that failed or timed out; the request went on with the memory tier',
      'counter',
      function* () {
        for (const c of caches()) if (c.shared !== undefined) yield { labels: { cache: c.name }, value: c.shared.counters.errors };
      },
    ),
  ];
}

export interface MetricsDeps {
  readonly traffic: TrafficCounters;
  readonly stats: RequestStats;
  /** The live map of pools (a reload may change it). */
  readonly pools: ReadonlyMap<string, Pool>;
  readonly health?: HealthCheckCounters;
  /** Include the process and Node.js runtime metrics of prom-client (default true). */
  readonly processMetrics?: boolean;
}

/** The Prometheus view of Portico: SPEC §6 names, read from live counters at scrape time. */
/** prom-client default metrics whose names break the Prometheus naming rules (gauges named `_total`). */
const MISNAMED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export class Metrics {
  readonly registry = new Registry();

  constructor(deps: MetricsDeps) {
    const { traffic, stats, pools } = deps;
    const reg = (m: CollectedMetric): void => this.register(m);
    const servers = function* (): IterableIterator<{ pool: string; rt: ServerRuntime }> {
      for (const p of pools.values()) for (const rt of p) yield { pool: p.name, rt };
    };

    reg(
      new CollectedMetric('portico_requests_total', 'Requests finished, by listener, pool, server and status code', 'counter', function* () {
        for (const c of traffic.exchanges()) {
          for (let i = 0; i < c.codes.length; i++) {
            yield { labels: { listener: c.listener, pool: c.pool, server: c.server, code: String(c.codes[i]) }, value: c.codeCounts[i]! };
          }
        }
      }),
    );
    reg(
      new CollectedMetric(
        'portico_request_duration_seconds',
        'Time from the request head to the end of the response, by listener, pool and server',
        'histogram',
        function* () {
          const name = 'portico_request_duration_seconds';
          for (const c of traffic.exchanges()) {
            if (c.requests === 0) continue; // a tcp listener's label set: bytes only
            const base = { listener: c.listener, pool: c.pool, server: c.server };
            let cum = 0;
            for (let i = 0; i < PROM_BUCKETS_SEC.length; i++) {
              cum += c.buckets[i]!;
              yield { metricName: `${name}_bucket`, labels: { ...base, le: String(PROM_BUCKETS_SEC[i]) }, value: cum };
            }
            cum += c.buckets[PROM_BUCKETS_SEC.length]!;
            yield { metricName: `${name}_bucket`, labels: { ...base, le: '+Inf' }, value: cum };
            yield { metricName: `${name}_sum`, labels: base, value: c.sumSec };
            yield { metricName: `${name}_count`, labels: base, value: c.requests };
          }
        },
      ),
    );
    reg(
      new CollectedMetric('portico_bytes_total', 'Bytes received from (in) and sent to (out) clients (http requests and tcp connections), by listener, pool and server', 'counter', function* () {
        for (const c of traffic.exchanges()) {
          yield { labels: { listener: c.listener, pool: c.pool, server: c.server, direction: 'in' }, value: c.bytesIn };
          yield { labels: { listener: c.listener, pool: c.pool, server: c.server, direction: 'out' }, value: c.bytesOut };
        }
      }),
    );
    reg(
      new CollectedMetric('portico_server_up', '1 when the server is observed up (or starting), 0 when down', 'gauge', function* () {
        for (const { pool, rt } of servers()) yield { labels: { pool, server: rt.server.name }, value: rt.op === 'down' ? 0 : 1 };
      }, 'min'),
    );
    reg(
      new CollectedMetric('portico_server_state', 'The administrative state of the server: 1 for the state it is in (ready, drain or maint)', 'gauge', function* () {
        for (const { pool, rt } of servers()) {
          for (const state of ['ready', 'drain', 'maint'] as const) {
            yield { labels: { pool, server: rt.server.name, state }, value: rt.admin === state ? 1 : 0 };
          }
        }
      }, 'first'),
    );
    reg(
      new CollectedMetric('portico_server_active_connections', 'Requests in flight on the server', 'gauge', function* () {
        for (const { pool, rt } of servers()) yield { labels: { pool, server: rt.server.name }, value: rt.active };
      }),
    );
    reg(
      new CollectedMetric('portico_server_weight', 'Effective weight of the server (below the configured one during slow start)', 'gauge', function* () {
        for (const { pool, rt } of servers()) yield { labels: { pool, server: rt.server.name }, value: rt.weight };
      }, 'first'),
    );
    reg(
      new CollectedMetric(
        'portico_server_failures_total',
        'Requests on the server that ended in an upstream failure (connect error, reset, timeout, bad response)',
        'counter',
        function* () {
          for (const { pool, rt } of servers()) yield { labels: { pool, server: rt.server.name }, value: rt.failures };
        },
      ),
    );
    reg(healthChecksMetric(deps.health));
    reg(
      new CollectedMetric('portico_connections_total', 'Client connections accepted, by listener', 'counter', function* () {
        for (const [listener, n] of stats.connections) yield { labels: { listener }, value: n };
      }),
    );
    reg(
      new CollectedMetric('portico_rejected_total', 'Client connections and requests refused before reaching a pool, by listener and reason', 'counter', function* () {
        for (const [k, n] of stats.rejections) {
          const at = k.indexOf('\u0000');
          yield { labels: { listener: k.slice(0, at), reason: k.slice(at + 1) }, value: n };
        }
      }),
    );
    if (deps.processMetrics !== false) {
      collectDefaultMetrics({ register: this.registry });
      // prom-client exposes these three gauges with a `_total` suffix, which Prometheus reserves
      // for counters (promtool check metrics refuses them). Each is the sum of its labelled
      // sibling (nodejs_active_handles{type}, ...), so they are dropped.
      for (const name of MISNAMED_DEFAULT_METRICS) this.registry.removeSingleMetric(name);
    }
  }

  /** Add a metric (other parts of Portico: DNS queries, the access log ...). */
  register(metric: CollectedMetric | Metric): void {
    this.registry.registerMetric(metric as Metric);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
