import type { Server } from '../core/server.js';
import type { BalancerFactory } from './balancer.js';
import { carriedState } from './carry.js';
import { durationOption, optionsObject } from './options.js';
import { weightedAvailable } from './weights.js';

export interface LeastTrafficOptions {
  /** Time constant of the exponential decay of the byte rate, in ms (default 10 s). */
  readonly decayMs: number;
}

/**
 * An exponentially decayed byte counter: `acc` holds bytes weighted by exp(-age / tau), so
 * acc / tau is the recent rate in bytes per ms. Kept in `deps.carry`, so it survives rebuilds.
 *
 * `logKey` = ln(acc) + stamp / tau: the decayed value at time t is exp(logKey − t / tau), so
 * comparing log keys compares current rates with no exp() per server per pick.
 */
export class TrafficMeter {
  acc = 0;
  logKey = -Infinity;
  constructor(public stamp: number) {}

  add(bytes: number, now: number, tauMs: number): void {
    const dt = now - this.stamp;
    if (dt > 0) {
      this.acc *= Math.exp(-dt / tauMs);
      this.stamp = now;
    }
    this.acc += bytes;
    this.rekey(tauMs);
  }

  /** Recompute `logKey` (after a change of tau). */
  rekey(tauMs: number): void {
    this.logKey = this.acc > 0 ? Math.log(this.acc) + this.stamp / tauMs : -Infinity;
  }

  /** Recent rate in bytes per second. */
  bytesPerSec(now: number, tauMs: number): number {
    return (this.decayed(now, tauMs) * 1000) / tauMs;
  }

  decayed(now: number, tauMs: number): number {
    const dt = now - this.stamp;
    return dt > 0 ? this.acc * Math.exp(-dt / tauMs) : this.acc;
  }
}

/**
 * `least-traffic`: the server with the fewest bytes per second per unit of weight, from a decayed
 * rate fed by `onRelease({ bytes })` and the injected clock. Equal rates take turns.
 * Bytes are counted when a request is released, so a long transfer weighs in when it ends.
 */
export const leastTraffic: BalancerFactory<LeastTrafficOptions> = {
  name: 'least-traffic',
  parseOptions(raw) {
    const o = optionsObject('least-traffic', raw, ['decay']);
    return { decayMs: durationOption('least-traffic', o, 'decay', { default: 10_000, min: 1, max: 3_600_000 }) };
  },
  build(set, options, deps) {
    const { servers, weights } = weightedAvailable(set, deps);
    const { clock } = deps;
    const tau = options.decayMs;
    const meters = carriedState<TrafficMeter>(deps.carry, 'least-traffic', set.byId);
    const now0 = clock.now();
    const mine: TrafficMeter[] = servers.map((s) => {
      let m = meters.get(s.id);
      if (m === undefined) meters.set(s.id, (m = new TrafficMeter(now0)));
      return m;
    });
    for (const m of meters.values()) m.rekey(tau);
    const logWeight = Float64Array.from(weights, (w) => Math.log(w));
    const n = servers.length;
    let cursor = 0;
    return {
      name: 'least-traffic',
      pick(ctx) {
        const avoid = ctx.avoid;
        const checkAvoid = avoid !== undefined && avoid.size > 0;
        let best = -1;
        let bestScore = 0;
        let i = cursor;
        for (let k = 0; k < n; k++) {
          if (!checkAvoid || !avoid.has(servers[i]!.id)) {
            // ln(rate / weight) + now / tau, the same offset for every server
            const score = mine[i]!.logKey - logWeight[i]!;
            if (best < 0 || score < bestScore) {
              best = i;
              bestScore = score;
              if (score === -Infinity) break;
            }
          }
          i = i + 1 === n ? 0 : i + 1;
        }
        if (best < 0) return undefined;
        cursor = best + 1 === n ? 0 : best + 1;
        return servers[best];
      },
      onRelease(server: Server, outcome) {
        const bytes = outcome.bytes;
        if (bytes === undefined || !(bytes > 0)) return;
        let m = meters.get(server.id);
        if (m === undefined) meters.set(server.id, (m = new TrafficMeter(clock.now())));
        m.add(bytes, clock.now(), tau);
      },
    };
  },
};
