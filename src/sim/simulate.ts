import type { PickContext, ReleaseOutcome } from '../balancer/balancer.js';
import type { Clock } from '../core/clock.js';
import { SeededRng } from '../core/rng.js';
import { serverId, type Server, type ServerId } from '../core/server.js';
import { Pool } from '../pool/pool.js';
import type { AlgorithmSpec } from './algorithms.js';
import { createCache, type FileCache } from './cache.js';
import { EventQueue } from './event-queue.js';
import { diskMs, transmitMs, type ModelParams } from './model.js';
import { maxOverMean, mean, percentileSorted } from './stats.js';
import type { Trace } from './trace.js';

export interface SimConfig {
  readonly nodes: number;
  readonly algorithm: AlgorithmSpec;
  readonly model: ModelParams;
  /**
   * Front-end admission limit: at most this many requests in flight over all nodes; the rest wait
   * at the front end in arrival order. 0 means no limit (open arrivals only).
   */
  readonly admit: number;
  /**
   * Poisson arrivals at this rate (requests/s). Undefined: saturation, the trace is fed as fast as
   * admission allows (the LARD paper's throughput measurement).
   */
  readonly rateRps?: number | undefined;
  /** Cost multiplier of a node (0-based index); nodes not listed cost 1×. */
  readonly slow?: ReadonlyMap<number, number> | undefined;
  /** Fraction of the requests, the first ones, that warm the caches and are not measured. */
  readonly warmup: number;
  /** Seeds the balancer's Rng and the arrival process. */
  readonly seed: number;
}

export interface NodeStats {
  /** Measured requests the node served. */
  readonly requests: number;
  /** Cache hit ratio of those requests (NaN when none sent a body). */
  readonly hitRatio: number;
  /** Time-averaged requests in flight on the node (the balancers' "load") over the window. */
  readonly meanActive: number;
  /** Fraction of the window the CPU / the disk was busy. */
  readonly cpuUtil: number;
  readonly diskUtil: number;
  /** Mean time of its measured requests from admission to the last byte: what the balancer sees of the node. */
  readonly residenceMs: number;
  /** Mean time its measured requests were served (CPU and disk, queueing left out): the true service time. */
  readonly serviceMs: number;
}

export interface SimResult {
  readonly algorithm: string;
  readonly nodes: number;
  readonly admit: number;
  /** Requests measured (after the warm-up). */
  readonly measured: number;
  /** Length of the measurement window, ms of simulated time. */
  readonly windowMs: number;
  /** Simulated time of the whole run, ms. */
  readonly simulatedMs: number;
  readonly throughputRps: number;
  readonly hitRatio: number;
  /** max / mean over nodes of the time-averaged in-flight count (1 = perfectly even). */
  readonly loadMaxAvg: number;
  /** max / mean over nodes of requests served. */
  readonly shareMaxAvg: number;
  /** Time spent waiting (front-end queue, CPU and disk queues), not being served. */
  readonly queueMeanMs: number;
  readonly queueP50Ms: number;
  readonly queueP99Ms: number;
  /** Arrival (or admission, under saturation) to the last byte sent. */
  readonly latencyMeanMs: number;
  readonly latencyP50Ms: number;
  readonly latencyP90Ms: number;
  readonly latencyP99Ms: number;
  readonly latencyP999Ms: number;
  readonly cpuUtil: number;
  readonly diskUtil: number;
  readonly perNode: readonly NodeStats[];
}

// event kinds
const ARRIVE = 0;
const CONNECTED = 1;
const READ = 2;
const DONE = 3;

class SimClock implements Clock {
  t = 0;
  now(): number {
    return this.t;
  }
}

/** The servers of a simulated pool: `node1` … `nodeN`. */
export function simServers(n: number): Server[] {
  return Array.from({ length: n }, (_, i) =>
    Object.freeze({
      id: serverId('sim', `node${i + 1}`),
      name: `node${i + 1}`,
      host: '127.0.0.1',
      port: 10_000 + i,
      weight: 1,
      backup: false,
      maxConnections: 0,
      meta: Object.freeze({}),
    }),
  );
}

/**
 * Run `trace` through `cfg.nodes` simulated back-ends balanced by the real balancer code, driven
 * through a real `Pool` (pick, acquire, release with the response time and bytes) on a simulated
 * clock. Each node has a FIFO CPU, a FIFO disk and a file cache (see ModelParams). Deterministic for
 * a given trace, configuration and seed.
 *
 * Measurement window: from the arrival (saturation: admission) of the first measured request to the
 * last arrival (saturation: last admission), so a saturated run is measured while the front end
 * still has work to hand out. Throughput counts every completion in the window.
 */
