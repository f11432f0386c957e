import type { IncomingMessage, ServerResponse } from 'node:http';
import { Registry } from 'prom-client';
import { JsonReply } from '../admin/admin-server.js';
import { AdminRouter, type AdminContext, type AdminHandler } from '../admin/router.js';
import { discoveryMetrics, type DiscoveryStatus } from '../discovery/status.js';
import type { EventHub } from '../observability/events.js';
import type { LiveStats, StatsFrame } from '../observability/live-stats.js';
import { HealthCheckCounters, healthChecksMetric } from '../observability/metrics.js';
import { healthEventData, type ProbeResult, type ProbeResultSource } from '../observability/observability.js';
import { MERGED_VIEWS, mergeFrames, mergeMetrics, type Coverage, type MergedFrame, type MetricsPart, type ProbeFacts, type WorkerFrame } from './stats-merge.js';
import { Channel, type IpcPort } from './ipc.js';
import { isObject } from '../core/guards.js';

/**
 * One view of the figures of `cluster.workers` processes. Each worker counts the requests it
 * serves; an admin API read or a `/metrics` scrape is answered by whichever worker got the
 * connection. That worker computes its own answer, asks the primary for the other workers', and
 * merges them (src/cluster/stats-merge.ts). The primary passes the question to every other live
 * worker and answers with what came back within the timeout (`cluster.statsTimeout`), with the
 * probes' status and its health-check counters (the probes run in the primary). A worker that
 * dies or does not answer in time is left out, and the answer says how many workers it covers.
 *
 * The live statistics (the dashboard's `stats` events) go the other way: each worker sends its
 * frame to the primary once an interval; the primary keeps the latest of every worker and answers
 * with them merged, which the worker publishes. Nothing here runs per request.
 */

/**
 * What a worker is asked for: its metrics, the body of one of the admin API reads, or to purge
 * its cache (`path`: the `DELETE /api/v1/caches/{cache}?...` path and query; each worker holds its own).
 */
export type StatsWant = { readonly kind: 'metrics' } | { readonly kind: 'view'; readonly path: string } | { readonly kind: 'purge'; readonly path: string };

/** One worker's part of an answer. */
export type StatsPart = { readonly ok: true; readonly pid: number; readonly value: unknown } | { readonly ok: false; readonly pid: number; readonly error: string };

/** What the primary answers a worker's question with. */
export interface StatsAnswer {
  /** The other workers' parts that came in time. */
  readonly parts: readonly StatsPart[];
  /** Workers running (the asking one included). */
  readonly running: number;
  /** The probes' status per pool (the primary runs them). */
  readonly probes: Readonly<Record<string, readonly ProbeFacts[]>>;
  /** The discovery status per pool (the primary runs discovery). */
  readonly discovery?: Readonly<Record<string, DiscoveryStatus>>;
  /** The primary's own metrics (health checks), for `metrics`. */
  readonly metrics?: MetricsPart;
}

/** What a worker asks the primary, and tells it. */
export type StatsUp = {
  calls: {
    /** The other workers' parts of `want`, collected within `timeoutMs`. */
    ask: { req: { want: StatsWant; timeoutMs: number }; res: StatsAnswer };
    /** This worker's frame merged with the others' latest (undefined: nothing to merge). */
    frame: { req: WorkerFrame; res: MergedFrame | undefined };
  };
  notes: {
    /** The worker takes part from now on (its statistics are wired). */
    hello: undefined;
  };
};

/** What the primary asks a worker, and tells it. */
export type StatsDown = {
  calls: {
    /** This worker's part of a collection. */
    collect: { req: StatsWant; res: StatsPart };
  };
  notes: {
    /** A probe result of the primary's health checks (the workers' `health` events). */
    health: Record<string, unknown>;
  };
};

/** The cache purge every worker takes part in (src/admin/cache-api.ts). */
const PURGE_PATTERN = '/api/v1/caches/{cache}';

/** The channel's name on a worker's IPC port. */
const STATS = 'stats';

function isWant(x: unknown): x is StatsWant {
  return isObject(x) && (x['kind'] === 'metrics' || ((x['kind'] === 'view' || x['kind'] === 'purge') && typeof x['path'] === 'string'));
}

/** A frame older than this many intervals is left out of the merge (its worker has stalled). */
const STALE_INTERVALS = 3;
/** Longest wait a worker may ask for. */
const MAX_TIMEOUT_MS = 10_000;

