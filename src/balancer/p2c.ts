import type { Server } from '../core/server.js';
import type { BalancerFactory } from './balancer.js';
import { WeightedLeastConn } from './least-conn.js';
import { noOptions } from './options.js';
import { AliasTable, weightedAvailable } from './weights.js';

/**
 * `p2c`: power of two choices. The first candidate is drawn by weight, the second uniformly among the
 * others (so two distinct servers); the one with the lower in-flight count per unit of weight wins
 * (cross-multiplied), the first on ties. It never picks the busier of its two candidates.
 *
 * Avoid-set: an avoided candidate loses to the other; if both are avoided the pick falls back to
 * weighted least connections over the servers not avoided.
 */
export const powerOfTwoChoices: BalancerFactory<undefined> = {
  name: 'p2c',
  parseOptions: noOptions('p2c'),
  build(set, _options, deps) {
    const { servers, weights, uniform } = weightedAvailable(set, deps);
    const { rng, counts } = deps;
    const n = servers.length;
    const alias = uniform ? undefined : new AliasTable(weights);
    const fallback = new WeightedLeastConn(servers, weights, counts);
    return {
      name: 'p2c',
      pick(ctx) {
        const avoid = ctx.avoid;
        const checkAvoid = avoid !== undefined && avoid.size > 0;
        if (n < 2) {
          const only = servers[0];
          return only === undefined || (checkAvoid && avoid.has(only.id)) ? undefined : only;
        }
        const i = alias === undefined ? rng.nextInt(n) : alias.sample(rng.next());
        let j = rng.nextInt(n - 1);
        if (j >= i) j++;
        const a = servers[i]!;
        const b = servers[j]!;
        if (checkAvoid) {
          const avoidA = avoid.has(a.id);
          const avoidB = avoid.has(b.id);
          if (avoidA && avoidB) return fallback.pick(avoid);
          if (avoidA) return b;
          if (avoidB) return a;
        }
        return pickLighter(a, weights[i]!, b, weights[j]!, counts.active(a.id), counts.active(b.id));
      },
    };
  },
};

/** The lighter of two servers by active/weight; `a` on ties. */
function pickLighter(a: Server, wa: number, b: Server, wb: number, activeA: number, activeB: number): Server {
  return activeB * wa < activeA * wb ? b : a;
}
