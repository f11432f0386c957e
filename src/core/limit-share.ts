/**
 * One process's share of a limit that `cluster.workers` processes enforce together: with `n`
 * workers each counts its own connections (or queued requests) against `max(1, floor(limit / n))`,
 * so the group never exceeds a limit of `n` or more. 0 (unlimited) stays 0. A limit below `n`
 * gives every worker 1, so the group allows `n`: a limit cannot be split below one per worker.
 */
export function limitShare(limit: number, n: number): number {
  if (limit === 0 || n <= 1) return limit;
  return Math.max(1, Math.floor(limit / n));
}
