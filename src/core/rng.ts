/** Injected randomness: algorithms never call Math.random themselves. */
export interface Rng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  nextInt(n: number): number;
}

/** xorshift128+ style generator on two 32-bit halves; fast, seedable, allocation-free. */
export class SeededRng implements Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed = 0x9e3779b9) {
    // splitmix32 to spread the seed over the state
    let s = seed >>> 0;
    const mix = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = mix();
    this.b = mix();
    this.c = mix();
    this.d = mix() | 1;
  }
  /** xoshiro128** step: a 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }
  next(): number {
    return this.nextU32() / 4294967296;
  }
  nextInt(n: number): number {
    return Math.floor(this.next() * n);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export const mathRng: Rng = {
  next: () => Math.random(),
  nextInt: (n) => Math.floor(Math.random() * n),
};

/** Replays a fixed sequence of floats in [0, 1), cycling; for tests. */
export class SequenceRng implements Rng {
  private i = 0;
  constructor(private readonly values: readonly number[]) {
    if (values.length === 0) throw new Error('SequenceRng needs at least one value');
  }
  next(): number {
    const v = this.values[this.i]!;
    this.i = (this.i + 1) % this.values.length;
    return v;
  }
  nextInt(n: number): number {
    return Math.min(n - 1, Math.floor(this.next() * n));
  }
}
