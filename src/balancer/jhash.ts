/**
 * The Linux kernel's jhash (include/linux/jhash.h, Bob Jenkins' lookup3) on an IPv4 address, and
 * the scaling nftables applies to it: the kernel data plane places a client with
 * `jhash ip saddr mod M seed S` (net/netfilter/nft_hash.c: `reciprocal_scale(jhash(data, 4,
 * seed), M)`), and a userspace listener hashing by source address computes the same bucket here,
 * so that the kernel and userspace send a client to the same server of the same Maglev table.
 *
 * `ip saddr` is 4 bytes in network order: jhash's last-block switch adds them little-endian
 * (k[0] lowest), whatever the host's byte order.
 */

/** The seed Portico renders in `jhash ... seed` (ASCII "port"): the same on every node and restart. */
export const SOURCE_SEED = 0x706f7274;

/** JHASH_INITVAL, the golden-ratio-ish constant of lookup3. */
const INITVAL = 0xdeadbeef;

/** __jhash_mix's rotations, as two rounds of (a, b, c). */
const MIX: readonly (readonly [number, number, number])[] = [
  [4, 6, 8],
  [16, 19, 4],
];

const rol = (x: number, s: number): number => (x << s) | (x >>> (32 - s));

/** jhash of one 4-byte key (`key` holds the bytes k[0] | k[1]<<8 | k[2]<<16 | k[3]<<24). Unsigned. */
export function jhash4(key: number, seed: number): number {
  const a = (INITVAL + 4 + seed) | 0;
  return final((a + key) | 0, a, a);
}

/**
 * jhash of any byte string (the kernel's general form; Bob Jenkins' lookup3 `hashlittle`), for
 * keys longer than an address: the published lookup3 vectors check it, and it checks jhash4.
 */
export function jhash(k: Uint8Array, seed: number): number {
  let length = k.length;
  let a = (INITVAL + length + seed) | 0;
  let b = a;
  let c = a;
  let o = 0;
  const word = (i: number): number => k[i]! | (k[i + 1]! << 8) | (k[i + 2]! << 16) | (k[i + 3]! << 24);
  while (length > 12) {
    a = (a + word(o)) | 0;
    b = (b + word(o + 4)) | 0;
    c = (c + word(o + 8)) | 0;
    // __jhash_mix
    for (const [r1, r2, r3] of MIX) {
      a = ((a - c) | 0) ^ rol(c, r1);
      c = (c + b) | 0;
      b = ((b - a) | 0) ^ rol(a, r2);
      a = (a + c) | 0;
      c = ((c - b) | 0) ^ rol(b, r3);
      b = (b + a) | 0;
    }
    length -= 12;
    o += 12;
  }
  if (length === 0) return c >>> 0;
  // The last block, zero-padded: bytes 0-3 into a, 4-7 into b, 8-11 into c (little-endian).
  const tail = [0, 0, 0];
  for (let i = 0; i < length; i++) tail[i >> 2]! += k[o + i]! * 2 ** ((i & 3) * 8);
  a = (a + tail[0]!) | 0;
  b = (b + tail[1]!) | 0;
  c = (c + tail[2]!) | 0;
  return final(a, b, c);
}

/** __jhash_final; returns c, unsigned. */
function final(a: number, b: number, c: number): number {
  c ^= b;
  c = (c - rol(b, 14)) | 0;
  a ^= c;
  a = (a - rol(c, 11)) | 0;
  b ^= a;
  b = (b - rol(a, 25)) | 0;
  c ^= b;
  c = (c - rol(b, 16)) | 0;
  a ^= c;
  a = (a - rol(c, 4)) | 0;
  b ^= a;
  b = (b - rol(a, 14)) | 0;
  c ^= b;
  c = (c - rol(b, 24)) | 0;
  return c >>> 0;
}

/**
 * The kernel's reciprocal_scale(h, m): (h × m) >> 32 for unsigned 32-bit h and m, exactly (the
 * product can exceed 2^53, so it is taken in 16-bit halves of h).
 */
export function reciprocalScale(h: number, m: number): number {
  const hi = h >>> 16;
  const lo = h & 0xffff;
  return Math.floor((hi * m + Math.floor((lo * m) / 65536)) / 65536);
}

/**
 * An IPv4 address as jhash reads `ip saddr` (its 4 bytes in network order, the first byte lowest),
 * from dotted-quad text or its IPv4-mapped IPv6 form (`::ffff:a.b.c.d`, what a dual-stack socket
 * reports); -1 when `s` is neither. No allocation.
 */
export function ipv4Key(s: string): number {
  let i = 0;
  const n = s.length;
  if (n > 7 && s.charCodeAt(0) === 58 /* : */) {
    if (!s.startsWith('::ffff:') && !s.startsWith('::FFFF:')) return -1;
    i = 7;
  }
  let key = 0;
  for (let octet = 0; octet < 4; octet++) {
    if (octet > 0) {
      if (i >= n || s.charCodeAt(i) !== 46 /* . */) return -1;
      i++;
    }
    let v = 0;
    let digits = 0;
    while (i < n) {
      const c = s.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      if (digits > 0 && v === 0) return -1; // a leading zero
      v = v * 10 + c;
      digits++;
      i++;
    }
    if (digits === 0 || digits > 3 || v > 255) return -1;
    key |= v << (octet << 3);
  }
  return i === n ? key >>> 0 : -1;
}

/**
 * The bucket nftables' `jhash ip saddr mod buckets seed SOURCE_SEED` gives the client `address`,
 * or -1 when it is not an IPv4 address (the kernel data plane is IPv4 only).
 */
export function kernelSourceBucket(address: string, buckets: number): number {
  const key = ipv4Key(address);
  return key < 0 ? -1 : reciprocalScale(jhash4(key, SOURCE_SEED), buckets);
}
