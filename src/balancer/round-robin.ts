import type { Server, ServerId } from '../core/server.js';
import type { BalancerFactory } from './balancer.js';
import { noOptions } from './options.js';
import { weightedAvailable } from './weights.js';

/** Longest period precomputed at build; beyond it (or for fractional weights) picks run nginx's loop. */
export const MAX_PRECOMPUTED_PERIOD = 65_536;

/**
 * nginx's smooth weighted round-robin, run from zero for `steps` picks: the index picked at each step.
 * On every pick each peer's current weight grows by its weight, the largest (first on ties) is picked
 * and loses the total. Pure; used to precompute one period and by the tests.
 */
export function smoothWrrSequence(weights: ArrayLike<number>, steps: number): Uint32Array {
  const n = weights.length;
  const cw = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) total += weights[i]!;
  const out = new Uint32Array(steps);
  for (let t = 0; t < steps; t++) {
    let best = 0;
    for (let i = 0; i < n; i++) {
      cw[i] = cw[i]! + weights[i]!;
      if (cw[i]! > cw[best]!) best = i;
    }
    cw[best] = cw[best]! - total;
    out[t] = best;
  }
  return out;
}

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/** Where a round-robin keeps its position across rebuilds (in `deps.carry`). */
export interface RoundRobinCursor {
  cursor: number;
}

/**
 * Smooth weighted round-robin over fixed servers and weights. With integer weights whose period
 * (sum / gcd) is at most MAX_PRECOMPUTED_PERIOD the period is precomputed and a pick is one array
 * read; otherwise each pick runs nginx's O(n) loop. Either way the sequence is nginx's: each server
 * appears exactly weight/gcd times per period, interleaved (5,1,1 → a a b a c a a).
 *
 * Avoided servers are skipped: with the precomputed period their turns are consumed by the retry;
 * with the loop they take no part in that pick (as nginx's `tried` bitmap).
 */
export class SmoothWeightedRoundRobin {
  private readonly seq: Uint32Array | undefined;
  private readonly cw: Float64Array;
  private readonly total: number;

  constructor(
    private readonly servers: readonly Server[],
    private readonly weights: Float64Array,
    private readonly state: RoundRobinCursor,
  ) {
    const n = servers.length;
    this.cw = new Float64Array(n);
    let total = 0;
    let g = 0;
    let integral = true;
    for (let i = 0; i < n; i++) {
      const w = weights[i]!;
      total += w;
      if (!Number.isInteger(w)) integral = false;
      else g = gcd(w, g);
    }
    this.total = total;
    if (n > 0 && integral && total / g <= MAX_PRECOMPUTED_PERIOD) {
      const reduced = new Float64Array(n);
      for (let i = 0; i < n; i++) reduced[i] = weights[i]! / g;
      this.seq = smoothWrrSequence(reduced, total / g);
      if (!(state.cursor >= 0 && state.cursor < this.seq.length)) state.cursor = 0;
    } else {
      this.seq = undefined;
    }
  }

  pick(avoid: ReadonlySet<ServerId> | undefined): Server | undefined {
    const seq = this.seq;
    if (seq === undefined) return this.loop(avoid);
    const period = seq.length;
    const state = this.state;
    let c = state.cursor;
    if (avoid === undefined || avoid.size === 0) {
      const s = this.servers[seq[c]!]!;
      state.cursor = c + 1 === period ? 0 : c + 1;
      return s;
    }
    for (let tried = 0; tried < period; tried++) {
      const s = this.servers[seq[c]!]!;
      c = c + 1 === period ? 0 : c + 1;
      if (!avoid.has(s.id)) {
        state.cursor = c;
        return s;
      }
    }
    return undefined;
  }

  private loop(avoid: ReadonlySet<ServerId> | undefined): Server | undefined {
    const servers = this.servers;
    const weights = this.weights;
    const cw = this.cw;
    const n = servers.length;
    const checkAvoid = avoid !== undefined && avoid.size > 0;
    let best = -1;
    let total = this.total;
    if (checkAvoid) total = 0;
    for (let i = 0; i < n; i++) {
      if (checkAvoid) {
        if (avoid.has(servers[i]!.id)) continue;
        total += weights[i]!;
      }
      cw[i] = cw[i]! + weights[i]!;
      if (best < 0 || cw[i]! > cw[best]!) best = i;
    }
    if (best < 0) return undefined;
    cw[best] = cw[best]! - total;
    return servers[best];
  }
}

/** `roundrobin`: nginx's smooth weighted round-robin on effective weights. */
export const roundRobin: BalancerFactory<undefined> = {
  name: 'roundrobin',
  parseOptions: noOptions('roundrobin'),
  build(set, _options, deps) {
    const { servers, weights } = weightedAvailable(set, deps);
    let state = deps.carry.get('roundrobin') as RoundRobinCursor | undefined;
    if (state === undefined) {
      state = { cursor: 0 };
      deps.carry.set('roundrobin', state);
    }
    const rr = new SmoothWeightedRoundRobin(servers, weights, state);
    return {
      name: 'roundrobin',
      pick: (ctx) => rr.pick(ctx.avoid),
    };
  },
};
