import type { AccessLogConfig } from '../config/types.js';
import type { Pool } from '../pool/pool.js';
import { AccessLog, fileSink, stdoutSink, type AccessLogSink } from './access-log.js';
import { EventHub } from './events.js';
import { LiveStats, type InflightRequest, type ListenerInfo } from './live-stats.js';
import { silentLogger, type Logger } from './logger.js';
import { CollectedMetric, HealthCheckCounters, Metrics } from './metrics.js';
import type { RequestStats } from './request-stats.js';
import { TrafficCounters } from './traffic.js';

export interface ObservabilityOptions {
  readonly stats: RequestStats;
  /** The live map of pools (a reload may change it). */
  readonly pools: ReadonlyMap<string, Pool>;
  readonly listeners: () => Iterable<ListenerInfo>;
  /** Requests in progress on every listener (for Little's N). */
  readonly inflight: () => Iterable<InflightRequest>;
  /** `log.access` of the configuration. */
  readonly accessLog: AccessLogConfig | false;
  readonly logger?: Logger;
  /** Replaces the sink that `accessLog.path` names (tests). */
  readonly accessLogSink?: AccessLogSink;
  /** Length of a statistics interval (default 1000 ms). */
  readonly intervalMs?: number;
  /** Include prom-client's process and runtime metrics (default true). */
  readonly processMetrics?: boolean;
  /** The health monitors in force (a reload may replace them); each is watched once. */
  readonly probes?: () => Iterable<ProbeResultSource>;
}

/** A health probe's outcome as a monitor reports it (src/health's ProbeResultEvent fits). */
export interface ProbeResult {
  readonly pool: string;
  readonly server: string;
  readonly result: { readonly ok: true; readonly latencyMs: number } | { readonly ok: false; readonly reason: string; readonly detail?: string | undefined };
  readonly health: { readonly state: string; readonly streak: number };
}

/** Something that reports probe results (a HealthMonitor). */
export interface ProbeResultSource {
  onResult(fn: (ev: ProbeResult) => void): () => void;
}

/**
 * Metrics, live statistics, the event stream and the access log, built from the request
 * statistics and the pools. `services` are started and stopped with the app; the admin
 * server mounts `/metrics`, `/api/v1/events` and the dashboard over these.
 */
export class Observability {
  readonly traffic = new TrafficCounters();
  readonly hub = new EventHub({ keep: { stats: 120 } });
  readonly health = new HealthCheckCounters();
  readonly live: LiveStats;
  readonly metrics: Metrics;
  readonly accessLog: AccessLog | undefined;
  /** Started before the listeners, stopped after them. */
  readonly services: readonly { readonly name: string; start(): Promise<void>; stop(graceMs: number): Promise<void> }[];

  constructor(o: ObservabilityOptions) {
    const log = o.logger ?? silentLogger;
    o.stats.onRequest(this.traffic.record);
    o.stats.onConnectionDone(this.traffic.recordConnection);
    this.live = new LiveStats({
      traffic: this.traffic,
      stats: o.stats,
      pools: o.pools,
      listeners: o.listeners,
      inflight: o.inflight,
      hub: this.hub,
      intervalMs: o.intervalMs,
    });
    this.metrics = new Metrics({ traffic: this.traffic, stats: o.stats, pools: o.pools, health: this.health, processMetrics: o.processMetrics });
    this.hub.subscribe((ev) => {
      if (ev.type !== 'server') return;
      const d = ev.data as { kind: string; pool: string; server: string };
      if (d.kind === 'removed') this.health.forget(d.pool, d.server);
    });
    const services: { readonly name: string; start(): Promise<void>; stop(graceMs: number): Promise<void> }[] = [this.live];
    if (o.accessLog !== false) {
      const cfg = o.accessLog;
      const sink = o.accessLogSink ?? (cfg.path === 'stdout' ? stdoutSink() : fileSink(cfg.path));
      const al = new AccessLog({ format: cfg.format, sink, logger: log });
      this.accessLog = al;
      o.stats.onRequest(al.record);
      services.push(al);
      this.metrics.register(
        new CollectedMetric('portico_access_log_lines_total', 'Access-log lines written, and dropped because the sink was behind or failed', 'counter', function* () {
          yield { labels: { outcome: 'written' }, value: al.written };
          yield { labels: { outcome: 'dropped' }, value: al.dropped };
        }),
      );
    }
    this.services = services;
    const probes = o.probes;
    if (probes !== undefined) {
      // Monitors that exist now, then any a reload adds (checked once a second).
      const sync = (): void => {
        for (const m of probes()) {
          if (this.watched.has(m)) continue;
          this.watched.add(m);
          this.watchHealth(m);
        }
      };
      sync();
      this.hub.subscribe((ev) => {
        if (ev.type === 'stats') sync();
      });
    }
  }

  private readonly watched = new WeakSet<ProbeResultSource>();

  /**
   * Count a health monitor's probe results (`portico_health_checks_total`) and publish each
   * as a `health` event. Returns the function that stops listening.
   */
  watchHealth(source: ProbeResultSource): () => void {
    return source.onResult((ev) => {
      const r = ev.result;
      this.health.add(ev.pool, ev.server, r.ok ? 'success' : r.reason);
      this.hub.publish('health', healthEventData(ev));
    });
  }
}

/** What a `health` event carries for one probe result. */
export function healthEventData(ev: ProbeResult): Record<string, unknown> {
  const r = ev.result;
  return {
    pool: ev.pool,
    server: ev.server,
    ok: r.ok,
    ...(r.ok ? { latencyMs: Math.round(r.latencyMs * 1000) / 1000 } : { reason: r.reason, ...(r.detail ? { detail: r.detail } : {}) }),
    state: ev.health.state,
    streak: ev.health.streak,
  };
}