export function simulate(trace: Trace, cfg: SimConfig): SimResult {
  const R = trace.files.length;
  const n = cfg.nodes;
  if (R === 0) throw new Error('the trace has no requests');
  if (!(Number.isInteger(n) && n >= 1 && n <= 65_535)) throw new Error(`nodes must be an integer from 1 to 65535 (got ${n})`);
  const saturated = cfg.rateRps === undefined;
  if (saturated && !(cfg.admit >= 1)) throw new Error('a saturated run needs an admission limit (give --rate for open arrivals)');
  if (!saturated && !(cfg.rateRps! > 0)) throw new Error('rate must be positive');
  if (!(cfg.warmup >= 0 && cfg.warmup < 1)) throw new Error('warmup must be in [0, 1)');

  const m = cfg.model;
  const clock = new SimClock();
  const servers = simServers(n);
  const pool = new Pool(
    { name: 'sim', factory: cfg.algorithm.factory, balancerOptions: cfg.algorithm.options, rng: new SeededRng(cfg.seed), clock },
    servers.map((server) => ({ server })),
  );
  const runtimes = servers.map((s) => pool.runtime(s.id)!);
  const indexOf = new Map<ServerId, number>(servers.map((s, i) => [s.id, i]));
  const caches: FileCache[] = servers.map(() => createCache(m.cachePolicy, m.cacheBytes, trace.paths.length));
  const factor = new Float64Array(n).fill(1);
  for (const [k, f] of cfg.slow ?? []) {
    if (!(k >= 0 && k < n)) continue;
    factor[k] = f;
  }
  const arrivalRng = new SeededRng((cfg.seed ^ 0x5eed5eed) >>> 0);

  const files = trace.files;
  const bytes = trace.bytes;
  const paths = trace.paths;
  const fileSizes = trace.fileSizes;
  const node = new Uint16Array(R);
  const arrival = new Float64Array(R);
  const admittedAt = new Float64Array(R);
  const wait = new Float64Array(R);
  const latency = new Float64Array(R);
  const cpuFree = new Float64Array(n);
  const diskFree = new Float64Array(n);

  // measurement
  const first = Math.min(R - 1, Math.floor(R * cfg.warmup));
  let windowOpen = false;
  let windowClosed = false;
  let tStart = 0;
  let tLast = 0;
  let completionsInWindow = 0;
  const area = new Float64Array(n); // ∫ active dt over the window
  const lastT = new Float64Array(n);
  const cpuBusy = new Float64Array(n);
  const diskBusy = new Float64Array(n);
  const served = new Float64Array(n);
  const lookups = new Float64Array(n);
  const hits = new Float64Array(n);
  const residence = new Float64Array(n);
  const service = new Float64Array(n);

  const touch = (k: number, now: number): void => {
    if (windowOpen && !windowClosed) area[k] = area[k]! + runtimes[k]!.active * (now - lastT[k]!);
    lastT[k] = now;
  };
  const openWindow = (now: number): void => {
    windowOpen = true;
    tStart = now;
    for (let k = 0; k < n; k++) lastT[k] = now;
  };
  const closeWindow = (now: number): void => {
    for (let k = 0; k < n; k++) touch(k, now);
    windowClosed = true;
    tLast = now;
  };

  const q = new EventQueue(Math.max(64, Math.min(R, cfg.admit > 0 ? cfg.admit * 2 : 4096)));
  const ctx: { path: string; hashKey: string } = { path: '', hashKey: '' };
  const pickCtx: PickContext = ctx;
  const outcome: { latencyMs: number; bytes: number; ok: boolean } = { latencyMs: 0, bytes: 0, ok: true };
  const releaseOutcome: ReleaseOutcome = outcome;

  const cpu = (k: number, now: number, ms: number, r: number, kind: number): void => {
    const free = cpuFree[k]!;
    const start = free > now ? free : now;
    const done = start + ms * factor[k]!;
    cpuFree[k] = done;
    wait[r] = wait[r]! + (start - now);
    if (windowOpen && !windowClosed) cpuBusy[k] = cpuBusy[k]! + (done - start);
    q.push(done, kind, r);
  };

  const admitRequest = (r: number, now: number): void => {
    const path = paths[files[r]!]!;
    ctx.path = path;
    ctx.hashKey = path;
    const s = pool.pick(pickCtx);
    if (s === undefined) throw new Error(`${cfg.algorithm.label} picked no server`);
    const k = indexOf.get(s.id)!;
    touch(k, now);
    pool.acquire(s);
    node[r] = k;
    admittedAt[r] = now;
    wait[r] = now - arrival[r]!;
    if (r >= first) served[k] = served[k]! + 1;
    cpu(k, now, m.connectMs, r, CONNECTED);
  };

  // front-end queue of arrived requests (open arrivals) waiting for admission
  const waiting = new Uint32Array(saturated ? 0 : R);
  let qHead = 0;
  let qTail = 0;
  let nextToAdmit = 0; // saturation: the next request of the trace

  if (saturated) {
    const initial = Math.min(R, cfg.admit);
    for (let r = 0; r < initial; r++) {
      if (r === first) openWindow(0);
      admitRequest(r, 0);
    }
    nextToAdmit = initial;
    if (nextToAdmit === R) closeWindow(0);
  } else {
    q.push(0, ARRIVE, 0);
  }
  const meanGapMs = saturated ? 0 : 1000 / cfg.rateRps!;

  let now = 0;
  while (q.pop()) {
    now = q.t;
    clock.t = now;
    const r = q.arg;
    switch (q.kind) {
      case ARRIVE: {
        arrival[r] = now;
        if (r === first) openWindow(now);
        if (cfg.admit === 0 || pool.inflight < cfg.admit) admitRequest(r, now);
        else waiting[qTail++] = r;
        if (r + 1 < R) q.push(now - Math.log(1 - arrivalRng.next()) * meanGapMs, ARRIVE, r + 1);
        else closeWindow(now);
        break;
      }
      case CONNECTED: {
        const k = node[r]!;
        const b = bytes[r]!;
        if (b > 0) {
          const f = files[r]!;
          const measured = r >= first;
          if (measured) lookups[k] = lookups[k]! + 1;
          if (caches[k]!.lookup(f)) {
            if (measured) hits[k] = hits[k]! + 1;
            cpu(k, now, transmitMs(m, b), r, DONE);
          } else {
            const free = diskFree[k]!;
            const start = free > now ? free : now;
            const done = start + diskMs(m, fileSizes[f]!) * factor[k]!;
            diskFree[k] = done;
            wait[r] = wait[r]! + (start - now);
            if (windowOpen && !windowClosed) diskBusy[k] = diskBusy[k]! + (done - start);
            q.push(done, READ, r);
          }
        } else {
          cpu(k, now, transmitMs(m, 0), r, DONE);
        }
        break;
      }
      case READ: {
        const k = node[r]!;
        const f = files[r]!;
        caches[k]!.insert(f, fileSizes[f]!);
        cpu(k, now, transmitMs(m, bytes[r]!), r, DONE);
        break;
      }
      case DONE: {
        const k = node[r]!;
        const rt = runtimes[k]!;
        latency[r] = now - arrival[r]!;
        if (r >= first) {
          const res = now - admittedAt[r]!;
          residence[k] = residence[k]! + res;
          // wait[r] holds the front-end wait and then every CPU and disk queue's.
          service[k] = service[k]! + res - (wait[r]! - (admittedAt[r]! - arrival[r]!));
        }
        if (windowOpen && !windowClosed) completionsInWindow++;
        touch(k, now);
        outcome.latencyMs = now - admittedAt[r]!;
        outcome.bytes = bytes[r]!;
        pool.release(rt, releaseOutcome);
        if (saturated) {
          if (nextToAdmit < R) {
            const next = nextToAdmit++;
            arrival[next] = now;
            if (next === first) openWindow(now);
            admitRequest(next, now);
            if (nextToAdmit === R) closeWindow(now);
          }
        } else if (qHead < qTail) {
          admitRequest(waiting[qHead++]!, now);
        }
        break;
      }
    }
  }
  const end = now;

  let windowMs = tLast - tStart;
  let throughputRps: number;
  if (windowMs > 0) {
    throughputRps = (completionsInWindow * 1000) / windowMs;
  } else {
    // every request was admitted at once: measure over the whole run instead
    windowMs = end - tStart;
    throughputRps = windowMs > 0 ? ((R - first) * 1000) / windowMs : NaN;
  }
  const span = windowMs > 0 ? windowMs : 1;

  const lat = latency.slice(first).sort();
  const wt = wait.slice(first).sort();
  const perNode: NodeStats[] = [];
  let totalLookups = 0;
  let totalHits = 0;
  for (let k = 0; k < n; k++) {
    totalLookups += lookups[k]!;
    totalHits += hits[k]!;
    perNode.push({
      requests: served[k]!,
      hitRatio: lookups[k]! > 0 ? hits[k]! / lookups[k]! : NaN,
      meanActive: tLast > tStart ? area[k]! / (tLast - tStart) : NaN,
      cpuUtil: Math.min(1, cpuBusy[k]! / span),
      diskUtil: Math.min(1, diskBusy[k]! / span),
      residenceMs: served[k]! > 0 ? residence[k]! / served[k]! : NaN,
      serviceMs: served[k]! > 0 ? service[k]! / served[k]! : NaN,
    });
  }
  return {
    algorithm: cfg.algorithm.label,
    nodes: n,
    admit: cfg.admit,
    measured: R - first,
    windowMs,
    simulatedMs: end,
    throughputRps,
    hitRatio: totalLookups > 0 ? totalHits / totalLookups : NaN,
    loadMaxAvg: n === 1 ? 1 : maxOverMean(perNode.map((x) => x.meanActive)),
    shareMaxAvg: n === 1 ? 1 : maxOverMean(served),
    queueMeanMs: mean(wt),
    queueP50Ms: percentileSorted(wt, 0.5),
    queueP99Ms: percentileSorted(wt, 0.99),
    latencyMeanMs: mean(lat),
    latencyP50Ms: percentileSorted(lat, 0.5),
    latencyP90Ms: percentileSorted(lat, 0.9),
    latencyP99Ms: percentileSorted(lat, 0.99),
    latencyP999Ms: percentileSorted(lat, 0.999),
    cpuUtil: mean(perNode.map((x) => x.cpuUtil)),
    diskUtil: mean(perNode.map((x) => x.diskUtil)),
    perNode,
  };
}
