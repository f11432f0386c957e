import type { BalancerFactory } from './balancer.js';
import { noOptions } from './options.js';
import { AliasTable, weightedAvailable } from './weights.js';

/** Draws tried before a random pick that hit an avoided server falls back to a scan. */
const REDRAWS = 4;

/**
 * `random`: weighted random (alias method, one draw per pick). An avoided draw is redrawn a few
 * times, then the first server not avoided after it is taken.
 */
export const weightedRandom: BalancerFactory<undefined> = {
  name: 'random',
  parseOptions: noOptions('random'),
  build(set, _options, deps) {
    const { servers, weights, uniform } = weightedAvailable(set, deps);
    const rng = deps.rng;
    const n = servers.length;
    const alias = uniform ? undefined : new AliasTable(weights);
    return {
      name: 'random',
      pick(ctx) {
        if (n === 0) return undefined;
        let i = alias === undefined ? rng.nextInt(n) : alias.sample(rng.next());
        const avoid = ctx.avoid;
        if (avoid === undefined || avoid.size === 0) return servers[i];
        for (let d = 0; d < REDRAWS; d++) {
          if (!avoid.has(servers[i]!.id)) return servers[i];
          i = alias === undefined ? rng.nextInt(n) : alias.sample(rng.next());
        }
        for (let k = 0; k < n; k++) {
          const s = servers[i]!;
          if (!avoid.has(s.id)) return s;
          i = i + 1 === n ? 0 : i + 1;
        }
        return undefined;
      },
    };
  },
};