/**
 * The primary's side: the workers' IPC channels, the collections in progress, the latest frame
 * of each worker, and the counters of the health checks the primary runs.
 */
export class WorkersStatsHub {
  private readonly ports = new Map<number, { ch: Channel<StatsDown, StatsUp>; hello: boolean }>();
  private readonly frames = new Map<number, { frame: WorkerFrame; at: number }>();
  /** `portico_health_checks_total` of the probes run here. */
  readonly health = new HealthCheckCounters();
  private readonly registry = new Registry();
  private discovery: (() => Record<string, DiscoveryStatus>) | undefined;

  constructor(
    /** The probes' status per pool (the primary's health monitors). */
    private readonly probes: () => Record<string, readonly ProbeFacts[]>,
    private readonly now: () => number = Date.now,
  ) {
    this.registry.registerMetric(healthChecksMetric(this.health) as never);
  }

  /** The discovery run here: its status goes into the admin API answers, its `portico_discovery_*` into the metrics. */
  serveDiscovery(status: () => Record<string, DiscoveryStatus>): void {
    this.discovery = status;
    for (const m of discoveryMetrics(() => Object.entries(status()))) this.registry.registerMetric(m as never);
  }

  /** Workers that said they take part (their statistics are wired). */
  get running(): number {
    let n = 0;
    for (const w of this.ports.values()) if (w.hello) n++;
    return n;
  }

  /** Serve the worker `id` over `port`; the returned function is called when it exits. */
  add(id: number, port: IpcPort): () => void {
    const ch = new Channel<StatsDown, StatsUp>(port, STATS);
    const w = { ch, hello: false };
    this.ports.set(id, w);
    ch.on('hello', () => void (w.hello = true))
      .handle('ask', ({ want, timeoutMs }) => {
        if (!isWant(want)) throw new Error('not a statistics question');
        return this.collect(id, want, timeoutMs);
      })
      .handle('frame', (frame) => {
        if (!isObject(frame) || !isObject(frame.frame)) throw new Error('not a statistics frame');
        return this.mergeFrame(id, frame);
      });
    return () => this.remove(id);
  }

  /** Count a health monitor's results, and pass each on to every worker (their `health` events). */
  watch(source: ProbeResultSource): () => void {
    return source.onResult((ev: ProbeResult) => {
      const r = ev.result;
      this.health.add(ev.pool, ev.server, r.ok ? 'success' : r.reason);
      const data = healthEventData(ev);
      for (const w of this.ports.values()) if (w.hello) w.ch.notify('health', data);
    });
  }

  /** A worker is gone (exited, or its channel closed): collections stop waiting for it. */
  remove(id: number): void {
    const w = this.ports.get(id);
    if (w === undefined) return;
    w.ch.close('the worker is gone');
    this.ports.delete(id);
    this.frames.delete(id);
  }

  /**
   * Ask every other worker that takes part for its part of `want`; answer with the parts that
   * came within the timeout, the probes' status, and (for metrics) the primary's own metrics.
   */
  private async collect(asker: number, want: StatsWant, askedMs: number): Promise<StatsAnswer> {
    const timeoutMs = Math.min(Math.max(1, Number(askedMs) || 0), MAX_TIMEOUT_MS);
    const parts: StatsPart[] = [];
    const asks: Promise<void>[] = [];
    for (const [wid, w] of this.ports) {
      if (wid === asker || !w.hello) continue;
      // A worker that dies or does not answer in time is left out.
      asks.push(w.ch.call('collect', want, timeoutMs).then((part) => void parts.push(part), () => undefined));
    }
    await Promise.all(asks);
    let metrics: MetricsPart | undefined;
    try {
      if (want.kind === 'metrics') metrics = (await this.registry.getMetricsAsJSON()) as MetricsPart;
    } catch {
      // the workers' figures without the primary's rather than no answer
    }
    let probes: Record<string, readonly ProbeFacts[]> = {};
    try {
      probes = this.probes();
    } catch {
      // no probe details rather than no answer
    }
    let discovery: Record<string, DiscoveryStatus> | undefined;
    try {
      if (want.kind === 'view') discovery = this.discovery?.();
    } catch {
      // no discovery details rather than no answer
    }
    return {
      parts,
      running: this.running,
      probes,
      ...(discovery === undefined ? {} : { discovery }),
      ...(metrics === undefined ? {} : { metrics }),
    };
  }

