import type { Rng } from '../core/rng.js';
import type { AdminState, OpState, Server, ServerId } from '../core/server.js';
import { describeResult, failed, type CheckResult, type HealthCheck } from './health-check.js';
import { DOWN, STARTING, UP, isChanging, observe, type Health, type Thresholds } from './rise-fall.js';

/** A server as the monitor sees it (a pool's ServerRuntime fits). */
export interface MonitoredServer {
  readonly server: Server;
  readonly admin: AdminState;
  readonly op: OpState;
}

/** What the monitor needs of a pool: its servers, where to report flips, and its membership events. */
export interface HealthTarget {
  readonly name: string;
  [Symbol.iterator](): Iterator<MonitoredServer>;
  runtime(id: ServerId): MonitoredServer | undefined;
  setOp(id: ServerId, op: OpState, cause: 'probe', detail?: string): boolean;
  onEvent(fn: (ev: { readonly kind: string; readonly server: string; readonly to: string }) => void): () => void;
}

export interface MonitorSchedule extends Thresholds {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Up to this much is added at random to every wait (and the first probe is spread over it). */
  readonly jitterMs: number;
  /** Wait while the state is changing (a streak has begun, or the server was never probed). */
  readonly fastIntervalMs: number;
  /** Wait while the server is down. */
  readonly downIntervalMs: number;
}

/** Counters and the last result of one server's probes (admin API, metrics). */
export interface ProbeStatus {
  readonly server: string;
  readonly health: Health;
  readonly passed: number;
  readonly failed: number;
  readonly timedOut: number;
  readonly last: CheckResult | undefined;
  /** Date.now() of the last result, 0 before the first. */
  readonly lastAt: number;
  readonly paused: boolean;
}

export interface ProbeResultEvent {
  readonly pool: string;
  readonly server: string;
  readonly result: CheckResult;
  readonly health: Health;
}

class Probe {
  health: Health = STARTING;
  timer: NodeJS.Timeout | undefined = undefined;
  running = false;
  paused = false;
  removed = false;
  passed = 0;
  failed = 0;
  timedOut = 0;
  last: CheckResult | undefined = undefined;
  lastAt = 0;
  constructor(readonly id: ServerId, public name: string) {}
}

/**
 * Active health checks of one pool: every server is probed on its own schedule (interval, or
 * fastInterval while its state is changing, downInterval while down, plus jitter); probes of one
 * server never overlap, and a probe is cut at its timeout whatever the check does. Flips of the
 * rise/fall state machine are reported to the pool as op changes with cause `probe`. A server in
 * `maint` is not probed; leaving maint probes it at once. Never throws, never stops by itself.
 */
export class HealthMonitor {
  readonly name: string;
  private readonly target: HealthTarget;
  private readonly checker: HealthCheck;
  private readonly sched: MonitorSchedule;
  private readonly rng: Rng;
  private readonly probes = new Map<ServerId, Probe>();
  private readonly resultListeners = new Set<(ev: ProbeResultEvent) => void>();
  private unsubscribe: (() => void) | undefined;
  private running = false;

  constructor(target: HealthTarget, checker: HealthCheck, schedule: MonitorSchedule, rng: Rng) {
    this.name = `health:${target.name}`;
    this.target = target;
    this.checker = checker;
    this.sched = schedule;
    this.rng = rng;
  }

  get kind(): string {
    return this.checker.kind;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    for (const rt of this.target) this.track(rt, this.jitter());
    this.unsubscribe = this.target.onEvent((ev) => this.onPoolEvent(ev.kind, ev.server, ev.to));
  }

