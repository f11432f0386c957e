/**
 * The rise/fall state machine of active health checks, as a pure function. A server is `up`,
 * `down`, or `starting` (not probed yet: available, and decided by its first probe). From up,
 * `fall` consecutive failures take it down; from down, `rise` consecutive successes bring it up.
 * A result that agrees with the state resets the streak, so scattered failures never add up.
 */
export type HealthState = 'up' | 'down' | 'starting';

export interface Health {
  readonly state: HealthState;
  /** Consecutive results that disagree with `state`. */
  readonly streak: number;
}

export interface Thresholds {
  readonly rise: number;
  readonly fall: number;
}

export interface Observation {
  readonly next: Health;
  /** True when `next.state` differs from the state observed from. */
  readonly flipped: boolean;
}

export const STARTING: Health = Object.freeze({ state: 'starting', streak: 0 });
export const UP: Health = Object.freeze({ state: 'up', streak: 0 });
export const DOWN: Health = Object.freeze({ state: 'down', streak: 0 });

export function observe(h: Health, ok: boolean, t: Thresholds): Observation {
  if (h.state === 'starting') return { next: ok ? UP : DOWN, flipped: true };
  const isUp = h.state === 'up';
  if (ok === isUp) return { next: h.streak === 0 ? h : isUp ? UP : DOWN, flipped: false };
  const streak = h.streak + 1;
  if (streak >= (ok ? t.rise : t.fall)) return { next: ok ? UP : DOWN, flipped: true };
  return { next: { state: h.state, streak }, flipped: false };
}

/** True while the state is changing: some results disagree, or nothing was observed yet. */
export const isChanging = (h: Health): boolean => h.streak > 0 || h.state === 'starting';