  private mergeFrame(from: number, frame: WorkerFrame): MergedFrame | undefined {
    const now = this.now();
    this.frames.set(from, { frame, at: now });
    const staleMs = STALE_INTERVALS * Math.max(frame.frame.intervalMs, 100);
    const parts: WorkerFrame[] = [frame];
    for (const [wid, f] of this.frames) {
      if (wid === from) continue;
      if (now - f.at > staleMs) this.frames.delete(wid);
      else parts.push(f.frame);
    }
    return mergeFrames(parts, { reporting: parts.length, running: this.running });
  }
}

/** A worker's side of the IPC: asks the primary, answers its collections. */
export class WorkerStatsClient {
  private collector: ((want: StatsWant) => Promise<unknown>) | undefined;
  private healthFn: ((data: Record<string, unknown>) => void) | undefined;
  private readonly ch: Channel<StatsUp, StatsDown>;
  /** Workers running, as the primary last said (1 before it has). */
  running = 1;

  constructor(
    port: IpcPort,
    /** How long the primary waits for the other workers (ms); read at each question. */
    private readonly timeoutMs: () => number,
  ) {
    // A question in flight does not keep a worker's process alive.
    this.ch = new Channel<StatsUp, StatsDown>(port, STATS, false);
    this.ch
      .handle('collect', async (want) => {
        const collect = this.collector;
        if (collect === undefined) return { ok: false, pid: process.pid, error: 'not serving' };
        try {
          return { ok: true, pid: process.pid, value: await collect(want) };
        } catch (err) {
          return { ok: false, pid: process.pid, error: err instanceof Error ? err.message : String(err) };
        }
      })
      .on('health', (data) => this.healthFn?.(data));
  }

  /** Answer the primary's collections with `collect`, and take part from now on. */
  serve(collect: (want: StatsWant) => Promise<unknown>): void {
    this.collector = collect;
    this.ch.notify('hello', undefined);
  }

  /** Told of every probe result of the primary's health checks. */
  onHealth(fn: (data: Record<string, unknown>) => void): void {
    this.healthFn = fn;
  }

  /** The other workers' parts; undefined when the primary does not answer in time. */
  async ask(want: StatsWant): Promise<StatsAnswer | undefined> {
    const timeoutMs = this.timeoutMs();
    try {
      const a = await this.ch.call('ask', { want, timeoutMs }, timeoutMs + 1000);
      this.running = a.running;
      return a;
    } catch {
      return undefined; // the caller answers alone
    }
  }

  /** This worker's frame merged with the others' latest; undefined when the primary does not answer in time. */
  async mergeFrame(frame: WorkerFrame): Promise<MergedFrame | undefined> {
    try {
      const f = await this.ch.call('frame', frame, this.timeoutMs() + 1000);
      if (f !== undefined) this.running = f.workers.running;
      return f;
    } catch {
      return undefined;
    }
  }

  close(): void {
    this.ch.close();
  }
}

/** What a worker's Portico shows to the merged reads (src/app's Portico fits). */
export interface StatsPortico {
  readonly admin?: { readonly router: AdminRouter } | undefined;
  readonly observability: {
    readonly metrics: { readonly registry: Registry; readonly contentType: string };
    readonly live: LiveStats;
    readonly hub: EventHub;
  };
}

/**
 * In a worker: answer `/metrics`, the admin API reads of MERGED_VIEWS and the `stats` events for
 * every worker, through `client`. The routes' own handlers stay, and give this worker's part.
 */