  async stop(_graceMs: number): Promise<void> {
    this.running = false;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const p of this.probes.values()) {
      if (p.timer !== undefined) clearTimeout(p.timer);
      p.timer = undefined;
      p.removed = true;
    }
    this.probes.clear();
  }

  /** Told of every probe result (dashboard, events stream). */
  onResult(fn: (ev: ProbeResultEvent) => void): () => void {
    this.resultListeners.add(fn);
    return () => this.resultListeners.delete(fn);
  }

  status(): ProbeStatus[] {
    return [...this.probes.values()].map((p) => ({
      server: p.name,
      health: p.health,
      passed: p.passed,
      failed: p.failed,
      timedOut: p.timedOut,
      last: p.last,
      lastAt: p.lastAt,
      paused: p.paused,
    }));
  }

  /**
   * Mark a server down as if it had failed `fall` probes (passive ejection): it comes back only
   * after `rise` consecutive passing probes.
   */
  forceDown(id: ServerId, detail: string): void {
    const p = this.probes.get(id);
    if (p === undefined) return;
    p.health = DOWN;
    this.target.setOp(id, 'down', 'probe', detail);
  }

  private track(rt: MonitoredServer, delayMs: number): void {
    const p = new Probe(rt.server.id, rt.server.name);
    if (rt.op === 'up') p.health = UP;
    else if (rt.op === 'down') p.health = DOWN;
    this.probes.set(p.id, p);
    if (rt.admin === 'maint') p.paused = true;
    else this.schedule(p, delayMs);
  }

  private onPoolEvent(kind: string, name: string, to: string): void {
    if (!this.running) return;
    if (kind === 'added') {
      for (const rt of this.target) if (rt.server.name === name && !this.probes.has(rt.server.id)) this.track(rt, 0);
      return;
    }
    const p = this.byName(name);
    if (p === undefined) return;
    if (kind === 'removed') {
      p.removed = true;
      if (p.timer !== undefined) clearTimeout(p.timer);
      this.probes.delete(p.id);
      return;
    }
    if (kind === 'admin') {
      if (to === 'maint') {
        p.paused = true;
        if (p.timer !== undefined) clearTimeout(p.timer);
        p.timer = undefined;
      } else if (p.paused) {
        p.paused = false;
        if (!p.running) this.schedule(p, 0);
      }
    }
  }

  private byName(name: string): Probe | undefined {
    for (const p of this.probes.values()) if (p.name === name) return p;
    return undefined;
  }

  private jitter(): number {
    return this.sched.jitterMs > 0 ? this.rng.next() * this.sched.jitterMs : 0;
  }

  private nextDelay(h: Health): number {
    const s = this.sched;
    const base = isChanging(h) ? s.fastIntervalMs : h.state === 'down' ? s.downIntervalMs : s.intervalMs;
    return base + this.jitter();
  }

  private schedule(p: Probe, delayMs: number): void {
    if (p.timer !== undefined) clearTimeout(p.timer);
    p.timer = setTimeout(() => {
      p.timer = undefined;
      void this.run(p);
    }, delayMs);
    p.timer.unref();
  }

  private async run(p: Probe): Promise<void> {
    if (!this.running || p.removed || p.running) return;
    const rt = this.target.runtime(p.id);
    if (rt === undefined) return;
    if (rt.admin === 'maint') {
      p.paused = true;
      return;
    }
    p.running = true;
    const result = await this.probeOnce(rt.server);
    p.running = false;
    if (!this.running || p.removed) return;
    this.apply(p, result);
    if (!p.paused) this.schedule(p, this.nextDelay(p.health));
  }

  /** One probe, cut at the timeout even if the check ignores its signal. */
  private async probeOnce(server: Server): Promise<CheckResult> {
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const cut = new Promise<CheckResult>((resolve) => {
      timer = setTimeout(() => {
        ac.abort();
        resolve(failed('timeout', `no answer within ${this.sched.timeoutMs}ms`));
      }, this.sched.timeoutMs);
    });
    try {
      return await Promise.race([this.checker.check(server, ac.signal), cut]);
    } catch (err) {
      return failed('error', err instanceof Error ? err.message : String(err));
    } finally {
      clearTimeout(timer);
      ac.abort();
    }
  }

  private apply(p: Probe, r: CheckResult): void {
    p.last = r;
    p.lastAt = Date.now();
    if (r.ok) p.passed++;
    else if (r.reason === 'timeout') p.timedOut++;
    else p.failed++;
    const wasStarting = p.health.state === 'starting';
    const o = observe(p.health, r.ok, this.sched);
    p.health = o.next;
    if (o.flipped) {
      const n = wasStarting ? 1 : r.ok ? this.sched.rise : this.sched.fall;
      const detail = `${n} probe${n === 1 ? '' : 's'} ${r.ok ? 'passed' : 'failed'}, last: ${describeResult(r)}`;
      this.target.setOp(p.id, o.next.state === 'up' ? 'up' : 'down', 'probe', detail);
    }
    for (const fn of this.resultListeners) {
      try {
        fn({ pool: this.target.name, server: p.name, result: r, health: p.health });
      } catch {
        // a listener's fault never stops the monitor
      }
    }
  }
}
