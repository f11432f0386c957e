import type { AccessLogConfig } from '../config/types.js';
import type { Pool } from '../pool/pool.js';
import { AccessLog, fileSink, stdoutSink, type AccessLogSink } from './access-log.js';
import { EventHub } from './events.js';
import { LiveStats, type InflightRequest, type ListenerInfo } from './live-stats.js';
import { silentLogger, type Logger } from './logger.js';
import { CollectedMetric, HealthCheckCounters, Metrics, type CacheFigures } from './metrics.js';
import type { RequestStats } from './request-stats.js';
import { TrafficCounters } from './traffic.js';

export interface ObservabilityOptions {
  readonly stats: RequestStats;
  /** The live map of pools (a reload may change it). */
  readonly pools: ReadonlyMap<string, Pool>;
  /** The configured caches, for the live statistics (the metrics are registered by the app). */
  readonly caches?: (() => Iterable<CacheFigures>) | undefined;
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
  /** The access log in force (`log.access`), replaced by setAccessLog. */
  get accessLog(): AccessLog | undefined {
    return this.access;
  }
  private access: AccessLog | undefined;
  private accessConfig: AccessLogConfig | false;
  /** Lines written and dropped by access logs that were replaced. */
  private accessRetired = { written: 0, dropped: 0 };
  private accessMetric = false;
  private readonly stats: RequestStats;
  private readonly accessLogSink: AccessLogSink | undefined;
  private readonly log: Logger;
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
      caches: o.caches,
    });
    this.metrics = new Metrics({ traffic: this.traffic, stats: o.stats, pools: o.pools, health: this.health, processMetrics: o.processMetrics });
    this.hub.subscribe((ev) => {
      if (ev.type !== 'server') return;
      const d = ev.data as { kind: string; pool: string; server: string };
      if (d.kind === 'removed') this.health.forget(d.pool, d.server);
    });
    this.stats = o.stats;
    this.accessLogSink = o.accessLogSink;
    this.log = log;
    this.accessConfig = o.accessLog;
    const services: { readonly name: string; start(): Promise<void>; stop(graceMs: number): Promise<void> }[] = [this.live];
    if (o.accessLog !== false) this.access = this.newAccessLog(o.accessLog);
    // The access log in force, whichever it is by then.
    services.push({
      name: 'access-log',
      start: async () => this.access?.start(),
      stop: async (graceMs) => this.access?.stop(graceMs),
    });
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

  private newAccessLog(cfg: AccessLogConfig): AccessLog {
    const sink = this.accessLogSink ?? (cfg.path === 'stdout' ? stdoutSink() : fileSink(cfg.path));
    const al = new AccessLog({ format: cfg.format, sink, logger: this.log });
    this.stats.onRequest(al.record);
    if (!this.accessMetric) {
      this.accessMetric = true;
      const self = this;
      this.metrics.register(
        new CollectedMetric('portico_access_log_lines_total', 'Access-log lines written, and dropped because the sink was behind or failed', 'counter', function* () {
          yield { labels: { outcome: 'written' }, value: self.accessRetired.written + (self.access?.written ?? 0) };
          yield { labels: { outcome: 'dropped' }, value: self.accessRetired.dropped + (self.access?.dropped ?? 0) };
        }),
      );
    }
    return al;
  }

  /**
   * Apply `log.access` of a reload: on, off, another file or format. A file is opened again even
   * when its settings did not change, so that a reload (SIGHUP) after log rotation writes to the
   * new file. The new log is open before the old one stops taking lines; the old one writes what
   * it holds, then closes. A file that cannot be opened leaves the log as it was and throws.
   */
  async setAccessLog(cfg: AccessLogConfig | false): Promise<void> {
    const was = this.access;
    const same = JSON.stringify(cfg) === JSON.stringify(this.accessConfig);
    if (same && (cfg === false || (cfg.path === 'stdout' && this.accessLogSink === undefined))) return;
    let next: AccessLog | undefined;
    if (cfg !== false) {
      next = this.newAccessLog(cfg);
      try {
        await next.start();
      } catch (err) {
        this.stats.offRequest(next.record);
        throw err;
      }
    }
    this.access = next;
    this.accessConfig = cfg;
    if (was !== undefined) {
      this.stats.offRequest(was.record);
      await was.stop();
      this.accessRetired = { written: this.accessRetired.written + was.written, dropped: this.accessRetired.dropped + was.dropped };
    }
  }

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
