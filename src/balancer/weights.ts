import type { Server } from '../core/server.js';
import type { ServerSet } from '../core/server-set.js';
import type { BalancerDeps } from './balancer.js';

/** The servers a balancer may pick, with their effective weights, fixed at build time. */
export interface WeightedServers {
  readonly servers: readonly Server[];
  /** Effective weight of `servers[i]` (`deps.weightOf ?? server.weight`), always > 0. */
  readonly weights: Float64Array;
  readonly total: number;
  /** Every weight equal: algorithms may skip weighting. */
  readonly uniform: boolean;
}

/**
 * `set.available` with effective weights; servers whose effective weight is 0 (or not a finite
 * positive number) are left out, so they are never picked.
 */
export function weightedAvailable(set: ServerSet, deps: BalancerDeps, order?: (a: Server, b: Server) => number): WeightedServers {
  const weightOf = deps.weightOf;
  const kept: Server[] = [];
  const w: number[] = [];
  for (const s of set.available) {
    const x = weightOf === undefined ? s.weight : weightOf(s);
    if (typeof x === 'number' && Number.isFinite(x) && x > 0) {
      kept.push(s);
      w.push(x);
    }
  }
  if (order !== undefined) {
    const idx = kept.map((_, i) => i).sort((a, b) => order(kept[a]!, kept[b]!));
    const sortedServers = idx.map((i) => kept[i]!);
    const sortedWeights = idx.map((i) => w[i]!);
    return make(sortedServers, sortedWeights);
  }
  return make(kept, w);
}

function make(servers: Server[], w: number[]): WeightedServers {
  const weights = Float64Array.from(w);
  let total = 0;
  let uniform = true;
  for (let i = 0; i < weights.length; i++) {
    total += weights[i]!;
    if (weights[i] !== weights[0]) uniform = false;
  }
  return { servers: Object.freeze(servers), weights, total, uniform };
}

/**
 * Order by server name, by UTF-16 code units (never locale-dependent): the order every node agrees
 * on for the same server list, whatever the order of configuration or discovery.
 */
export function byName(a: Server, b: Server): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * Walker/Vose alias table: weighted sampling in O(1) from one uniform draw, no allocation per draw.
 */
export class AliasTable {
  private readonly prob: Float64Array;
  private readonly alias: Uint32Array;
  private readonly n: number;

  constructor(weights: Float64Array) {
    const n = weights.length;
    this.n = n;
    this.prob = new Float64Array(n);
    this.alias = new Uint32Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) total += weights[i]!;
    const scaled = new Float64Array(n);
    const small: number[] = [];
    const large: number[] = [];
    for (let i = 0; i < n; i++) {
      scaled[i] = (weights[i]! * n) / total;
      (scaled[i]! < 1 ? small : large).push(i);
    }
    while (small.length > 0 && large.length > 0) {
      const s = small.pop()!;
      const l = large.pop()!;
      this.prob[s] = scaled[s]!;
      this.alias[s] = l;
      scaled[l] = scaled[l]! + scaled[s]! - 1;
      (scaled[l]! < 1 ? small : large).push(l);
    }
    for (const i of large) {
      this.prob[i] = 1;
      this.alias[i] = i;
    }
    for (const i of small) {
      this.prob[i] = 1; // only reached through rounding error
      this.alias[i] = i;
    }
  }

  /** An index drawn with probability weight[i] / total, from `u` uniform in [0, 1). */
  sample(u: number): number {
    const x = u * this.n;
    let col = Math.floor(x);
    if (col >= this.n) col = this.n - 1;
    return x - col < this.prob[col]! ? col : this.alias[col]!;
  }
}
