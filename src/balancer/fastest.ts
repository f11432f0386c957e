import type { Server, ServerId } from '../core/server.js';
import type { BalancerFactory } from './balancer.js';
import { carriedState } from './carry.js';
import { durationOption, numberOption, optionsObject } from './options.js';
import { weightedAvailable } from './weights.js';

export interface FastestOptions {
  /** Time constant of the peak-EWMA decay, in ms (Finagle's decayTime; default 10 s). */
  readonly decayMs: number;
  /** Servers compared per pick: 2 (default, P2C), d ≥ 2, or 0 for all of them. */
  readonly choices: number;
}

/** Load of a server with requests in flight and no latency measured yet (Finagle: Long.MaxValue >> 16). */
export const UNMEASURED_PENALTY = 2 ** 47;

/**
 * Peak-EWMA of response time (Finagle's PeakEwma): a slower sample is taken at once, a faster one is
 * blended in with weight 1 - exp(-dt / tau); between samples the cost decays toward 0 with time
 * constant tau, so a server that was slow is tried again once its cost has decayed below the others'.
 */
export class LatencyScore {
  costMs = 0;
  /** ln(costMs) + stamp / tau: the decayed cost at time t is exp(logKey − t / tau) (no exp() per pick). */
  logKey = -Infinity;
  constructor(public stamp: number) {}

  rekey(tauMs: number): void {
    this.logKey = this.costMs > 0 ? Math.log(this.costMs) + this.stamp / tauMs : -Infinity;
  }

  observe(rttMs: number, now: number, tauMs: number): void {
    const dt = Math.max(now - this.stamp, 0);
    const w = Math.exp(-dt / tauMs);
    if (rttMs > this.costMs) this.costMs = rttMs;
    else this.costMs = this.costMs * w + rttMs * (1 - w);
    this.stamp = now;
    this.rekey(tauMs);
  }

  /** The cost now (decayed since the last sample), in ms. */
  current(now: number, tauMs: number): number {
    const dt = now - this.stamp;
    return dt > 0 ? this.costMs * Math.exp(-dt / tauMs) : this.costMs;
  }
}

const LN = Float64Array.from({ length: 1024 }, (_, k) => Math.log(k));
/** ln(k) for a non-negative integer, from a table below 1024. */
function lnInt(k: number): number {
  return k < 1024 ? LN[k]! : Math.log(k);
}

/**
 * `fastest`: peak-EWMA latency × (active + 1) per unit of weight, Finagle's load. By default the
 * pick compares two distinct servers drawn at random (Finagle's and Linkerd's P2C over peak-EWMA):
 * O(1) per pick, and no herd on the one server that looked fastest a moment ago. `choices: 0`
 * compares every server (equal loads take turns); `choices: d` compares d random ones.
 *
 * A server never measured and idle has load 0 (it is tried at once); never measured with requests in
 * flight it weighs UNMEASURED_PENALTY + active. Scores live in `deps.carry` and survive rebuilds.
 */
export const fastest: BalancerFactory<FastestOptions> = {
  name: 'fastest',
  parseOptions(raw) {
    const o = optionsObject('fastest', raw, ['decay', 'choices']);
    return {
      decayMs: durationOption('fastest', o, 'decay', { default: 10_000, min: 1, max: 3_600_000 }),
      choices: numberOption('fastest', o, 'choices', { default: 2, min: 0, max: 1000, integer: true }),
    };
  },
  build(set, options, deps) {
    const { servers, weights } = weightedAvailable(set, deps);
    const { clock, counts, rng } = deps;
    const tau = options.decayMs;
    const scores = carriedState<LatencyScore>(deps.carry, 'fastest', set.byId);
    const now0 = clock.now();
    const mine: LatencyScore[] = servers.map((s) => {
      let m = scores.get(s.id);
      if (m === undefined) scores.set(s.id, (m = new LatencyScore(now0)));
      return m;
    });
    for (const m of scores.values()) m.rekey(tau);
    const logWeight = Float64Array.from(weights, (w) => Math.log(w));
    const n = servers.length;
    const d = options.choices === 0 || options.choices >= n ? 0 : Math.max(2, options.choices);
    const perm = Uint32Array.from(servers, (_, i) => i); // partial Fisher–Yates draws d distinct servers
    let cursor = 0;

    /** ln(load / weight) of server i at time now/tau; -Infinity when never measured and idle. */
    const logLoad = (i: number, nowOverTau: number): number => {
      const active = counts.active(servers[i]!.id);
      const score = mine[i]!;
      if (score.costMs === 0) return active <= 0 ? -Infinity : Math.log(UNMEASURED_PENALTY + active) - logWeight[i]!;
      return score.logKey - nowOverTau + lnInt(active + 1) - logWeight[i]!;
    };

    const scan = (avoid: ReadonlySet<ServerId> | undefined, nowOverTau: number): number => {
      let best = -1;
      let bestLoad = 0;
      let i = cursor;
      for (let k = 0; k < n; k++) {
        if (avoid === undefined || !avoid.has(servers[i]!.id)) {
          const load = logLoad(i, nowOverTau);
          if (best < 0 || load < bestLoad) {
            best = i;
            bestLoad = load;
            if (load === -Infinity) break;
          }
        }
        i = i + 1 === n ? 0 : i + 1;
      }
      if (best >= 0) cursor = best + 1 === n ? 0 : best + 1;
      return best;
    };

    return {
      name: 'fastest',
      pick(ctx) {
        if (n === 0) return undefined;
        const avoid = ctx.avoid !== undefined && ctx.avoid.size > 0 ? ctx.avoid : undefined;
        const nowOverTau = clock.now() / tau;
        if (d === 0) {
          const i = scan(avoid, nowOverTau);
          return i < 0 ? undefined : servers[i];
        }
        let best = -1;
        let bestLoad = 0;
        for (let t = 0; t < d; t++) {
          const r = t + rng.nextInt(n - t);
          const i = perm[r]!;
          perm[r] = perm[t]!;
          perm[t] = i;
          if (avoid !== undefined && avoid.has(servers[i]!.id)) continue;
          const load = logLoad(i, nowOverTau);
          if (best < 0 || load < bestLoad) {
            best = i;
            bestLoad = load;
          }
        }
        if (best < 0) best = scan(avoid, nowOverTau); // every candidate avoided
        return best < 0 ? undefined : servers[best];
      },
      onRelease(server: Server, outcome) {
        const rtt = outcome.latencyMs;
        if (rtt === undefined || !(rtt >= 0)) return;
        let m = scores.get(server.id);
        if (m === undefined) scores.set(server.id, (m = new LatencyScore(clock.now())));
        m.observe(rtt, clock.now(), tau);
      },
    };
  },
};
