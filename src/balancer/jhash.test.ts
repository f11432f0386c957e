import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ipv4Key, jhash, jhash4, kernelSourceBucket, reciprocalScale, SOURCE_SEED } from './jhash.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('jhash (the kernel\'s lookup3)', () => {
  it('matches the published lookup3 vectors (hashlittle, driver5)', () => {
    assert.equal(jhash(bytes(''), 0), 0xdeadbeef);
    assert.equal(jhash(bytes(''), 0xdeadbeef), 0xbd5b7dde);
    assert.equal(jhash(bytes('Four score and seven years ago'), 0), 0x17770551);
    assert.equal(jhash(bytes('Four score and seven years ago'), 1), 0xcd628161);
  });

  it('matches include/linux/jhash.h compiled from C on other lengths and seeds', () => {
    assert.equal(jhash(bytes('Portico kernel data plane'), SOURCE_SEED), 0x73d34397);
    assert.equal(jhash(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), 7), 0x6268adb9);
  });

  it('jhash4 is jhash of the 4 bytes', () => {
    for (const [addr, seed] of [
      ['10.0.0.1', SOURCE_SEED],
      ['255.255.255.255', 0],
      ['0.0.0.0', 0xffffffff],
      ['192.0.2.100', 12345],
    ] as const) {
      const b = Uint8Array.from(addr.split('.').map(Number));
      assert.equal(jhash4(ipv4Key(addr), seed), jhash(b, seed), addr);
    }
  });

  // Computed by include/linux/jhash.h and reciprocal_scale compiled from C (address bytes in
  // network order, as `ip saddr` is loaded into an nftables register).
  const vectors: readonly [string, number, number, number, number][] = [
    // address, seed, jhash, bucket of 4093, bucket of 5000011
    ['0.0.0.0', SOURCE_SEED, 4277837303, 4076, 4980069],
    ['255.255.255.255', SOURCE_SEED, 2994557679, 2853, 3486131],
    ['10.0.0.1', SOURCE_SEED, 943044637, 898, 1097850],
    ['172.16.254.3', SOURCE_SEED, 2064374634, 1967, 2403253],
    ['0.0.0.0', 0, 76781240, 73, 89385],
    ['255.255.255.255', 0, 2601633627, 2479, 3028706],
    ['10.0.0.1', 0, 799405953, 761, 930633],
    ['172.16.254.3', 0, 4028435356, 3839, 4689726],
    ['10.0.0.1', 0xffffffff, 3761059390, 3584, 4378459],
    ['172.16.254.3', 0xffffffff, 1593256358, 1518, 1854798],
  ];
  it('matches the C reference on addresses, with the kernel\'s scaling into buckets', () => {
    for (const [addr, seed, h, b4093, b5m] of vectors) {
      assert.equal(jhash4(ipv4Key(addr), seed), h, `${addr} seed ${seed}`);
      assert.equal(reciprocalScale(h, 4093), b4093, `${addr} 4093`);
      assert.equal(reciprocalScale(h, 5_000_011), b5m, `${addr} 5000011`);
    }
  });

  it('gives the buckets the kernel gave: `ct mark set jhash ip saddr mod 65537 seed 0x706f7274`, read back from conntrack', () => {
    // Datagrams sent from each address in a network namespace; conntrack showed these marks.
    for (const [addr, mark] of [
      ['10.9.0.1', 41657],
      ['10.9.0.2', 8794],
      ['1.2.3.4', 41089],
      ['192.0.2.100', 38300],
    ] as const) {
      assert.equal(kernelSourceBucket(addr, 65537), mark, addr);
    }
  });

  it('reciprocalScale is exact where the product passes 2^53', () => {
    for (const h of [0, 1, 0xffff, 0x10000, 0x7fffffff, 0xfffffffe, 0xffffffff]) {
      for (const m of [2, 7, 4093, 65537, 5_000_011, 0xffffffff]) {
        const exact = Number((BigInt(h) * BigInt(m)) >> 32n);
        assert.equal(reciprocalScale(h, m), exact, `${h} × ${m}`);
      }
    }
  });

  it('reads IPv4 addresses and their IPv4-mapped form, and nothing else', () => {
    assert.equal(ipv4Key('1.2.3.4'), 0x04030201);
    assert.equal(ipv4Key('::ffff:1.2.3.4'), 0x04030201);
    assert.equal(ipv4Key('255.255.255.255'), 0xffffffff);
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1..2.3', '1.2.3.4 ', '::1', '2001:db8::1', '::ffff:1.2.3', 'a.b.c.d', '1.2.3.1234']) {
      assert.equal(ipv4Key(bad), -1, bad);
    }
    assert.equal(kernelSourceBucket('2001:db8::1', 4093), -1);
  });
});
