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
import type { IpcPort } from './workers-store.js';
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

/** What a worker is asked for: its metrics, or the body of one of the admin API reads. */
export type StatsWant = { readonly kind: 'metrics' } | { readonly kind: 'view'; readonly path: string };

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

interface AskMsg {
  readonly t: 'stats-ask';
  readonly id: number;
  readonly want: StatsWant;
  readonly timeoutMs: number;
}
interface CollectMsg {
  readonly t: 'stats-collect';
  readonly id: number;
  readonly want: StatsWant;
}
interface PartMsg {
  readonly t: 'stats-part';
  readonly id: number;
  readonly part: StatsPart;
}
interface AnswerMsg extends StatsAnswer {
  readonly t: 'stats-answer';
  readonly id: number;
}
interface FrameMsg {
  readonly t: 'stats-frame';
  readonly id: number;
  readonly frame: WorkerFrame;
}
interface MergedMsg {
  readonly t: 'stats-merged';
  readonly id: number;
  readonly frame: MergedFrame;
}
interface HealthMsg {
  readonly t: 'stats-health';
  readonly data: Record<string, unknown>;
}


function isWant(x: unknown): x is StatsWant {
  return isObject(x) && (x['kind'] === 'metrics' || (x['kind'] === 'view' && typeof x['path'] === 'string'));
}

function trySend(port: IpcPort, m: unknown): boolean {
  try {
    port.send(m);
    return true;
  } catch {
    return false; // the worker is gone; its exit removes it
  }
}

/** A frame older than this many intervals is left out of the merge (its worker has stalled). */
const STALE_INTERVALS = 3;
/** Longest wait a worker may ask for. */
const MAX_TIMEOUT_MS = 10_000;

interface Collection {
  readonly id: number;
  readonly asker: number;
  readonly askId: number;
  readonly want: StatsWant;
  readonly pending: Set<number>;
  readonly parts: StatsPart[];
  readonly timer: NodeJS.Timeout;
}

/**
 * The primary's side: the workers' IPC channels, the collections in progress, the latest frame
 * of each worker, and the counters of the health checks the primary runs.
 */
export class WorkersStatsHub {
  private readonly ports = new Map<number, { port: IpcPort; off: () => void; hello: boolean }>();
  private readonly frames = new Map<number, { frame: WorkerFrame; at: number }>();
  private readonly collections = new Map<number, Collection>();
  private nextId = 1;
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
    const off = port.onMessage((m) => this.receive(id, m));
    this.ports.set(id, { port, off, hello: false });
    return () => this.remove(id);
  }

  /** Count a health monitor's results, and pass each on to every worker (their `health` events). */
  watch(source: ProbeResultSource): () => void {
    return source.onResult((ev: ProbeResult) => {
      const r = ev.result;
      this.health.add(ev.pool, ev.server, r.ok ? 'success' : r.reason);
      const msg: HealthMsg = { t: 'stats-health', data: healthEventData(ev) };
      for (const w of this.ports.values()) if (w.hello) trySend(w.port, msg);
    });
  }

  /** A worker is gone (exited, or its channel closed): collections stop waiting for it. */
  remove(id: number): void {
    const w = this.ports.get(id);
    if (w === undefined) return;
    w.off();
    this.ports.delete(id);
    this.frames.delete(id);
    for (const c of [...this.collections.values()]) {
      if (c.asker === id) {
        clearTimeout(c.timer);
        this.collections.delete(c.id);
      } else if (c.pending.delete(id) && c.pending.size === 0) void this.finish(c);
    }
  }

  private receive(from: number, m: unknown): void {
    if (!isObject(m) || typeof m['t'] !== 'string' || !m['t'].startsWith('stats-')) return;
    const w = this.ports.get(from);
    if (w === undefined) return;
    try {
      this.handle(from, w, m);
    } catch {
      // a malformed message is dropped; the primary goes on
    }
  }

  private handle(from: number, w: { hello: boolean }, m: Record<string, unknown>): void {
    switch (m['t']) {
      case 'stats-hello':
        w.hello = true;
        return;
      case 'stats-ask':
        if (isWant(m['want'])) this.collect(from, m as unknown as AskMsg);
        return;
      case 'stats-part': {
        const p = m as unknown as PartMsg;
        const c = this.collections.get(p.id);
        if (c === undefined || !c.pending.delete(from)) return;
        c.parts.push(p.part);
        if (c.pending.size === 0) void this.finish(c);
        return;
      }
      case 'stats-frame':
        if (isObject(m['frame']) && isObject(m['frame']['frame'])) this.mergeFrame(from, m as unknown as FrameMsg);
        return;
    }
  }

  private collect(asker: number, ask: AskMsg): void {
    const id = this.nextId++;
    const timeoutMs = Math.min(Math.max(1, Number(ask.timeoutMs) || 0), MAX_TIMEOUT_MS);
    const c: Collection = {
      id,
      asker,
      askId: ask.id,
      want: ask.want,
      pending: new Set(),
      parts: [],
      timer: setTimeout(() => void this.finish(c), timeoutMs),
    };
    this.collections.set(id, c);
    const msg: CollectMsg = { t: 'stats-collect', id, want: ask.want };
    for (const [wid, w] of this.ports) {
      if (wid === asker || !w.hello) continue;
      if (trySend(w.port, msg)) c.pending.add(wid);
    }
    if (c.pending.size === 0) void this.finish(c);
  }

  private async finish(c: Collection): Promise<void> {
    if (this.collections.get(c.id) !== c) return; // finished already
    this.collections.delete(c.id);
    clearTimeout(c.timer);
    let metrics: MetricsPart | undefined;
    try {
      if (c.want.kind === 'metrics') metrics = (await this.registry.getMetricsAsJSON()) as MetricsPart;
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
      if (c.want.kind === 'view') discovery = this.discovery?.();
    } catch {
      // no discovery details rather than no answer
    }
    const w = this.ports.get(c.asker);
    if (w === undefined) return; // the asker died meanwhile
    const answer: AnswerMsg = {
      t: 'stats-answer',
      id: c.askId,
      parts: c.parts,
      running: this.running,
      probes,
      ...(discovery === undefined ? {} : { discovery }),
      ...(metrics === undefined ? {} : { metrics }),
    };
    trySend(w.port, answer);
  }

  private mergeFrame(from: number, m: FrameMsg): void {
    const now = this.now();
    this.frames.set(from, { frame: m.frame, at: now });
    const staleMs = STALE_INTERVALS * Math.max(m.frame.frame.intervalMs, 100);
    const parts: WorkerFrame[] = [m.frame];
    for (const [wid, f] of this.frames) {
      if (wid === from) continue;
      if (now - f.at > staleMs) this.frames.delete(wid);
      else parts.push(f.frame);
    }
    const merged = mergeFrames(parts, { reporting: parts.length, running: this.running });
    const w = this.ports.get(from);
    if (merged !== undefined && w !== undefined) trySend(w.port, { t: 'stats-merged', id: m.id, frame: merged } satisfies MergedMsg);
  }
}

