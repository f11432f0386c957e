import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { createCache, GreedyDualSizeCache, LruCache } from './cache.js';

test('LRU evicts the least recently used; a hit refreshes; a file larger than the cache is not kept', () => {
  const c = new LruCache(10, 8);
  c.insert(0, 4);
  c.insert(1, 4);
  assert.equal(c.lookup(0), true); // 0 is now more recent than 1
  c.insert(2, 4); // 12 > 10: evict 1
  assert.deepEqual(c.order(), [2, 0]);
  assert.equal(c.has(1), false);
  assert.equal(c.usedBytes, 8);
  c.insert(3, 11);
  assert.equal(c.has(3), false);
  assert.equal(c.usedBytes, 8);
  c.insert(4, 10); // evicts both
  assert.deepEqual(c.order(), [4]);
  assert.equal(c.count, 1);
  assert.equal(c.lookup(2), false);
});

test('GreedyDual-Size, worked example: evict least H = L + 1/size, L rises to the evicted H', () => {
  const c = new GreedyDualSizeCache(10, 8);
  c.insert(0, 1); // H 1
  c.insert(1, 5); // H 0.2
  c.insert(2, 4); // H 0.25
  assert.equal(c.usedBytes, 10);
  c.insert(3, 5); // evicts 1 (0.2): L = 0.2, H(3) = 0.4
  assert.equal(c.has(1), false);
  assert.equal(c.L, 0.2);
  assert.equal(c.priority(3), 0.2 + 0.2);
  assert.equal(c.lookup(0), true); // H(0) = L + 1 = 1.2
  assert.equal(c.priority(0), 1.2);
  c.insert(4, 4); // evicts 2 (0.25): L = 0.25, H(4) = 0.5
  assert.equal(c.has(2), false);
  assert.equal(c.L, 0.25);
  assert.equal(c.priority(4), 0.5);
  c.insert(5, 5); // evicts 3 (0.4), then 10 - 5 + 5 fits: L = 0.4
  assert.deepEqual([0, 3, 4, 5].map((f) => c.has(f)), [true, false, true, true]);
  assert.equal(c.L, 0.4);
  assert.equal(c.usedBytes, 10);
});

/** A naive reference of both policies: a list, scanned. */
class Reference {
  private items: { file: number; size: number; key: number; stamp: number }[] = [];
  private L = 0;
  private tick = 0;
  constructor(
    private readonly policy: 'lru' | 'gds',
    private readonly cap: number,
  ) {}
  private key(size: number): number {
    return this.policy === 'lru' ? this.tick : this.L + 1 / Math.max(1, size);
  }
  lookup(file: number): boolean {
    const it = this.items.find((x) => x.file === file);
    if (it === undefined) return false;
    it.key = this.key(it.size);
    it.stamp = this.tick++;
    return true;
  }
  insert(file: number, size: number): void {
    if (this.lookup(file) || size > this.cap) return;
    const used = (): number => this.items.reduce((s, x) => s + x.size, 0);
    while (used() + size > this.cap && this.items.length > 0) {
      let v = 0;
      for (let i = 1; i < this.items.length; i++) {
        const a = this.items[i]!;
        const b = this.items[v]!;
        if (a.key < b.key || (a.key === b.key && a.stamp < b.stamp)) v = i;
      }
      if (this.policy === 'gds') this.L = this.items[v]!.key;
      this.items.splice(v, 1);
    }
    this.items.push({ file, size, key: this.key(size), stamp: this.tick++ });
  }
  files(): number[] {
    return this.items.map((x) => x.file).sort((a, b) => a - b);
  }
}

for (const policy of ['lru', 'gds'] as const) {
  test(`${policy}: hits, misses and contents match a naive reference on random workloads`, () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 15 }), fc.boolean()), { maxLength: 200 }),
        fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 16, maxLength: 16 }),
        (cap, ops, sizes) => {
          const c = createCache(policy, cap, 16);
          const ref = new Reference(policy, cap);
          for (const [file, insert] of ops) {
            if (insert) {
              c.insert(file, sizes[file]!);
              ref.insert(file, sizes[file]!);
            } else {
              assert.equal(c.lookup(file), ref.lookup(file));
            }
            assert.ok(c.usedBytes <= cap);
          }
          const held = Array.from({ length: 16 }, (_, f) => f).filter((f) => c.has(f));
          assert.deepEqual(held, ref.files());
          assert.equal(c.count, held.length);
          assert.equal(c.usedBytes, held.reduce((s, f) => s + sizes[f]!, 0));
        },
      ),
      { numRuns: 300 },
    );
  });
}
