/**
 * Hash functions for the hash-based algorithms. Written here (no `node:` module) so that every
 * Portico node computes the same value for the same string, independent of platform or locale.
 *
 * `murmur3` is MurmurHash3 x86 32-bit over the UTF-8 bytes of a string, encoded on the fly with no
 * allocation; its output matches the reference implementation, so it is checked against published
 * vectors. Two calls with different seeds give two independent 32-bit halves (a 64-bit quality pair).
 *
 * The seeds below are part of Portico's behaviour: changing one remaps every key on every node.
 */

/** Seed for Maglev permutation offsets (hash of the server name). */
export const SEED_OFFSET = 0x5bd1e995;
/** Seed for Maglev permutation skips (hash of the server name). */
export const SEED_SKIP = 0x1b873593;
/** Seed for request keys (and ring points, which share the key space). */
export const SEED_KEY = 0x9747b28c;
/** Seed for the second 32-bit half of a 64-bit key (jump hash). */
export const SEED_KEY_HI = 0x85ebca6b;

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** MurmurHash3 finaliser: a full-avalanche 32-bit mix. Returns an unsigned 32-bit integer. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The result slot of murmurInto: an unsigned 32-bit value mostly lies outside V8's small-integer
 * range, so returning it from a function that is not inlined would allocate a heap number per call;
 * a typed-array slot does not.
 */
const OUT = new Uint32Array(1);

/** MurmurHash3 x86 32-bit of the UTF-8 encoding of `s` (lone surrogates encode as U+FFFD). Unsigned. */
export function murmur3(s: string, seed: number): number {
  murmurInto(s, seed);
  return OUT[0]!;
}

/** murmur3 into OUT[0]. All state is in locals (module-level numbers would be boxed on every store). */
function murmurInto(s: string, seed: number): void {
  let h = seed | 0;
  let k = 0; // bytes of the current 4-byte block, little-endian
  let n = 0; // bytes consumed
  const len = s.length;
  for (let i = 0; i < len; i++) {
    let c = s.charCodeAt(i);
    // the UTF-8 bytes of this code point, packed little-endian into `bytes`, `count` of them
    let bytes: number;
    let count: number;
    if (c < 0x80) {
      bytes = c;
      count = 1;
    } else if (c < 0x800) {
      bytes = (0xc0 | (c >>> 6)) | ((0x80 | (c & 0x3f)) << 8);
      count = 2;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < len ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        bytes = (0xf0 | (c >>> 18)) | ((0x80 | ((c >>> 12) & 0x3f)) << 8) | ((0x80 | ((c >>> 6) & 0x3f)) << 16) | ((0x80 | (c & 0x3f)) << 24);
        count = 4;
      } else {
        bytes = 0xef | (0xbf << 8) | (0xbd << 16);
        count = 3;
      }
    } else {
      bytes = (0xe0 | (c >>> 12)) | ((0x80 | ((c >>> 6) & 0x3f)) << 8) | ((0x80 | (c & 0x3f)) << 16);
      count = 3;
    }
    for (let q = 0; q < count; q++) {
      k |= ((bytes >>> (q << 3)) & 0xff) << ((n & 3) << 3);
      n++;
      if ((n & 3) === 0) {
        k = Math.imul(k, C1);
        k = (k << 15) | (k >>> 17);
        k = Math.imul(k, C2);
        h ^= k;
        h = (h << 13) | (h >>> 19);
        h = (Math.imul(h, 5) + 0xe6546b64) | 0;
        k = 0;
      }
    }
  }
  if ((n & 3) !== 0) {
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
  }
  h ^= n;
  OUT[0] = fmix32(h);
}

// ---- jump consistent hash (Lamping & Veach) on a 64-bit key held as two 32-bit halves ----

// The 64-bit LCG multiplier 2862933555777941757 = 0x27BB2EE6_87B0B0FD.
const M_HI = 0x27bb2ee6;
const M_LO = 0x87b0b0fd;
const M_LO_H = M_LO >>> 16;
const M_LO_L = M_LO & 0xffff;

/**
 * Jump consistent hash of the 64-bit key `hi:lo` (unsigned 32-bit halves) into `buckets` buckets:
 * returns a bucket in [0, buckets). Exactly the reference algorithm, with the 64-bit multiply done in
 * 32-bit pieces (no BigInt, no allocation).
 */
export function jumpHash(hi: number, lo: number, buckets: number): number {
  let b = -1;
  let j = 0;
  hi >>>= 0;
  lo >>>= 0;
  while (j < buckets) {
    b = j;
    // (hi:lo) = (hi:lo) * M + 1  (mod 2^64)
    const a1 = lo >>> 16;
    const a0 = lo & 0xffff;
    const mid = a1 * M_LO_L + a0 * M_LO_H; // < 2^33, exact
    let low = a0 * M_LO_L + (mid % 65536) * 65536; // < 2^33, exact
    const carry = Math.floor(low / 4294967296);
    low = low >>> 0;
    let high = a1 * M_LO_H + Math.floor(mid / 65536) + carry + Math.imul(hi, M_LO) + Math.imul(lo, M_HI);
    high = high >>> 0;
    low = low + 1;
    if (low === 4294967296) {
      low = 0;
      high = (high + 1) >>> 0;
    }
    hi = high;
    lo = low;
    j = Math.floor((b + 1) * (2147483648 / ((hi >>> 1) + 1)));
  }
  return b;
}
