/** Nearest-rank percentile (p in [0, 1]) of an ascending array; NaN when empty. */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const rank = Math.min(n, Math.max(1, Math.ceil(p * n)));
  return sorted[rank - 1]!;
}

export function mean(a: ArrayLike<number>): number {
  if (a.length === 0) return NaN;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return s / a.length;
}

/** max / mean of non-negative values: 1 is perfect balance; NaN when the mean is 0. */
export function maxOverMean(a: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, a[i]!);
  const m = mean(a);
  return m > 0 ? max / m : NaN;
}
