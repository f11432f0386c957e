import type { Clock } from '../core/clock.js';

/** The fraction of its weight a server gets when its ramp begins. */
export const RAMP_MIN_FRACTION = 0.1;

/**
 * The fraction of its configured weight a server has `elapsedMs` into a ramp of `rampMs`: linear
 * from RAMP_MIN_FRACTION to 1, then 1.
 */
export function rampFraction(elapsedMs: number, rampMs: number): number {
  if (rampMs <= 0 || elapsedMs >= rampMs) return 1;
  const f = elapsedMs / rampMs;
  return f < RAMP_MIN_FRACTION ? RAMP_MIN_FRACTION : f;
}

/** How often effective weights are recomputed during a ramp: 20 steps, between 50 ms and 1 s apart. */
export function rampStepMs(rampMs: number): number {
  return Math.min(1000, Math.max(50, Math.round(rampMs / 20)));
}

/** A server as slow start needs it (a pool's ServerRuntime fits). */
export interface Ramping {
  readonly server: { readonly weight: number };
  effectiveWeight: number | undefined;
  /** Clock ms when its ramp began; -1 when it is not ramping. */
  rampStartedAt: number;
}

/**
 * Slow start of one pool: a server that comes back up (after being down or in maint, not at process
 * start) has its effective weight ramped linearly from a small fraction of its weight to all of it
 * over `rampMs`. Every balancer is built from effective weights (`BalancerDeps.weightOf`), so the
 * ramp applies to each algorithm through its own weighting. One timer per pool while any server ramps.
 */
export class SlowStart<R extends Ramping = Ramping> {
  rampMs: number;
  private readonly clock: Clock;
  private readonly ramping = new Set<R>();
  private timer: NodeJS.Timeout | undefined = undefined;
  /** Called after effective weights changed (the pool rebuilds), with the servers whose ramp ended. */
  private readonly changed: (finished: readonly R[]) => void;

  constructor(rampMs: number, clock: Clock, changed: (finished: readonly R[]) => void) {
    this.rampMs = rampMs;
    this.clock = clock;
    this.changed = changed;
  }

  get active(): number {
    return this.ramping.size;
  }

  isRamping(rt: R): boolean {
    return this.ramping.has(rt);
  }

  /** Begin (or restart) the ramp of a server; the caller rebuilds. */
  begin(rt: R): void {
    if (this.rampMs <= 0) return;
    rt.rampStartedAt = this.clock.now();
    rt.effectiveWeight = rt.server.weight * RAMP_MIN_FRACTION;
    this.ramping.add(rt);
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.step(), rampStepMs(this.rampMs));
      this.timer.unref();
    }
  }

  /** Stop a ramp (the server went down again, or left); its weight goes back to configured. */
  cancel(rt: R): void {
    if (!this.ramping.delete(rt)) return;
    rt.rampStartedAt = -1;
    rt.effectiveWeight = undefined;
    if (this.ramping.size === 0) this.clear();
  }

  /** Recompute effective weights now; returns true when any changed. */
  step(): boolean {
    if (this.ramping.size === 0) return false;
    const now = this.clock.now();
    const finished: R[] = [];
    let changed = false;
    for (const rt of this.ramping) {
      const f = rampFraction(now - rt.rampStartedAt, this.rampMs);
      const w = f >= 1 ? undefined : rt.server.weight * f;
      if (w !== rt.effectiveWeight) {
        rt.effectiveWeight = w;
        changed = true;
      }
      if (f >= 1) {
        rt.rampStartedAt = -1;
        finished.push(rt);
      }
    }
    for (const rt of finished) this.ramping.delete(rt);
    if (this.ramping.size === 0) this.clear();
    if (changed || finished.length > 0) this.changed(finished);
    return changed;
  }

  /** Stop every ramp now (full weights) and the timer. */
  close(): void {
    for (const rt of this.ramping) {
      rt.rampStartedAt = -1;
      rt.effectiveWeight = undefined;
    }
    this.ramping.clear();
    this.clear();
  }

  private clear(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}
