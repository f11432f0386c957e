import type { Server, ServerId } from '../core/server.js';
import type { ActiveCounts, BalancerFactory } from './balancer.js';
import { noOptions } from './options.js';
import { weightedAvailable } from './weights.js';

/**
 * Weighted least connections: the server with the lowest active/weight, compared by
 * cross-multiplication (a1 * w2 < a2 * w1, no division). The scan starts after the last server
 * picked, so servers with equal load take turns (HAProxy's "round-robin among equals").
 */
export class WeightedLeastConn {
  private cursor = 0;

  constructor(
    private readonly servers: readonly Server[],
    private readonly weights: Float64Array,
    private readonly counts: ActiveCounts,
  ) {}

  pick(avoid: ReadonlySet<ServerId> | undefined): Server | undefined {
    const servers = this.servers;
    const n = servers.length;
    if (n === 0) return undefined;
    const checkAvoid = avoid !== undefined && avoid.size > 0;
    let best = -1;
    let bestActive = 0;
    let bestWeight = 1;
    let i = this.cursor;
    for (let k = 0; k < n; k++) {
      const s = servers[i]!;
      if (!checkAvoid || !avoid.has(s.id)) {
        const a = this.counts.active(s.id);
        const w = this.weights[i]!;
        if (best < 0 || a * bestWeight < bestActive * w) {
          best = i;
          bestActive = a;
          bestWeight = w;
          if (a <= 0) break; // nothing beats an idle server
        }
      }
      i = i + 1 === n ? 0 : i + 1;
    }
    if (best < 0) return undefined;
    this.cursor = best + 1 === n ? 0 : best + 1;
    return servers[best];
  }
}

/** `leastconn`: weighted least connections on the pool's live in-flight counts. */
export const leastConn: BalancerFactory<undefined> = {
  name: 'leastconn',
  parseOptions: noOptions('leastconn'),
  build(set, _options, deps) {
    const { servers, weights } = weightedAvailable(set, deps);
    const lc = new WeightedLeastConn(servers, weights, deps.counts);
    return { name: 'leastconn', pick: (ctx) => lc.pick(ctx.avoid) };
  },
};
