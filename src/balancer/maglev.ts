import { murmur3, SEED_OFFSET, SEED_SKIP } from './hash-fn.js';

/** Largest Maglev table accepted (Envoy's maximum). */
export const MAX_MAGLEV_TABLE = 5_000_011;

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/**
 * Maglev's table population (Eisenbud et al., NSDI 2016, pseudo-code 1), with weights as relative
 * turns: in round r a backend of weight w takes a turn when r·w has reached its next threshold, and
 * each turn moves the threshold by the largest weight; so a backend of the largest weight takes a
 * turn every round, one of a third of it every third round. With equal weights (or none) this is
 * exactly the paper's loop. Pure: given offsets and skips directly it reproduces the paper's Table 1.
 *
 * Returns `entry`, of length M, each slot holding a backend index.
 */
export function populateMaglev(
  offsets: ArrayLike<number>,
  skips: ArrayLike<number>,
  tableSize: number,
  weights?: ArrayLike<number>,
): Int32Array {
  const n = offsets.length;
  const M = tableSize;
  const entry = new Int32Array(M).fill(-1);
  if (n === 0) return entry;
  const pos = new Float64Array(n); // permutation[i][next[i]], advanced lazily
  for (let i = 0; i < n; i++) pos[i] = offsets[i]! % M;
  let maxW = 0;
  if (weights !== undefined) for (let i = 0; i < n; i++) maxW = Math.max(maxW, weights[i]!);
  const threshold = new Float64Array(n);
  let filled = 0;
  for (let round = 1; ; round++) {
    for (let i = 0; i < n; i++) {
      if (weights !== undefined) {
        if (round * weights[i]! < threshold[i]!) continue;
        threshold[i] = threshold[i]! + maxW;
      }
      const skip = skips[i]!;
      let c = pos[i]!;
      while (entry[c]! >= 0) {
        c += skip;
        if (c >= M) c -= M;
      }
      entry[c] = i;
      c += skip;
      if (c >= M) c -= M;
      pos[i] = c;
      if (++filled === M) return entry;
    }
  }
}

/**
 * The Maglev table for servers named `names` (already in the agreed order) with effective weights:
 * offset = h1(name) mod M, skip = h2(name) mod (M − 1) + 1, two independent seeds of MurmurHash3.
 */
export function buildMaglevTable(names: readonly string[], weights: ArrayLike<number>, tableSize: number): Int32Array {
  const n = names.length;
  const offsets = new Float64Array(n);
  const skips = new Float64Array(n);
  let uniform = true;
  for (let i = 0; i < n; i++) {
    offsets[i] = murmur3(names[i]!, SEED_OFFSET) % tableSize;
    skips[i] = (murmur3(names[i]!, SEED_SKIP) % (tableSize - 1)) + 1;
    if (weights[i] !== weights[0]) uniform = false;
  }
  return populateMaglev(offsets, skips, tableSize, uniform ? undefined : weights);
}
