/**
 * Latency buckets. Two sets: the Prometheus buckets of `portico_request_duration_seconds`
 * (the usual decades, in seconds), and fine log-scale buckets for the dashboard's
 * percentiles and per-server histograms (four per power of two, so a percentile read
 * from them is within 19% of the true value).
 */

/** Upper bounds of `portico_request_duration_seconds`, in seconds (+Inf is implied). */
export const PROM_BUCKETS_SEC: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
]);
const PROM_BUCKETS_MS = new Float64Array(PROM_BUCKETS_SEC.map((s) => s * 1000));

/** Index of the Prometheus bucket for `ms` (PROM_BUCKETS_SEC.length = +Inf). Linear: most requests stop early. */
export function promBucket(ms: number): number {
  const b = PROM_BUCKETS_MS;
  const n = b.length;
  for (let i = 0; i < n; i++) if (ms <= b[i]!) return i;
  return n;
}

/** Fine buckets per power of two. */
const PER_OCTAVE = 4;
/** The first fine bucket ends at 2^MIN_EXP ms (62.5 µs). */
const MIN_EXP = -4;
/** The last finite fine bucket ends at 2^MAX_EXP ms (65.5 s); one more bucket holds the rest. */
const MAX_EXP = 16;
/** Number of fine buckets, the overflow bucket included. */
export const FINE_BUCKETS = (MAX_EXP - MIN_EXP) * PER_OCTAVE + 2;

/** Upper bound in ms of fine bucket `i` (Infinity for the last). */
export function fineUpperMs(i: number): number {
  if (i >= FINE_BUCKETS - 1) return Infinity;
  return 2 ** (MIN_EXP + i / PER_OCTAVE);
}

/** Lower bound in ms of fine bucket `i`. */
export function fineLowerMs(i: number): number {
  return i <= 0 ? 0 : fineUpperMs(i - 1);
}

/** Index of the fine bucket that holds `ms`. */
export function fineBucket(ms: number): number {
  if (!(ms > 0.0625)) return 0;
  const i = Math.ceil((Math.log2(ms) - MIN_EXP) * PER_OCTAVE - 1e-9);
  return i >= FINE_BUCKETS - 1 ? FINE_BUCKETS - 1 : i;
}

/**
 * The q-quantile (0..1) of a fine histogram, interpolated linearly inside its bucket;
 * NaN when the histogram is empty. The overflow bucket answers with its lower bound.
 */
export function fineQuantile(counts: ArrayLike<number>, q: number): number {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i]!;
  if (total === 0) return NaN;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (c === 0) continue;
    if (seen + c >= rank) {
      const lo = fineLowerMs(i);
      const hi = fineUpperMs(i);
      if (hi === Infinity) return lo;
      return lo + (hi - lo) * Math.min(1, Math.max(0, (rank - seen) / c));
    }
    seen += c;
  }
  return fineLowerMs(counts.length - 1);
}