export function attachWorkerStats(portico: StatsPortico, client: WorkerStatsClient): void {
  const obs = portico.observability;
  const locals = new AdminRouter();
  let lastMerged: MergedFrame | undefined;

  const coverage = (answer: StatsAnswer | undefined, parts: number): Coverage => ({
    reporting: parts,
    running: answer === undefined ? Math.max(client.running, parts) : answer.running,
  });

  const router = portico.admin?.router;
  if (router !== undefined) {
    router.wrap('GET', '/metrics', (handler) => async (req: IncomingMessage, res: ServerResponse, ctx: AdminContext) => {
      if (ctx.url.searchParams.get('scope') === 'worker') {
        res.setHeader('x-portico-worker', String(process.pid));
        return handler(req, res, ctx);
      }
      const own = (await obs.metrics.registry.getMetricsAsJSON()) as MetricsPart;
      const answer = await client.ask({ kind: 'metrics' });
      const parts: MetricsPart[] = [own];
      for (const p of answer?.parts ?? []) if (p.ok && Array.isArray(p.value)) parts.push(p.value as MetricsPart);
      const cov = coverage(answer, parts.length);
      if (answer?.metrics !== undefined) parts.push(answer.metrics);
      const text = await mergeMetrics(parts, cov).metrics();
      res.writeHead(200, {
        'content-type': obs.metrics.contentType,
        'cache-control': 'no-store',
        'content-length': Buffer.byteLength(text),
        'x-portico-workers': `${cov.reporting}/${cov.running}`,
      });
      res.end(req.method === 'HEAD' ? undefined : text);
      return undefined;
    });
    for (const [pattern, merge] of Object.entries(MERGED_VIEWS)) {
      const own = router.wrap('GET', pattern, (handler) => async (req, res, ctx) => {
        const mine = await handler(req, res, ctx);
        if (!isObject(mine) || mine instanceof JsonReply) return mine;
        // `?scope=worker`: what this worker alone counted.
        if (ctx.url.searchParams.get('scope') === 'worker') return { ...mine, worker: { pid: process.pid } };
        const answer = await client.ask({ kind: 'view', path: ctx.url.pathname });
        const views: Record<string, unknown>[] = [mine];
        const pids = [process.pid];
        for (const p of answer?.parts ?? []) {
          if (!p.ok || !isObject(p.value)) continue;
          views.push(p.value);
          pids.push(p.pid);
        }
        const ctxv = { coverage: coverage(answer, views.length), pids, frame: lastMerged, probes: answer?.probes, discovery: answer?.discovery };
        return (merge as (v: typeof views, c: typeof ctxv, p: Readonly<Record<string, string>>) => unknown)(views, ctxv, ctx.params);
      });
      if (own !== undefined) locals.route('GET', pattern, own);
    }
    // A cache purge: this worker's own (which refuses bad input before anything is asked of the
    // others), then every other worker's; the answer sums what they purged.
    const purge = router.wrap('DELETE', PURGE_PATTERN, (handler) => async (req, res, ctx) => {
      const mine = await handler(req, res, ctx);
      if (!isObject(mine) || mine instanceof JsonReply || typeof mine['purged'] !== 'number') return mine;
      const answer = await client.ask({ kind: 'purge', path: ctx.url.pathname + ctx.url.search });
      let purged = mine['purged'];
      let parts = 1;
      for (const p of answer?.parts ?? []) {
        if (!p.ok || !isObject(p.value) || typeof p.value['purged'] !== 'number') continue;
        purged += p.value['purged'];
        parts++;
      }
      // The shared tier (Redis) was purged by this worker; the others found it purged already.
      const shared = typeof mine['shared'] === 'number' ? { shared: mine['shared'] } : typeof mine['sharedError'] === 'string' ? { sharedError: mine['sharedError'] } : {};
      return { purged, ...shared, workers: coverage(answer, parts) };
    });
    if (purge !== undefined) locals.route('DELETE', PURGE_PATTERN, purge);
  }

  /** This worker's part of a collection. */
  const collect = async (want: StatsWant): Promise<unknown> => {
    if (want.kind === 'metrics') return obs.metrics.registry.getMetricsAsJSON();
    const path = new URL(want.path, 'http://admin.invalid');
    const m = locals.match(want.kind === 'purge' ? 'DELETE' : 'GET', path.pathname);
    if (m.kind !== 'found') throw new Error(`no merged view ${want.path}`);
    const ac = new AbortController();
    const ctx: AdminContext = {
      url: path,
      params: m.params,
      signal: ac.signal,
      body: () => Promise.resolve(undefined),
    };
    // The read handlers of MERGED_VIEWS and the purge return their answer and do not touch the request or response.
    const out = await (m.handler as AdminHandler)(undefined as never, undefined as never, ctx);
    if (out instanceof JsonReply) {
      if (out.status !== 200) throw new Error(`status ${out.status}`);
      return out.body;
    }
    return out;
  };
  client.serve(collect);

  obs.live.publishFrame = (frame: StatsFrame) => {
    const own: WorkerFrame = { frame, intervals: obs.live.lastIntervals() };
    void client.mergeFrame(own).then((merged) => {
      const f: MergedFrame = merged ?? { ...frame, workers: { reporting: 1, running: client.running } };
      lastMerged = f;
      obs.hub.publish('stats', f);
    });
  };
  client.onHealth((data) => void obs.hub.publish('health', data));
}
