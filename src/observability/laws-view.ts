import type { PoolFrame } from './live-stats.js';
import { operationalLaws } from './live-stats.js';

/**
 * `GET /api/v1/pools/{pool}/laws`: every operational law of a pool from a statistics frame,
 * with the bounds at think time `Z` (ms). Per server its measured X, R, N and X·R (Little's
 * law), its server time T and the estimates (S, c), its share V, utilization, demand and
 * capacity; for the pool the same measured figures, D, Dmax, the bottleneck, the saturation
 * bound 1/Dmax, the knee and the bounds at the measured N. Plain JSON.
 */
export function lawsView(frame: PoolFrame, time: number, inService: (server: string) => boolean, Z: number): Record<string, unknown> {
  const op = operationalLaws(frame.laws, frame.servers, inService, Z);
  const byName = new Map(op.servers.map((s) => [s.name, s]));
  return {
    pool: frame.name,
    at: new Date(time).toISOString(),
    windowSec: frame.laws.windowSec,
    ...op,
    servers: frame.servers.map((f) => {
      const { name: _, ...s } = byName.get(f.name)!;
      return {
        name: f.name,
        X: f.laws.X,
        R: f.laws.R,
        N: f.laws.N,
        XR: f.laws.XR,
        T: f.service.T === null ? null : Math.round(f.service.T * 1000) / 1000,
        ...s,
      };
    }),
  };
}