/** A worker's side of the IPC: asks the primary, answers its collections. */
export class WorkerStatsClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; timer: NodeJS.Timeout }>();
  private collector: ((want: StatsWant) => Promise<unknown>) | undefined;
  private healthFn: ((data: Record<string, unknown>) => void) | undefined;
  private readonly off: () => void;
  /** Workers running, as the primary last said (1 before it has). */
  running = 1;

  constructor(
    private readonly port: IpcPort,
    /** How long the primary waits for the other workers (ms); read at each question. */
    private readonly timeoutMs: () => number,
  ) {
    this.off = port.onMessage((m) => this.receive(m));
  }

  /** Answer the primary's collections with `collect`, and take part from now on. */
  serve(collect: (want: StatsWant) => Promise<unknown>): void {
    this.collector = collect;
    trySend(this.port, { t: 'stats-hello' });
  }

  /** Told of every probe result of the primary's health checks. */
  onHealth(fn: (data: Record<string, unknown>) => void): void {
    this.healthFn = fn;
  }

  /** The other workers' parts; undefined when the primary does not answer in time. */
  ask(want: StatsWant): Promise<StatsAnswer | undefined> {
    const timeoutMs = this.timeoutMs();
    return this.call({ t: 'stats-ask', want, timeoutMs }, timeoutMs + 1000) as Promise<StatsAnswer | undefined>;
  }

  /** This worker's frame merged with the others' latest; undefined when the primary does not answer in time. */
  mergeFrame(frame: WorkerFrame): Promise<MergedFrame | undefined> {
    return this.call({ t: 'stats-frame', frame }, this.timeoutMs() + 1000) as Promise<MergedFrame | undefined>;
  }

  close(): void {
    this.off();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.resolve(undefined);
    }
    this.pending.clear();
  }

  private call(msg: Record<string, unknown>, waitMs: number): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, waitMs);
      timer.unref();
      this.pending.set(id, { resolve, timer });
      if (!trySend(this.port, { ...msg, id })) {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(undefined);
      }
    });
  }

  private receive(m: unknown): void {
    if (!isObject(m)) return;
    switch (m['t']) {
      case 'stats-collect': {
        const c = m as unknown as CollectMsg;
        const collect = this.collector;
        const reply = (part: StatsPart): void => void trySend(this.port, { t: 'stats-part', id: c.id, part } satisfies PartMsg);
        if (collect === undefined) return reply({ ok: false, pid: process.pid, error: 'not serving' });
        collect(c.want).then(
          (value) => reply({ ok: true, pid: process.pid, value }),
          (err: unknown) => reply({ ok: false, pid: process.pid, error: String((err as Error)?.message ?? err) }),
        );
        return;
      }
      case 'stats-answer': {
        const a = m as unknown as AnswerMsg;
        if (typeof a.running === 'number') this.running = a.running;
        this.settle(a.id, a);
        return;
      }
      case 'stats-merged': {
        const f = m as unknown as MergedMsg;
        if (!isObject(f.frame) || !isObject(f.frame.workers)) return;
        this.running = f.frame.workers.running;
        this.settle(f.id, f.frame);
        return;
      }
      case 'stats-health':
        this.healthFn?.((m as unknown as HealthMsg).data);
        return;
    }
  }

  private settle(id: number, value: unknown): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(value);
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
  }

  /** This worker's part of a collection. */
  const collect = async (want: StatsWant): Promise<unknown> => {
    if (want.kind === 'metrics') return obs.metrics.registry.getMetricsAsJSON();
    const m = locals.match('GET', want.path);
    if (m.kind !== 'found') throw new Error(`no merged view ${want.path}`);
    const ac = new AbortController();
    const ctx: AdminContext = {
      url: new URL(want.path, 'http://admin.invalid'),
      params: m.params,
      signal: ac.signal,
      body: () => Promise.resolve(undefined),
    };
    // The read handlers of MERGED_VIEWS return their answer and do not touch the request or response.
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
