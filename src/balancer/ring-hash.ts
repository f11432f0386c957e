import { murmur3, SEED_KEY } from './hash-fn.js';

/** A ketama-style ring: point positions in ascending order and the server index owning each. */
export interface HashRing {
  readonly positions: Uint32Array;
  readonly owners: Uint32Array;
}

/**
 * Points of a server: `max(1, round(vnodes × weight × n / total))`, so a server of average weight has
 * `vnodes` points, and with equal weights a server leaving changes no other server's points. Point j
 * of a server sits at murmur3(`name-j`); since a server's points are always a prefix of that
 * sequence, a weight change only adds or removes points at the end.
 */
export function ringPoints(vnodes: number, weight: number, n: number, totalWeight: number): number {
  return Math.max(1, Math.round((vnodes * weight * n) / totalWeight));
}

/** Build the ring for servers named `names` (already in the agreed order). Ties go to the earlier name. */
export function buildRing(names: readonly string[], weights: ArrayLike<number>, vnodes: number): HashRing {
  const n = names.length;
  if (n >= 1 << 20) throw new Error('ring hash supports at most 1048575 servers');
  let total = 0;
  for (let i = 0; i < n; i++) total += weights[i]!;
  let count = 0;
  const per = new Uint32Array(n);
  for (let i = 0; i < n; i++) count += per[i] = ringPoints(vnodes, weights[i]!, n, total);
  // position × 2^20 + owner is exact in a double and sorts by position, then by name order
  const keys = new Float64Array(count);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const name = names[i]!;
    for (let j = 0; j < per[i]!; j++) keys[k++] = murmur3(`${name}-${j}`, SEED_KEY) * 1048576 + i;
  }
  keys.sort();
  const positions = new Uint32Array(count);
  const owners = new Uint32Array(count);
  for (let p = 0; p < count; p++) {
    const v = keys[p]!;
    const owner = v % 1048576;
    owners[p] = owner;
    positions[p] = (v - owner) / 1048576;
  }
  return { positions, owners };
}

/** Index of the first point at or after `h` (clockwise), wrapping to 0. `positions` must be non-empty. */
export function ringLookup(positions: Uint32Array, h: number): number {
  let lo = 0;
  let hi = positions.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (positions[mid]! < h) lo = mid + 1;
    else hi = mid;
  }
  return lo === positions.length ? 0 : lo;
}
