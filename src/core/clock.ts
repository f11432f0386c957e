/** Injected time: algorithms and state machines never read the wall clock themselves. */
export interface Clock {
  /** Monotonic milliseconds (fractional allowed). */
  now(): number;
}

export const systemClock: Clock = { now: () => performance.now() };

/** A clock that moves only when told to; for tests. */
export class ManualClock implements Clock {
  private t: number;
  constructor(start = 0) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}
