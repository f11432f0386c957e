import type { Clock } from '../core/clock.js';
import type { OpState, Server, ServerId } from '../core/server.js';

/**
 * How a request on a server ended, as the data path reports it: '' (the server answered, see the
 * status), 'connect' (no connection: refused, unreachable, connect timeout) or 'response'
 * (connected, but no complete response: reset, closed, response timeout, malformed).
 */
export type FailureKind = '' | 'connect' | 'response';

/** Which outcomes count as errors toward an ejection. */
export type OutlierError = 'connect' | 'response' | '5xx';

/** The per-server fields outlier detection keeps (a pool's ServerRuntime has them). */
export interface OutlierServer {
  readonly server: Server;
  /** Consecutive errors so far. */
  errorStreak: number;
  /** Ejections in a row (the multiplier of ejectFor). */
  ejections: number;
  /** True while ejected by outlier detection. */
  ejected: boolean;
  /** When the last ejection ended (clock ms), 0 when never. */
  ejectionEndedAt: number;
}

export interface OutlierTarget {
  readonly name: string;
  readonly size: number;
  [Symbol.iterator](): Iterator<OutlierServer>;
  runtime(id: ServerId): OutlierServer | undefined;
  setOp(id: ServerId, op: OpState, cause: 'passive', detail?: string): boolean;
}

export interface OutlierOptions {
  readonly consecutiveErrors: number;
  readonly ejectForMs: number;
  readonly maxEjectForMs: number;
  readonly maxEjectPercent: number;
  readonly errors: readonly OutlierError[];
}

export interface OutlierDeps {
  readonly clock: Clock;
  /** Called when a server is ejected: active checks, when configured, then decide its return. */
  readonly onEject?: ((id: ServerId, detail: string) => void) | undefined;
}

/** The ejection time of the n-th ejection in a row: ejectFor doubled each time, up to maxEjectFor. */
export function ejectionMs(n: number, ejectForMs: number, maxEjectForMs: number): number {
  const d = ejectForMs * 2 ** Math.max(0, Math.min(n - 1, 30));
  return Math.min(d, Math.max(maxEjectForMs, ejectForMs));
}

/** Most servers of a pool of `size` that may be ejected at once. */
export function maxEjected(size: number, maxEjectPercent: number): number {
  return Math.floor((size * maxEjectPercent) / 100);
}

/**
 * Passive health checks (outlier detection, as Envoy's): consecutive errors of live traffic on a
 * server eject it for ejectFor, doubled on each ejection in a row up to maxEjectFor; never more
 * than maxEjectPercent of the pool is ejected at once. An ejection ends after its time; with
 * active checks the server was also marked down by them (see `onEject`) and needs their `rise`
 * passing probes as well. A server that goes maxEjectFor without an ejection starts over at ejectFor.
 *
 * `record` runs on the data path for every finished request: field reads and writes only.
 */
export class OutlierDetector {
  readonly name: string;
  private readonly target: OutlierTarget;
  private readonly o: OutlierOptions;
  private readonly deps: OutlierDeps;
  private readonly countConnect: boolean;
  private readonly countResponse: boolean;
  private readonly count5xx: boolean;
  private readonly timers = new Map<ServerId, NodeJS.Timeout>();
  /** Ejections refused because maxEjectPercent was reached. */
  capped = 0;
  private running = true;

  constructor(target: OutlierTarget, options: OutlierOptions, deps: OutlierDeps) {
    this.name = `passive:${target.name}`;
    this.target = target;
    this.o = options;
    this.deps = deps;
    this.countConnect = options.errors.includes('connect');
    this.countResponse = options.errors.includes('response');
    this.count5xx = options.errors.includes('5xx');
  }

  /** A request on `rt` ended; `status` is the server's status, 0 when it gave none. Bound: the data path calls it as is. */
  readonly record = (rt: OutlierServer, failure: FailureKind, status: number): void => {
    let error: boolean;
    if (failure === 'connect') error = this.countConnect;
    else if (failure === 'response') error = this.countResponse;
    else if (status === 0) return; // the client left first: says nothing about the server
    else error = status >= 500 && this.count5xx;
    if (!error) {
      rt.errorStreak = 0;
      return;
    }
    if (++rt.errorStreak < this.o.consecutiveErrors || rt.ejected || !this.running) return;
    this.eject(rt, failure === '' ? `status ${status}` : failure === 'connect' ? 'connect failed' : 'no complete response');
  };

  private eject(rt: OutlierServer, last: string): void {
    let ejectedNow = 0;
    for (const s of this.target) if (s.ejected) ejectedNow++;
    const streak = rt.errorStreak;
    rt.errorStreak = 0;
    if (ejectedNow + 1 > maxEjected(this.target.size, this.o.maxEjectPercent)) {
      this.capped++;
      return;
    }
    const now = this.deps.clock.now();
    if (rt.ejectionEndedAt > 0 && now - rt.ejectionEndedAt >= this.o.maxEjectForMs) rt.ejections = 0;
    rt.ejections++;
    const ms = ejectionMs(rt.ejections, this.o.ejectForMs, this.o.maxEjectForMs);
    rt.ejected = true;
    const id = rt.server.id;
    const detail = `${streak} consecutive errors (last: ${last}); ejected for ${fmtMs(ms)}`;
    this.target.setOp(id, 'down', 'passive', detail);
    this.deps.onEject?.(id, `ejected by passive checks: ${detail}`);
    const t = setTimeout(() => this.release(id, ms), ms);
    t.unref();
    this.timers.set(id, t);
  }

  private release(id: ServerId, ms: number): void {
    this.timers.delete(id);
    const rt = this.target.runtime(id);
    if (rt === undefined || !rt.ejected) return;
    rt.ejected = false;
    rt.errorStreak = 0;
    rt.ejectionEndedAt = this.deps.clock.now();
    this.target.setOp(id, 'up', 'passive', `ejection of ${fmtMs(ms)} ended`);
  }

  async start(): Promise<void> {
    this.running = true;
  }

  /** Stop: pending ejections end now (their servers are released). */
  async stop(_graceMs: number): Promise<void> {
    this.running = false;
    for (const [id, t] of this.timers) {
      clearTimeout(t);
      this.release(id, 0);
    }
    this.timers.clear();
  }
}

function fmtMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
