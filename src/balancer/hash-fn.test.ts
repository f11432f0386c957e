import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { jumpHash, murmur3 } from './hash-fn.js';

test('murmur3 x86 32 matches the reference vectors (UTF-8 input)', () => {
  const vectors: [string, number, number][] = [
    ['', 0, 0],
    ['', 1, 0x514e28b7],
    ['', 0xffffffff, 0x81f16f39],
    ['a', 0x9747b28c, 0x7fa09ea6],
    ['aaaa', 0x9747b28c, 0x5a97808a],
    ['abc', 0, 0xb3dd93fa],
    ['hello', 0, 0x248bfa47],
    ['Hello, world!', 0x9747b28c, 0x24884cba],
    ['The quick brown fox jumps over the lazy dog', 0x9747b28c, 0x2fa826cd],
    ['ππππππππ', 0x9747b28c, 0xd58063c1],
  ];
  for (const [s, seed, want] of vectors) assert.equal(murmur3(s, seed), want, JSON.stringify(s));
});

test('murmur3 hashes astral characters as 4 UTF-8 bytes and lone surrogates as U+FFFD', () => {
  assert.equal(murmur3('\u{1F600}', 0), murmur3('\u{1F600}', 0));
  assert.notEqual(murmur3('\u{1F600}', 0), murmur3('\uD83D', 0));
  assert.equal(murmur3('\uD83D', 0), murmur3('\uFFFD', 0));
});

function jumpReference(key: bigint, n: number): number {
  let b = -1n;
  let j = 0n;
  while (j < BigInt(n)) {
    b = j;
    key = (key * 2862933555777941757n + 1n) & 0xffffffffffffffffn;
    j = BigInt(Math.floor(Number(b + 1n) * (2147483648 / Number((key >> 33n) + 1n))));
  }
  return Number(b);
}

test('jump hash on 32-bit halves equals the 64-bit reference', () => {
  fc.assert(
    fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), fc.integer({ min: 1, max: 100_000 }), (hi, lo, n) => {
      assert.equal(jumpHash(hi, lo, n), jumpReference((BigInt(hi) << 32n) | BigInt(lo), n));
    }),
    { numRuns: 2000 },
  );
  assert.equal(jumpHash(0, 0, 1000), 0);
});
